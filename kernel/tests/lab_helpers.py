"""Starting and stopping `kernel/lab` from tests."""
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
URL = re.compile(r"JupyterLab: (http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]+))")


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
