"""The papermill engine for Rust notebooks, through the real Rust kernel: a cell whose `?` fails
shows its error and stops the run there (evcxr itself reports such a cell as a success)."""
import json
import socket
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

REPO = Path(__file__).resolve().parents[2]


KERNEL_JSON = REPO / ".venv/share/jupyter/kernels/rust/kernel.json"


@pytest.fixture(autouse=True)
def our_kernelspec(monkeypatch):
    if not KERNEL_JSON.exists():
        pytest.fail("the rust kernelspec is missing: run kernel/setup.sh")
    monkeypatch.setenv("JUPYTER_PATH", str(REPO / ".venv/share/jupyter"))
    yield
    # evcxr_jupyter rewrites a kernelspec whose version.txt it finds out of date when it starts;
    # ours must survive the kernels the test started.
    assert json.loads(KERNEL_JSON.read_text())["argv"][0].endswith("kernel/evcxr-kernel")


def rust_notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust (jukebox)", "language": "rust"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def outputs_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("evalue", ""))
        parts.extend(str(v) for v in output.get("data", {}).values())
    return "\n".join(parts)


def test_a_failed_question_mark_stops_the_run_at_its_cell(tmp_path):
    source, output = tmp_path / "fails.ipynb", tmp_path / "out.ipynb"
    nbformat.write(
        rust_notebook(
            'println!("before");',
            'Err::<(), String>("boom: the first line\\nand a hint on the second".to_string())?;',
            'println!("after");',
        ),
        source,
    )
    with pytest.raises(PapermillExecutionError, match="boom: the first line"):
        papermill.execute_notebook(str(source), str(output), kernel_name="rust", progress_bar=False)
    cells = nbformat.read(output, as_version=4).cells
    # papermill puts a banner cell first; our three cells follow.
    ours = [c for c in cells if c.cell_type == "code"]
    assert "before" in outputs_text(ours[0])
    failed = outputs_text(ours[1])
    assert "boom: the first line" in failed and "and a hint on the second" in failed
    assert any(o.get("output_type") == "error" for o in ours[1].outputs)
    assert ours[2].get("outputs", []) == [] and ours[2].get("execution_count") is None


def test_notebook_1_offline_without_data_stops_at_its_load_cell(tmp_path, monkeypatch):
    # No data folder, an empty cache, and a download address where nothing listens.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.delenv("JUKEBOX_DATA_DIR", raising=False)
    monkeypatch.setenv("JUKEBOX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("JUKEBOX_DATA_URL", f"http://127.0.0.1:{closed_port}/data")
    output = tmp_path / "1-data_exploration.ipynb"
    with pytest.raises(PapermillExecutionError):
        papermill.execute_notebook(
            str(REPO / "notebooks/1-data_exploration.ipynb"), str(output), kernel_name="rust", progress_bar=False, cwd=str(REPO / "notebooks")
        )
    code = [c for c in nbformat.read(output, as_version=4).cells if c.cell_type == "code"]
    load = next(i for i, c in enumerate(code) if "Dataset::load" in c.source)
    text = outputs_text(code[load])
    assert "no chart data found" in text and "JUKEBOX_DATA_DIR" in text, text
    assert all(c.get("execution_count") is None for c in code[load + 1 :])
