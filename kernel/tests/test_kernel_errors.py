"""A failed cell as Jupyter expects it from a kernel (issue 21), checked through jupyter_client
against the Rust (jukebox) kernel (patched evcxr_jupyter behind kernel/kernel_relay.py):

- a `?` error, a compile error and a panic each answer `execute_reply` with status "error" and
  ename/evalue/traceback, after an `error` message on iopub, before the cell's idle status;
- the execute requests queued behind a failed one are answered "aborted" and never run
  (`stop_on_error`), so Run All stops there; one with `stop_on_error: False` does not abort them;
- a failed `let` leaves the variable's previous value (and type); a cell that read the old value
  it failed to replace names the variable it lost;
- the first cell is numbered 1.
"""
import uuid

import pytest

from lab_helpers import rust_kernel


@pytest.fixture(scope="module")
def kernel():
    with rust_kernel() as (_, client):
        yield client


def outcome(client, msg_id, timeout=120):
    """(reply content, iopub messages of the request up to its idle status, in order)."""
    messages = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    reply = client.get_shell_msg(timeout=timeout)
    while reply["parent_header"].get("msg_id") != msg_id:
        reply = client.get_shell_msg(timeout=timeout)
    return reply["content"], messages


def execute(client, code, **options):
    return outcome(client, client.execute(code, **options))


def printed(messages):
    return "".join(m["content"].get("text", "") for m in messages if m["msg_type"] == "stream")


def errors(messages):
    return [m["content"] for m in messages if m["msg_type"] == "error"]


def test_the_first_cell_is_numbered_1():
    """A kernel of its own: counts start with its first cell."""
    with rust_kernel() as (_, client):
        reply, messages = execute(client, "1 + 1")
        assert reply["status"] == "ok" and reply["execution_count"] == 1, reply
        inputs = [m["content"]["execution_count"] for m in messages if m["msg_type"] == "execute_input"]
        assert inputs == [1], inputs
        reply, _ = execute(client, "2 + 2")
        assert reply["execution_count"] == 2, reply


@pytest.mark.parametrize(
    "code, ename, words",
    [
        ('let n: u32 = "twelve".parse::<u32>()?;', "Error", "invalid digit"),
        ('let n: u32 = "a text, not a number";', "CompilationError", "mismatched types"),
        ('let v: Vec<u32> = Vec::new();\nprintln!("{}", v[3]);', "Error", "index out of bounds"),
    ],
    ids=["question-mark", "compile-error", "panic"],
)
def test_a_failed_cell_is_an_error_with_its_text(kernel, code, ename, words):
    reply, messages = execute(kernel, code)
    assert reply["status"] == "error", (reply, messages)
    assert reply["ename"] == ename and words in reply["evalue"], reply
    assert reply["traceback"] and any(words in line for line in reply["traceback"]), reply
    shown = errors(messages)
    assert shown and words in shown[0]["evalue"], messages
    # The error comes before the idle status (which ends the messages collected here).
    assert messages[-1]["content"]["execution_state"] == "idle"
    # The error is the cell's error output, not a stray text on stderr after it.
    assert "twelve" not in printed(messages) or ename != "Error", messages


def test_requests_queued_behind_a_failed_cell_are_aborted(kernel):
    """What Run All sends: every cell at once. The third fails; the fourth and fifth never run."""
    marker = uuid.uuid4().hex[:8]
    cells = [
        f'println!("one {marker}");',
        f'println!("two {marker}");',
        'let n: u32 = "three".parse::<u32>()?;',
        f'println!("four {marker}");',
        f'println!("five {marker}");',
    ]
    ids = [kernel.execute(code) for code in cells]
    results = [outcome(kernel, msg_id) for msg_id in ids]
    statuses = [reply["status"] for reply, _ in results]
    assert statuses == ["ok", "ok", "error", "aborted", "aborted"], statuses
    assert f"one {marker}" in printed(results[0][1]) and f"two {marker}" in printed(results[1][1])
    for reply, messages in results[3:]:
        assert printed(messages) == "" and not errors(messages), messages
    # The kernel runs what is sent after the failure.
    reply, messages = execute(kernel, f'println!("after {marker}");')
    assert reply["status"] == "ok" and f"after {marker}" in printed(messages)


def test_a_request_that_does_not_stop_on_error_lets_the_queue_run(kernel):
    marker = uuid.uuid4().hex[:8]
    failing = kernel.execute('let n: u32 = "x".parse::<u32>()?;', stop_on_error=False)
    after = kernel.execute(f'println!("ran {marker}");')
    assert outcome(kernel, failing)[0]["status"] == "error"
    reply, messages = outcome(kernel, after)
    assert reply["status"] == "ok" and f"ran {marker}" in printed(messages)


def test_a_failed_let_keeps_the_previous_value(kernel):
    reply, _ = execute(kernel, 'let kept: String = "the old value".to_string();')
    assert reply["status"] == "ok"
    reply, _ = execute(kernel, 'let kept: String = std::fs::read_to_string("/nonexistent/file")?;')
    assert reply["status"] == "error" and "No such file" in reply["evalue"], reply
    reply, messages = execute(kernel, 'println!("kept: {kept}");')
    assert reply["status"] == "ok" and "kept: the old value" in printed(messages), (reply, messages)
    # Also after a panic, and with another type in the failed `let`.
    reply, _ = execute(kernel, 'let kept: u64 = { let v: Vec<u64> = Vec::new(); v[1] };')
    assert reply["status"] == "error", reply
    reply, messages = execute(kernel, 'println!("still: {}", kept.to_uppercase());')
    assert reply["status"] == "ok" and "still: THE OLD VALUE" in printed(messages), (reply, messages)
    # A successful `let` replaces it.
    reply, _ = execute(kernel, 'let kept: String = "the new value".to_string();')
    reply, messages = execute(kernel, 'println!("now: {kept}");')
    assert "now: the new value" in printed(messages), messages


def test_a_failed_let_that_read_the_old_value_says_what_was_lost(kernel):
    reply, _ = execute(kernel, "let counter: u32 = 1;")
    assert reply["status"] == "ok"
    # Reading the old value in the new `let` moves it into the cell; when the cell then fails, the
    # error names the variable (evcxr cannot put a moved value back).
    reply, _ = execute(kernel, 'let counter: u32 = counter + "x".parse::<u32>()?;')
    assert reply["status"] == "error" and "lost: counter" in reply["evalue"], reply
    # A successful one works as before.
    execute(kernel, "let counter: u32 = 1;")
    reply, _ = execute(kernel, "let counter: u32 = counter + 1;")
    assert reply["status"] == "ok", reply
    reply, messages = execute(kernel, 'println!("counter {counter}");')
    assert "counter 2" in printed(messages), messages
