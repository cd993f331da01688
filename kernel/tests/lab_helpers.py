"""Starting and stopping `kernel/lab`, and a Rust (jukebox) kernel on its own, from tests."""
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"JupyterLab: (http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+))")


@contextlib.contextmanager
def rust_kernel():
    """A Rust (jukebox) kernel of the venv's kernelspec, started in notebooks/ and ready; yields
    (manager, client) and shuts it down after."""
    import pytest
    from jupyter_client.manager import KernelManager

    if not (REPO / ".venv/share/jupyter/kernels/rust/kernel.json").exists():
        pytest.fail("the rust kernelspec is missing: run kernel/setup.sh")
    env = dict(os.environ, JUPYTER_PATH=str(REPO / ".venv/share/jupyter"))
    os.environ["JUPYTER_PATH"] = env["JUPYTER_PATH"]
    manager = KernelManager(kernel_name="rust")
    manager.start_kernel(env=env, cwd=str(REPO / "notebooks"))
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=300)
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`kernel/lab --no-browser --port N` in the background; `url` once it printed it."""

    def __init__(self, *args: str, timeout: float = 15.0, env: dict | None = None):
        self.port = free_port()
        self.output: list[str] = []
        started = time.monotonic()
        self.process = subprocess.Popen(
            [str(REPO / "kernel/lab"), "--no-browser", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        os.set_blocking(self.process.stdout.fileno(), False)
        self.url = None
        while time.monotonic() - started < timeout and self.process.poll() is None:
            self._read()
            match = URL.search("".join(self.output))
            if match:
                self.url, self.token = match.group(1), match.group(3)
                self.base = self.url.split("/lab?")[0]
                break
            time.sleep(0.05)
        self.seconds_to_url = time.monotonic() - started
        self._read()
        # kernel/lab marks every process it starts with this variable.
        self.lab_id = f"lab-{self.process.pid}-"

    def _read(self):
        try:
            chunk = self.process.stdout.read()
        except (TypeError, BlockingIOError):
            chunk = None
        if chunk:
            self.output.append(chunk)

    def text(self) -> str:
        self._read()
        return "".join(self.output)

    def ours(self) -> list[tuple[int, str]]:
        """Processes kernel/lab started (JupyterLab, its kernels, `jukebox up`) still alive."""
        return [p for p in _with_prefix("JUKEBOX_LAB_ID=" + self.lab_id) if p[0] != self.process.pid and _alive(p[0])]

    def stop(self, sig=signal.SIGINT, timeout: float = 30.0) -> float:
        """Sends `sig` and waits for kernel/lab to end; returns the seconds it took."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        self._read()
        return time.monotonic() - started


def _with_prefix(prefix: str) -> list[tuple[int, str]]:
    """Processes whose environment has a variable starting with `prefix`."""
    found = []
    needle = b"\0" + prefix.encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = b"\0" + (proc / "environ").read_bytes()
            if needle in environ:
                found.append((int(proc.name), (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Not gone and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def api(lab: Lab, path: str, method: str = "GET", body: dict | None = None):
    """A call to JupyterLab's REST API (`/api/...`) with the server's token; the decoded JSON."""
    request = urllib.request.Request(
        f"{lab.base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        text = response.read()
    return json.loads(text) if text else None


def session_of(lab: Lab, path: str) -> dict | None:
    """The server's session of the notebook at `path` (relative to notebooks/), if any."""
    return next((s for s in api(lab, "/api/sessions") if s.get("path") == path), None)


def start_session(lab: Lab, path: str, kernel: str = "rust") -> dict:
    """A session with kernel `kernel` for the notebook at `path`, created through the REST API before
    the page opens it: JupyterLab then connects to that kernel instead of starting (or asking for)
    one itself."""
    return api(lab, "/api/sessions", "POST", {"path": path, "name": Path(path).name, "type": "notebook", "kernel": {"name": kernel}})


def wait_kernel_idle(lab: Lab, kernel_id: str, timeout: float, connected: bool = False) -> dict:
    """Polls `/api/kernels/<id>` until its execution_state is idle (and, with `connected`, a
    client is connected to it); the kernel's model."""
    started = time.monotonic()
    model = {}
    while time.monotonic() - started < timeout:
        model = api(lab, f"/api/kernels/{kernel_id}")
        if model.get("execution_state") == "idle" and (not connected or model.get("connections", 0) > 0):
            return model
        if model.get("execution_state") == "dead":
            break
        time.sleep(0.5)
    raise AssertionError(f"kernel {kernel_id} not idle within {timeout} s: {model}")


def end_session(lab: Lab, path: str):
    """Shuts the notebook's session (and its kernel) down, if there is one."""
    session = session_of(lab, path)
    if session:
        api(lab, f"/api/sessions/{session['id']}", "DELETE")


SERVICE_VARIABLES = ("AWS_", "JUKEBOX_REGISTRY_URL", "JUKEBOX_MODEL_URL")


def services_env(lab: Lab) -> dict[str, str]:
    """The services' variables (S3, registry, model server) that kernel/lab gave JupyterLab and its
    kernels, read from the environment of the processes it started (its env file in .jukebox/lab/
    is shared by every kernel/lab on this checkout)."""
    for pid, _ in lab.ours():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        variables = dict(item.decode(errors="replace").split("=", 1) for item in environ if b"=" in item)
        found = {k: v for k, v in variables.items() if k.startswith(SERVICE_VARIABLES)}
        if "JUKEBOX_REGISTRY_URL" in found and "AWS_S3_ENDPOINT" in found:
            return found
    raise AssertionError(f"no process of kernel/lab has the services' variables: {lab.ours()}")


def read_env_file(path: Path) -> dict[str, str]:
    """The variables an env file of `jukebox up` exports (`export NAME='value'` lines)."""
    settings = {}
    for line in Path(path).read_text().splitlines():
        words = shlex.split(line)
        if words and words[0] == "export":
            name, _, value = words[1].partition("=")
            settings[name] = value
    return settings
