"""Long cells in the Rust kernel: training progress redrawn in place while a cell runs, and interrupting a cell as JupyterLab's stop button does (an interrupt through the
kernel manager, which for our kernelspec's interrupt_mode "signal" sends SIGINT to the kernel's
process group): a training cell stops within a second or two with its error and keeps the
notebook's variables; any other long cell is stopped too (its process restarted, as evcxr does);
the kernel runs the next cell either way."""
import json
import os
import time
from pathlib import Path

import pytest

from lab_helpers import REPO, rust_kernel

SAMPLE = Path(os.environ.get("JUKEBOX_TEST_DATA", REPO.parent / "shared/data"))


@pytest.fixture(scope="module")
def kernel():
    with rust_kernel() as (manager, client):
        assert manager.kernel_spec.interrupt_mode == "signal"
        yield manager, client


def run(client, code, timeout=120, on_output=None):
    """Executes `code`; returns (status, text of every stream, result and error output)."""
    msg_id = client.execute(code)
    return collect(client, msg_id, timeout, on_output)


# A cell that loads and prepares the shared sample (the training tests' `data`).
PREPARE_SAMPLE = f"""
use jukebox::data::ChartData;
use jukebox::prepare::{{PreparedData, SplitOptions}};
use jukebox::train::{{Learner, NeuralNetwork, TrainedModel}};
let charts: ChartData = ChartData::load(Some(std::path::Path::new({json.dumps(str(SAMPLE))})))?;
let data: PreparedData = PreparedData::new(&charts, &jukebox::data::FEATURES, &SplitOptions::with_seed(42))?;
println!("{{}} classes", data.n_classes());
"""


def displays_of(client, msg_id, timeout):
    """Until the cell `msg_id` goes idle: its display_data contents, its update_display_data
    contents and its stream texts (everything here arrived while the cell was busy)."""
    shown, updates, streams = [], [], []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "display_data":
            shown.append(content)
        elif kind == "update_display_data":
            updates.append(content)
        elif kind == "stream":
            streams.append(content["text"])
        elif kind == "status" and content["execution_state"] == "idle":
            return shown, updates, streams


def text_of(msg):
    """The text a message adds to a cell's output ("" for other messages)."""
    kind, content = msg["msg_type"], msg["content"]
    if kind == "stream":
        return content["text"]
    if kind in ("execute_result", "display_data", "update_display_data"):
        return content["data"].get("text/plain", "")
    if kind == "error":
        return content["ename"] + ": " + content["evalue"] + "\n" + "\n".join(content["traceback"])
    return ""


def linger(client, msg_id, texts, quiet=1.5):
    """Collects the cell's output that arrives after it went idle. evcxr reads the cell process's
    stderr (where a `?` error is printed) on its own thread, unsynchronised with the end of the
    cell, so an error can reach the frontend just after the idle status; JupyterLab still shows it
    in the cell, and so does this."""
    while True:
        try:
            msg = client.get_iopub_msg(timeout=quiet)
        except Exception:
            return
        if msg["parent_header"].get("msg_id") == msg_id:
            texts.append(text_of(msg))


def collect(client, msg_id, timeout, on_output=None):
    texts, deadline = [], time.monotonic() + timeout
    while True:
        msg = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        texts.append(text_of(msg))
        if on_output and kind == "stream":
            on_output(content["text"])
        if kind == "status" and content["execution_state"] == "idle":
            break
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    if reply["content"]["status"] != "ok":
        linger(client, msg_id, texts)
    return reply["content"]["status"], "".join(texts)


def interrupt_after(manager, client, code, seconds, first_output=None):
    """Runs `code`, interrupts it `seconds` after it started (or after `first_output` appeared);
    returns (status, output, seconds from the interrupt to the cell's end)."""
    msg_id = client.execute(code)
    started, texts = time.monotonic(), []
    interrupted_at = None
    deadline = started + 300
    while True:
        now = time.monotonic()
        due = now - started >= seconds and (first_output is None or first_output in "".join(texts))
        if interrupted_at is None and due:
            manager.interrupt_kernel()
            interrupted_at = time.monotonic()
        try:
            msg = client.get_iopub_msg(timeout=0.05)
        except Exception:
            if time.monotonic() > deadline:
                raise
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        texts.append(text_of(msg))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            ended = time.monotonic()
            break
    reply = client.get_shell_msg(timeout=30)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=30)
    linger(client, msg_id, texts)
    assert interrupted_at is not None, f"the cell ended before it was interrupted:\n{''.join(texts)}"
    return reply["content"]["status"], "".join(texts), ended - interrupted_at


def test_an_interrupted_training_cell_stops_quickly_and_keeps_the_variables(kernel):
    manager, client = kernel
    status, output = run(client, PREPARE_SAMPLE)
    assert status == "ok", output
    # The model the interrupted cell would have replaced: one epoch.
    status, output = run(client, "let model: TrainedModel = NeuralNetwork::new(1, 32, 42).fit(&data)?;")
    assert status == "ok", output
    # 300 epochs: 15 s on the sample at 250k samples/s, twice that at 130k (30 epochs took 1.7 s
    # on a fast CI machine, which ended before the interrupt). Interrupt 2 s after the cell
    # started, once the first epoch is under way.
    status, output, latency = interrupt_after(
        manager, client, "let model: TrainedModel = NeuralNetwork::new(300, 32, 42).fit(&data)?;", 2.0, first_output="Epoch 1/300"
    )
    print(f"interrupt to cell end: {latency:.2f} s")
    assert "Epoch 1/300" in output, output
    # The progress closes with where training stopped (stdout, in order with the epoch lines)...
    assert "Stopped at epoch" in output, output
    # ... and the cell ends as an error: the training error, status "error" (Run All stops).
    assert status == "error", output
    assert "training interrupted at epoch" in output, output
    assert "Epoch 300/300" not in output, output
    assert latency < 2.0, f"the training cell took {latency:.2f} s to stop"
    # The kernel runs the next cell, the variables defined before are still there, and `model`
    # is still the one-epoch model it was before the interrupted cell.
    status, output = run(client, "1 + 1")
    assert status == "ok" and "2" in output, output
    status, output = run(client, 'println!("still {} classes", data.n_classes());')
    assert status == "ok" and "still" in output and "classes" in output, output
    status, output = run(client, 'println!("the model has {} epochs", model.history.loss.len());')
    assert status == "ok" and "the model has 1 epochs" in output, output


def test_an_interrupted_sweep_keeps_its_finished_runs_and_is_an_error(kernel):
    """The sweep catches the interrupt and ends with the runs it finished (so `sweep` holds them),
    and the cell is still an interrupted cell: status "error" (KeyboardInterrupt), so Run All
    stops before anything is chosen from a partial sweep."""
    manager, client = kernel
    status, output = run(client, PREPARE_SAMPLE)
    assert status == "ok", output
    # A first run of 1 epoch (done within a second), then runs of 400 epochs (about 9 s each on
    # the sample at 280k samples/s): the interrupt 3 s after the start lands in the second run
    # on a machine twice as fast or twice as slow as ours.
    grid = '{"epochs": [1, 400], "hidden_layers": [[16], [32], [64]], "learning_rate": [0.001], "batch_size": [32]}'
    code = (
        "use jukebox::refine::{Grid, Sweep};\n"
        f"let grid: Grid = r#\"{grid}\"#.parse()?;\n"
        "let sweep: Sweep = grid.sweep(&data, 42)?;"
    )
    status, output, latency = interrupt_after(manager, client, code, 3.0)
    print(f"interrupt to cell end: {latency:.2f} s")
    assert status == "error" and "KeyboardInterrupt" in output, output
    status, output = run(client, 'println!("{} of {} runs kept", sweep.runs.len(), sweep.planned);')
    assert status == "ok", output
    kept, planned = (int(x) for x in output.split(" runs kept")[0].split()[-3::2])
    assert 1 <= kept < planned == 6, output


def test_a_stop_pressed_after_the_cell_ended_changes_nothing(kernel):
    """An interrupt of an idle kernel (the stop button pressed just after a training cell ended)
    leaves the cell process and its variables alone, as Jupyter expects."""
    manager, client = kernel
    status, output = run(client, PREPARE_SAMPLE)
    assert status == "ok", output
    status, output = run(client, "let short: TrainedModel = NeuralNetwork::new(1, 32, 42).fit(&data)?;")
    assert status == "ok", output
    manager.interrupt_kernel()
    time.sleep(2.0)  # what the interrupt would do has been done by now
    status, output = run(client, 'println!("still {} classes", data.n_classes());')
    assert status == "ok" and "still" in output and "classes" in output, output


def test_any_other_long_cell_is_stopped_too_and_the_kernel_goes_on(kernel):
    manager, client = kernel
    status, output, latency = interrupt_after(manager, client, "std::thread::sleep(std::time::Duration::from_secs(120));", 2.0)
    print(f"interrupt to cell end: {latency:.2f} s")
    assert status == "error" and "Subprocess terminated" in output, output
    assert latency < 3.0, f"the cell took {latency:.2f} s to stop"
    status, output = run(client, "1 + 1")
    assert status == "ok" and "2" in output, output


def test_training_progress_is_one_output_redrawn_in_place_while_the_cell_runs(kernel):
    """What JupyterLab shows while a network trains: one output (display_data with a display id)
    that the kernel's relay redraws (update_display_data, same id) while the cell is still busy,
    and which ends as the epoch lines and the summary line, with no bar left."""
    _, client = kernel
    status, output = run(client, PREPARE_SAMPLE)
    assert status == "ok", output
    # 100 epochs: the output shows every 10th epoch's line, and the sample trains an epoch in
    # 40-70 ms, so time-due redraws (every 0.2 s) fall between two lines, in mid-epoch. With 30
    # epochs (a line every 3rd epoch) a fast machine drew only the lines, and no bar.
    msg_id = client.execute("let model: TrainedModel = NeuralNetwork::new(100, 32, 42).fit(&data)?;")
    shown, updates, streams = displays_of(client, msg_id, timeout=300)
    reply = client.get_shell_msg(timeout=30)
    assert reply["content"]["status"] == "ok", streams
    # One output, created once, then redrawn in place while the cell ran.
    assert len(shown) == 1, shown
    display_id = shown[0]["transient"]["display_id"]
    assert display_id and all(u["transient"]["display_id"] == display_id for u in updates)
    print(f"live progress: 1 output, {len(updates)} updates")
    assert len(updates) >= 10, f"only {len(updates)} updates while training"
    # Some states show the bar of an epoch in the middle of its batches.
    assert any("<progress" in u["data"]["text/html"] and "batch " in u["data"]["text/plain"] for u in updates)
    # The last state: the epoch lines and the summary line, no bar; no display line leaked as text.
    final = updates[-1]["data"]["text/plain"].splitlines()
    assert final[0].startswith("Epoch 1/100:") and final[-2].startswith("Epoch 100/100:"), final
    assert final[-1].startswith("Trained 100 epochs in"), final
    assert "<progress" not in updates[-1]["data"]["text/html"]
    assert not any("JUKEBOX_DISPLAY" in text for text in streams), streams


def test_a_download_in_a_cell_is_one_output_that_ends_as_its_summary_line(kernel, tmp_path):
    """The data stage's download (a local HTTP server here): one output, redrawn while the bytes
    come in, that ends as "Downloaded <file>: <size> in <seconds> s"; nothing on stderr."""
    import functools
    import http.server
    import threading

    (tmp_path / "x.parquet").write_bytes(os.urandom(8_000_000))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, client = kernel
        url = f"http://127.0.0.1:{server.server_address[1]}/x.parquet"
        code = f'jukebox::data::download_atomically("{url}", std::path::Path::new("{tmp_path}/copy/x.parquet"))?;'
        msg_id = client.execute(code)
        shown, updates, streams = displays_of(client, msg_id, timeout=120)
        linger(client, msg_id, streams)
    finally:
        server.shutdown()
    assert len(shown) == 1, (shown, streams)
    display_id = shown[0]["transient"]["display_id"]
    assert shown[0]["data"]["text/plain"].startswith("Downloading x.parquet:"), shown
    assert updates and all(u["transient"]["display_id"] == display_id for u in updates)
    final = updates[-1]["data"]["text/plain"]
    assert final.startswith("Downloaded x.parquet: 8.0 MB in "), final
    assert not "".join(streams).strip(), streams
    assert (tmp_path / "copy/x.parquet").stat().st_size == 8_000_000


def test_a_cell_that_asks_for_input_gets_the_answer_through_the_relay(kernel):
    """stdin through the relay. A cell asks for input by printing evcxr's input line (what
    `evcxr_input::get_string` prints); evcxr then sends Jupyter an `input_request` on the stdin
    channel, addressed to the identity its execute request came from on shell, and writes the
    `input_reply` to the cell's stdin. The relay's shell and stdin sockets share one identity so
    that this request finds the frontend."""
    _, client = kernel
    code = (
        'println!("EVCXR_INPUT_REQUEST:Your favourite song?");\n'
        "let mut answer = String::new();\n"
        "std::io::stdin().read_line(&mut answer)?;\n"
        'println!("you said: {}", answer.trim());'
    )
    msg_id = client.execute(code, allow_stdin=True)
    request = client.get_stdin_msg(timeout=120)
    assert request["msg_type"] == "input_request", request
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"]["prompt"] == "Your favourite song?"
    client.input("Last Christmas")
    status, text = collect(client, msg_id, 120)
    assert status == "ok", text
    assert "you said: Last Christmas" in text, text
