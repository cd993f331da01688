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

Run All stops at a failed cell. Jupyter's `stop_on_error` (true unless the request says otherwise):
a kernel answers the execute requests queued behind a failed one `aborted` instead of running
them, as ipykernel does; that is what makes JupyterLab's Run All stop there. evcxr_jupyter queues
requests in its socket and cannot tell which were waiting, so the relay keeps the queue itself:
it passes one execute request on at a time, holds the others until the reply of the one before
arrives, and when that reply has status "error", answers every held request with an `aborted`
reply (between `busy` and `idle` status messages, which JupyterLab waits for). A request sent
after the frontend saw the error runs as usual.

An interrupted cell is an error too. A cell that catches the interrupt and ends early on its own
(a sweep keeps the runs it finished, so `let sweep = ...` binds them) ends "ok" in evcxr; the relay
notes the SIGINT that reached the kernel's process group while that cell ran and answers it as
an error (`KeyboardInterrupt`, shown in the cell, idle held back until then), so Run All stops
there as for any other interrupted cell.

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


def parsed(frames, part):
    """Part `part` (0 header, 1 parent header, 2 metadata, 3 content) of a Jupyter message's frames,
    decoded; {} when the frames are not a message."""
    try:
        return json.loads(frames[frames.index(DELIMITER) + 2 + part])
    except (ValueError, IndexError):
        return {}


class Running:
    """The execute request evcxr is running: its header, whether it stops on error, whether an
    interrupt reached it, and (once they came) its reply content and its idle status frames."""

    def __init__(self, header, stops):
        self.header, self.msg_id, self.stops = header, header.get("msg_id"), stops
        self.interrupted = False
        self.reply = None
        self.idle = None


class Relay:
    def __init__(self, outer, inner, busy_file=None):
        self.busy_file = busy_file
        # The execute request evcxr is running (a Running), and the ones held behind it as
        # (frames, header, content).
        self.running = None
        self.held = []
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
            if channel == "shell":
                self.shell_front, self.shell_back = front, back
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
        if split >= 0 and self.running is not None and b'"status"' in header_raw and b'"idle"' in content_raw:
            if json.loads(parent_raw).get("msg_id") == self.running.msg_id:
                # The running request's end: sent on after its reply (which may still turn into
                # an error), and only then does the next request start or the held ones abort,
                # so that every request's messages follow the idle of the one before.
                if self.running.reply is None:
                    self.running.idle = frames
                else:
                    self.iopub_front.send_multipart(frames)
                    self.finish()
                return
        # Cheap byte checks first: only a stdout line carrying the marker is decoded.
        if split >= 0 and b'"stream"' in header_raw and MARKER_BYTES in content_raw:
            rewritten = display_message(content_raw)
            if rewritten is not None:
                msg_type, content = rewritten
                self.session.send(self.iopub_front, msg_type, content, parent=json.loads(parent_raw), ident=frames[:split])
                return
        self.iopub_front.send_multipart(frames)

    def from_frontend_shell(self, frames):
        """An execute request waits while another runs; everything else passes on at once."""
        header, content = parsed(frames, 0), parsed(frames, 3)
        if header.get("msg_type") != "execute_request":
            self.shell_back.send_multipart(frames)
        elif self.running is None:
            self.start(frames, header, content)
        else:
            self.held.append((frames, header, content))

    def start(self, frames, header, content):
        stops = content.get("stop_on_error", True) and not content.get("silent", False)
        self.running = Running(header, stops)
        self.shell_back.send_multipart(frames)

    def note_interrupt(self, *_):
        """SIGINT reached the kernel's process group (Jupyter's interrupt): remember the cell."""
        if self.running is not None:
            self.running.interrupted = True

    def from_kernel_shell(self, frames):
        """Replies go to the frontend. The running request ends with its reply and its idle status
        (either may come first); then the next held one starts, or all held ones are aborted when
        it failed and asked to stop on error."""
        running = self.running
        if parsed(frames, 0).get("msg_type") != "execute_reply" or running is None or parsed(frames, 1).get("msg_id") != running.msg_id:
            self.shell_front.send_multipart(frames)
            return
        content = parsed(frames, 3)
        if running.interrupted and content.get("status") == "ok":
            content = self.as_interrupted(frames, content, running.header)
        else:
            self.shell_front.send_multipart(frames)
        running.reply = content
        if running.idle is not None:
            self.iopub_front.send_multipart(running.idle)
            self.finish()

    def finish(self):
        running, self.running = self.running, None
        if running.reply.get("status") == "error" and running.stops:
            held, self.held = self.held, []
            for held_frames, held_header, _ in held:
                self.abort(held_frames, held_header)
        elif self.held:
            self.start(*self.held.pop(0))

    def as_interrupted(self, frames, content, request):
        """Answers a cell that ended "ok" after an interrupt reached it as an interrupted cell: an
        error output, then an error reply. Returns the reply's content."""
        error = {
            "ename": "KeyboardInterrupt",
            "evalue": "the cell was interrupted; it stopped early and kept what it had finished",
            "traceback": ["KeyboardInterrupt: the cell was interrupted; it stopped early and kept what it had finished"],
        }
        self.session.send(self.iopub_front, "error", error, parent=request)
        reply = dict(error, status="error", execution_count=content.get("execution_count"))
        identities = frames[: frames.index(DELIMITER)]
        self.session.send(self.shell_front, "execute_reply", reply, parent=request, ident=identities, metadata={"status": "error"})
        return reply

    def abort(self, frames, header):
        """Answers a held execute request `aborted`, as ipykernel does after a failed cell."""
        identities = frames[: frames.index(DELIMITER)]
        self.session.send(self.iopub_front, "status", {"execution_state": "busy"}, parent=header)
        self.session.send(self.shell_front, "execute_reply", {"status": "aborted"}, parent=header, ident=identities, metadata={"status": "aborted"})
        self.session.send(self.iopub_front, "status", {"execution_state": "idle"}, parent=header)

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
                    elif sock is self.shell_front:
                        self.from_frontend_shell(frames)
                    elif sock is self.shell_back:
                        self.from_kernel_shell(frames)
                    elif sock is self.heartbeat:
                        self.heartbeat.send_multipart(frames)
                        break  # REP: one request, one reply
                    else:
                        self.pairs[sock].send_multipart(frames)


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(f"usage: {argv[0]} OUTER_CONNECTION_FILE INNER_CONNECTION_FILE [BUSY_FILE]")
    # Interrupts are signals to the kernel's process group; the launcher decides what they do. The
    # relay only notes them (see Relay.note_interrupt) and must not end on one.
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
    relay = Relay(outer, inner, argv[3] if len(argv) == 4 else None)
    signal.signal(signal.SIGINT, relay.note_interrupt)
    relay.run()


if __name__ == "__main__":
    main(sys.argv)
