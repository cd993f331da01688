"""The papermill engine for Rust notebooks; see the package docstring. papermill imports this
module through our `papermill.engine` entry point, which also registers the translator."""
import os
import queue

from nbclient.util import ensure_async
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

# Imported for its side effect (registering the translator). If `translator` is the module being
# imported first, this returns the partly initialised module and it registers itself when done.
from . import translator  # noqa: F401

RUST_LANGUAGES = {"rust", "Rust"}


def process_tree(pid):
    """`pid` and its descendants (Linux /proc; [] elsewhere)."""
    tree, queue_ = [], [pid]
    while queue_:
        current = queue_.pop()
        tree.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    queue_.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return tree


def kernel_memory(pid):
    """Resident memory of the kernel's processes, in MB, by role: {role: (now, peak)} from
    /proc/<pid>/status (VmRSS, VmHWM). Roles: the launcher script, the message relay, evcxr_jupyter
    (with rust-analyzer inside), the cell process (the notebook's variables, libjukebox.so)."""
    roles = {}
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{member}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{member}/environ", "rb") as f:
                runtime = b"EVCXR_IS_RUNTIME=" in f.read()
        except OSError:
            continue
        if runtime:
            role = "cell process"
        elif "kernel_relay.py" in cmdline:
            role = "relay"
        elif "evcxr_jupyter" in cmdline:
            role = "evcxr_jupyter"
        elif "evcxr-kernel" in cmdline:
            role = "launcher"
        else:
            continue  # cargo and rustc of a cell being compiled
        now = int(status.get("VmRSS", "0 kB").split()[0]) / 1024
        peak = int(status.get("VmHWM", "0 kB").split()[0]) / 1024
        old_now, old_peak = roles.get(role, (0, 0))
        roles[role] = (old_now + now, old_peak + peak)
    return roles


def memory_line(roles, which):
    parts = [f"{role} {values[which]:.0f} MB" for role, values in sorted(roles.items())]
    return ", ".join(parts) + f"; total {sum(v[which] for v in roles.values()):.0f} MB"


class RustNotebookClient(PapermillNotebookClient):
    """papermill's client, plus: output lines that arrive just after a cell's idle status are kept."""

    # With the engine `rust-twice`: after the notebook ran, every code cell runs once more, in
    # order, in the same kernel (what a participant does who re-runs cells); a cell that fails the
    # second time fails the run. The saved outputs are the second run's.
    run_twice = False

    def kernel_pid(self):
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def papermill_execute_cells(self):
        pid = self.kernel_pid()
        if pid:
            idle = kernel_memory(pid)
            self.log.info(f"Kernel memory, idle before the first cell: {memory_line(idle, 0)}")
        try:
            self.execute_cells_once_or_twice()
        finally:
            if pid:
                # Peak resident memory of each process over the notebook's run (VmHWM), recorded in
                # the notebook's metadata for the README's table (kernel/notebook_timings.py).
                peak = kernel_memory(pid)
                self.log.info(f"Kernel memory, peak over the notebook: {memory_line(peak, 1)}")
                self.nb.metadata.setdefault("jukebox", {})["kernel_memory_mb"] = {
                    "idle": {role: round(v[0]) for role, v in idle.items()},
                    "peak": {role: round(v[1]) for role, v in peak.items()},
                }

    def execute_cells_once_or_twice(self):
        super().papermill_execute_cells()
        if not self.run_twice or any(o.get("output_type") == "error" for c in self.nb.cells for o in c.get("outputs", [])):
            return
        self.log.info("Running every code cell a second time")
        # papermill's own loop once more: the same kernel, the same bookkeeping and stop at a failure.
        super().papermill_execute_cells()

    # evcxr forwards the kernel's stderr from another thread than the cell's reply, so those lines
    # can arrive just after the cell's idle status; nbclient stops listening at idle.
    late_output_seconds = 0.05

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=self.late_output_seconds))
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] == "stream":
                self.process_message(msg, cell, cell_index)


class RustEngine(NBClientEngine):
    """papermill's default engine; Rust notebooks run through `RustNotebookClient`."""

    @classmethod
    def execute_managed_notebook(
        cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs
    ):
        language = nb_man.nb.metadata.get("kernelspec", {}).get("language")
        if language not in RUST_LANGUAGES and kernel_name != "rust":
            return super().execute_managed_notebook(
                nb_man, kernel_name, log_output, stdout_file, stderr_file, start_timeout, execution_timeout, **kwargs
            )
        # The same arguments as papermill 2.7's NBClientEngine gives its client.
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        client = RustNotebookClient(nb_man, **final_kwargs)
        client.run_twice = cls.run_twice
        return client.execute()

    run_twice = False


class RustTwiceEngine(RustEngine):
    """`papermill --engine rust-twice`: runs the notebook, then every code cell once more (the
    re-run check of kernel/test: each cell can be run again with the same result)."""

    run_twice = True


# The default engine (no --engine flag) for every notebook; non-Rust notebooks run unchanged.
papermill_engines.register(None, RustEngine)
papermill_engines.register("rust-twice", RustTwiceEngine)
