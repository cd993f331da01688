"""The Rust kernel's message relay: sits between Jupyter and evcxr_jupyter and turns the helper
crate's display lines into Jupyter display messages, so that a running cell can update an output
in place (training progress).

Why: evcxr_jupyter forwards what a cell prints line by line as `stream` messages and has no way to
send `display_data` while a cell runs, nor `update_display_data` at all. So a progress bar could
only be a wall of lines. The helper crate (`jukebox::display::LiveDisplay`) prints one line per
state of a live output instead:

    JUKEBOX_DISPLAY {"display_id": "...", "update": false, "data": {"text/plain": "...", "text/html": "..."}}

and this relay, which the kernel's frontend talks to, sends it on as a `display_data` (first
line of an id) or `update_display_data` (the next ones) with the id in `transient.display_id`, as
ipykernel's `display(..., display_id=True)` does. JupyterLab then redraws the output in place,
and papermill (nbclient) keeps the last state in the saved notebook. Every other message passes
through unchanged (same bytes, same signature). The variable `JUKEBOX_DISPLAY_UPDATES` (owned by
`jukebox_protocol::env::DISPLAY_UPDATES`), set for the kernel by `kernel/evcxr-kernel`, tells the
helper crate that such a relay is listening; without it the crate prints plain lines.

The relay binds the ports of the connection file Jupyter wrote (`outer`) and writes a second one
(`inner`, same key, free loopback ports) for evcxr_jupyter. Per channel:
- shell, control, stdin: a ROUTER facing Jupyter and a DEALER facing the kernel. Messages keep
  their ZMQ identities, so replies find their way back; the kernel sees [relay, frontend] as the
  identities. The DEALERs share one identity because the kernel addresses `input_request`s on
  stdin to the identity its execute request came from on shell.
- iopub: a SUB facing the kernel's PUB and a PUB facing Jupyter, rewriting display lines.
- heartbeat: answered here; the relay lives exactly as long as the kernel (kernel/evcxr-kernel
  starts both and stops one when the other ends).

With a third argument, the relay keeps a file at that path while the kernel is busy (between its
`busy` and `idle` status messages): kernel/evcxr-kernel and the training loop's SIGINT handler in
the cell process (which gets the path as JUKEBOX_KERNEL_BUSY_FILE) read it to leave an interrupt
that arrives while no cell runs without effect, as Jupyter expects of an idle kernel, instead of
ending the cell process and the notebook's variables with it.

Usage: kernel_relay.py OUTER_CONNECTION_FILE INNER_CONNECTION_FILE [BUSY_FILE]
"""
import json
import os
import signal
import socket
import sys
import uuid

# pyzmq and jupyter_client are imported in main(), once evcxr's connection file is written.
zmq = Session = None

MARKER = "JUKEBOX_DISPLAY "
MARKER_BYTES = MARKER.encode()
DELIMITER = b"<IDS|MSG>"
CHANNELS = ("shell", "control", "stdin", "iopub", "hb")


def free_ports(count, taken):
    """`count` distinct free loopback ports, none of them in `taken`. The probes stay bound until
    all are chosen (so no port comes twice); Jupyter's ports are excluded because nothing has
    bound them yet when evcxr starts (the relay binds them after its imports)."""
    probes, ports = [], []
    try:
        while len(ports) < count:
            probe = socket.socket()
            probes.append(probe)
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
            if port not in taken:
                ports.append(port)
    finally:
        for probe in probes:
            probe.close()
    return ports


def write_inner_connection_file(outer, path):
    """The kernel's connection file: the frontend's key and scheme, free ports on loopback."""
    inner = dict(outer, transport="tcp", ip="127.0.0.1")
    taken = {outer.get(f"{channel}_port") for channel in CHANNELS}
    for channel, port in zip(CHANNELS, free_ports(len(CHANNELS), taken)):
        inner[f"{channel}_port"] = port
    partial = f"{path}.part"
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump(inner, out)
    # Renamed into place complete: the launcher waits for this file to exist.
    os.replace(partial, path)
    return inner


def url(info, channel):
    if info["transport"] == "ipc":
        return f"ipc://{info['ip']}-{info[f'{channel}_port']}"
    return f"{info['transport']}://{info['ip']}:{info[f'{channel}_port']}"


def display_message(content_raw):
    """(msg_type, content) of a display line, or None for any other stream text."""
    try:
        content = json.loads(content_raw)
        text = content.get("text", "")
        if content.get("name") != "stdout" or not text.startswith(MARKER):
            return None
        spec = json.loads(text[len(MARKER):])
        msg_type = "update_display_data" if spec.get("update") else "display_data"
        return msg_type, {"data": spec["data"], "metadata": {}, "transient": {"display_id": str(spec["display_id"])}}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class Relay:
    def __init__(self, outer, inner, busy_file=None):
        self.busy_file = busy_file
        self.context = zmq.Context()
        self.session = Session(key=outer.get("key", "").encode(), signature_scheme=outer.get("signature_scheme", "hmac-sha256"), username="kernel")
        identity = f"jukebox-relay-{uuid.uuid4().hex}".encode()
        self.pairs = {}
        for channel in ("shell", "control", "stdin"):
            front = self.context.socket(zmq.ROUTER)
            front.bind(url(outer, channel))
            back = self.context.socket(zmq.DEALER)
            back.setsockopt(zmq.IDENTITY, identity)
            back.setsockopt(zmq.LINGER, 0)
            back.connect(url(inner, channel))
            self.pairs[front], self.pairs[back] = back, front
        self.iopub_front = self.context.socket(zmq.PUB)
        self.iopub_front.bind(url(outer, "iopub"))
        self.iopub_back = self.context.socket(zmq.SUB)
        self.iopub_back.setsockopt(zmq.SUBSCRIBE, b"")
        self.iopub_back.connect(url(inner, "iopub"))
        self.heartbeat = self.context.socket(zmq.REP)
        self.heartbeat.bind(url(outer, "hb"))
        self.poller = zmq.Poller()
        for sock in [*self.pairs, self.iopub_back, self.heartbeat]:
            self.poller.register(sock, zmq.POLLIN)

    def relay_iopub(self, frames):
        try:
            split = frames.index(DELIMITER)
            header_raw, parent_raw, _metadata, content_raw = frames[split + 2 : split + 6]
        except ValueError:
            split = -1
        if split >= 0 and self.busy_file and b'"status"' in header_raw:
            self.note_status(content_raw)
        # Cheap byte checks first: only a stdout line carrying the marker is decoded.
        if split >= 0 and b'"stream"' in header_raw and MARKER_BYTES in content_raw:
            rewritten = display_message(content_raw)
            if rewritten is not None:
                msg_type, content = rewritten
                self.session.send(self.iopub_front, msg_type, content, parent=json.loads(parent_raw), ident=frames[:split])
                return
        self.iopub_front.send_multipart(frames)

    def note_status(self, content_raw):
        """Keeps the busy file while the kernel is busy (its status messages say when)."""
        try:
            state = json.loads(content_raw).get("execution_state")
        except (ValueError, AttributeError):
            return
        if state == "busy":
            open(self.busy_file, "w").close()
        elif state == "idle":
            try:
                os.remove(self.busy_file)
            except FileNotFoundError:
                pass

    def run(self):
        launcher = os.getppid()
        while True:
            ready = dict(self.poller.poll(1000))
            if not ready and os.getppid() != launcher:
                return  # the launcher is gone, and with it the kernel
            for sock in ready:
                # Drain what is queued, so that a burst of output costs one poll.
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if sock is self.iopub_back:
                        self.relay_iopub(frames)
                    elif sock is self.heartbeat:
                        self.heartbeat.send_multipart(frames)
                        break  # REP: one request, one reply
                    else:
                        self.pairs[sock].send_multipart(frames)


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(f"usage: {argv[0]} OUTER_CONNECTION_FILE INNER_CONNECTION_FILE [BUSY_FILE]")
    # Interrupts are signals to the kernel's process group; the launcher decides what they do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(argv[1]) as f:
        outer = json.load(f)
    inner = write_inner_connection_file(outer, argv[2])
    # Imported only now (0.13-0.25 s): the launcher starts evcxr_jupyter as soon as its
    # connection file exists, so the kernel starts while these load.
    global zmq, Session
    import zmq
    from jupyter_client.session import Session
    Relay(outer, inner, argv[3] if len(argv) == 4 else None).run()


if __name__ == "__main__":
    main(sys.argv)
