"""The papermill engine for Rust notebooks; see the package docstring. papermill imports this
module through our `papermill.engine` entry point, which also registers the translator."""
import queue

import nbformat
from nbclient.exceptions import CellExecutionError
from nbclient.util import ensure_async
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

# Imported for its side effect (registering the translator). If `translator` is the module being
# imported first, this returns the partly initialised module and it registers itself when done.
from . import translator  # noqa: F401

RUST_LANGUAGES = {"rust", "Rust"}


def stderr_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr")


class RustNotebookClient(PapermillNotebookClient):
    """papermill's client, plus: late stderr lines are kept and a cell that wrote to stderr fails."""

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

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        await super()._check_raise_for_error(cell, cell_index, exec_reply)
        text = stderr_text(cell).strip()
        if exec_reply is not None and text:
            first_line = text.splitlines()[0]
            cell.outputs.append(nbformat.v4.new_output("error", ename="Error", evalue=first_line, traceback=text.splitlines()))
            raise CellExecutionError.from_cell_and_msg(cell, {"ename": "Error", "evalue": text, "traceback": text.splitlines()})


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
        return RustNotebookClient(nb_man, **final_kwargs).execute()


# The default engine (no --engine flag) for every notebook; non-Rust notebooks run unchanged.
papermill_engines.register(None, RustEngine)
