"""The workshop as a participant sees it: `kernel/lab`, headless Chromium (Debian's) driven by
Playwright, notebooks 1 and 4 run through JupyterLab's menu (Run > Run All Cells). Checks that the
heatmap and the probability bar chart are rendered in the page and that no cell shows an error;
saves screenshots to notebooks/out/lab-*.png. A notebook with a broken cell makes the run fail
with the cell's error text.

The notebooks run as copies in notebooks/out/lab/ (the sources stay untouched whatever the UI
saves). Notebook 4 needs version 0.0.1 registered in .jukebox/ (notebooks 2 and 3); when it is
not, they are run first, headless, against the same `jukebox up`.

Run: JUKEBOX_BROWSER_TEST=1 .venv/bin/python -m pytest -q kernel/tests/test_lab_browser.py
(Chromium: kernel/setup.sh --with-tests; data: JUKEBOX_TEST_DATA, default ../shared/data).

Each notebook gets its session (Rust (jukebox) kernel) through the REST API before the page
opens it, and Run All waits until that kernel is connected and idle (server and status bar):
clicking Run All while the kernel was still starting made JupyterLab ask for a kernel ("Select
Kernel") and drop the queued cells. Each page uses a workspace of its own; the news pop-up is off
(settings in a temporary JUPYTERLAB_SETTINGS_DIR)."""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

from lab_helpers import REPO, Lab, api, end_session, services_env, session_of, start_session, wait_kernel_idle

playwright_api = pytest.importorskip("playwright.sync_api")

# Opt-in while it is not stable (see the note in the module's docstring): kernel/test runs
# every test in kernel/tests.
pytestmark = pytest.mark.skipif(os.environ.get("JUKEBOX_BROWSER_TEST") != "1", reason="set JUKEBOX_BROWSER_TEST=1 to run the browser test")

SAMPLE = Path(os.environ.get("JUKEBOX_TEST_DATA", REPO.parent / "shared/data"))
CHROMIUM = os.environ.get("JUKEBOX_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
COPIES = REPO / "notebooks/out/lab"
SHOTS = REPO / "notebooks/out"


class CellError(AssertionError):
    """A cell of a notebook run in the browser showed an error."""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: run kernel/setup.sh --with-tests")
    settings = tmp_path_factory.mktemp("lab-settings")
    # Every cell in the page (no windowed rendering), so that outputs can be checked in the DOM.
    tracker = settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    # No "get notified about Jupyter news?" pop-up over the cells (nor a fetch of the news).
    notification = settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(
        os.environ,
        JUKEBOX_DATA_DIR=str(SAMPLE),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path_factory.mktemp("lab-workspaces")),
    )
    # The notebooks talk to the `jukebox up` that kernel/lab starts.
    for key in [k for k in env if k.startswith("AWS_") or k in ("JUKEBOX_REGISTRY_URL", "JUKEBOX_MODEL_URL")]:
        del env[key]
    server = Lab(env=env)
    assert server.url, f"kernel/lab printed no URL within 15 s:\n{server.text()}"
    yield server
    server.stop(signal.SIGINT)
    assert server.ours() == [], f"kernel/lab left processes behind: {server.ours()}"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def write_notebook(name: str, cells) -> str:
    """A new Rust notebook notebooks/out/lab/<name> with one code cell per source in `cells`; its
    path for the JupyterLab URL."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust (jukebox)", "language": "rust"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    COPIES.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, COPIES / name)
    return f"out/lab/{name}"


def copy_notebook(name: str, extra_cells=()) -> str:
    """A copy of notebooks/<name> (plus `extra_cells`) in notebooks/out/lab/; its path for the
    JupyterLab URL."""
    COPIES.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    for source in extra_cells:
        nb.cells.append(nbformat.v4.new_code_cell(source))
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, COPIES / name)
    return f"out/lab/{name}"


KERNEL_IDLE = re.compile(r"Rust \(jukebox\) \| Idle")


def click_run_all(page):
    """Run > Run All Cells, through the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Run$")).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile("^Run All Cells$")).first.click()


def wait_ready(lab, page, path: str, timeout: float):
    """Until the page's notebook is connected to its Rust (jukebox) kernel and that kernel is idle,
    in the server (execution_state, a client connected) and in the status bar. Before that, Run All
    makes JupyterLab ask for a kernel ("Select Kernel") and drops the cells it queued."""
    session = session_of(lab, path)
    assert session and session["kernel"]["name"] == "rust", f"{path}: no rust session: {session}"
    wait_kernel_idle(lab, session["kernel"]["id"], timeout, connected=True)
    page.locator("#jp-main-statusbar").get_by_text(KERNEL_IDLE).first.wait_for(state="visible", timeout=timeout * 1000)
    # Idle for a moment (the kernel's start-up replies settle), then idle still.
    time.sleep(1.0)
    wait_kernel_idle(lab, session["kernel"]["id"], timeout, connected=True)


def run_all(lab, browser, path: str, timeout: float = 300, on_poll=None, poll: float = 0.5, expect_error: bool = False):
    """Opens `path` in JupyterLab (on a session with the Rust (jukebox) kernel created first through
    the REST API), waits until that kernel is idle, runs Run > Run All Cells, waits until every code
    cell ran or one failed. Returns the page; raises CellError with the failed cell's source and
    error text. With `expect_error`, a failed cell ends the run too: once the kernel is idle again
    (the cells queued behind it answered), the page is returned."""
    end_session(lab, path)
    start_session(lab, path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # A workspace of its own per page: nothing of an earlier page (its notebooks, its kernels) is
    # restored into this one.
    workspace = "test-" + re.sub(r"[^a-z0-9]+", "-", path.lower())
    page.goto(f"{lab.base}/lab/workspaces/{workspace}/tree/{urllib.parse.quote(path)}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=120_000)
    wait_ready(lab, page, path, timeout)
    click_run_all(page)
    started = time.monotonic()
    state = None
    asked = 0
    while time.monotonic() - started < timeout:
        # Should not happen any more (the kernel was connected and idle before Run All); if
        # JupyterLab asks anyway: ours, then wait for it and Run All again.
        dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
        if dialog.count() and dialog.is_visible():
            asked += 1
            assert asked <= 2, f"{path}: JupyterLab keeps asking for a kernel"
            dialog.locator("select").select_option(label="Rust (jukebox)")
            dialog.locator("button", has_text="Select").click()
            dialog.wait_for(state="hidden", timeout=30_000)
            wait_ready(lab, page, path, timeout)
            click_run_all(page)
        state = page.evaluate(
            """() => {
              const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')];
              return cells.map(c => ({
                source: c.querySelector('.jp-InputArea-editor')?.textContent ?? '',
                prompt: c.querySelector('.jp-InputArea-prompt')?.textContent ?? '',
                errors: [...c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.textContent),
              }));
            }"""
        )
        failed = [c for c in state if c["errors"]]
        if failed and expect_error:
            wait_kernel_idle(lab, session_of(lab, path)["kernel"]["id"], timeout)
            time.sleep(1.0)  # the page draws what the kernel answered last
            return page
        if failed:
            cell = failed[0]
            raise CellError(f"cell failed in {path}:\n{cell['source']}\n--- error ---\n" + "\n".join(cell["errors"]))
        if state and all(c["prompt"].strip().startswith("[") and c["prompt"].strip()[1:-2].isdigit() for c in state):
            return page
        if on_poll:
            on_poll(page)
        time.sleep(poll)
    pending = [(c["prompt"], c["source"][:60]) for c in (state or []) if not c["prompt"].strip()[1:-2].isdigit()]
    page.screenshot(path=str(SHOTS / "lab-timeout.png"))
    raise AssertionError(f"{path}: not all cells ran within {timeout} s; pending: {pending}")


def output_of(page, contains: str):
    """The output area of the code cell whose source contains `contains`."""
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell", has=page.locator(".jp-InputArea-editor", has_text=contains))
    assert cell.count() == 1, f"{cell.count()} cells contain {contains!r}"
    return cell.locator(".jp-OutputArea")


def assert_svg_rendered(output, what: str):
    """An SVG output, rendered (an inline <svg> or JupyterLab's <img> of it, with a size)."""
    image = output.locator(".jp-RenderedSVG img, .jp-RenderedSVG svg, .jp-RenderedImage img").first
    image.wait_for(state="visible", timeout=10_000)
    image.scroll_into_view_if_needed()
    size = image.evaluate("e => e.tagName === 'IMG' ? [e.naturalWidth, e.naturalHeight] : [e.getBoundingClientRect().width, e.getBoundingClientRect().height]")
    assert size[0] > 100 and size[1] > 100, f"{what}: rendered at {size}"


def registered(lab, version: str) -> bool:
    """Whether the registry of kernel/lab's `jukebox up` has jukebox `version`."""
    env = services_env(lab)
    base = env["JUKEBOX_REGISTRY_URL"] + "/api/model_registry/v1"
    try:
        with urllib.request.urlopen(f"{base}/registered_model?name=jukebox", timeout=10) as r:
            model = json.load(r)
        with urllib.request.urlopen(f"{base}/model_version?name={version}&parentResourceId={model['id']}", timeout=10) as r:
            return json.load(r).get("name") == version
    except urllib.error.HTTPError:
        return False


def ensure_model_registered(lab):
    if registered(lab, "0.0.1"):
        return
    env = dict(os.environ, JUPYTER_PATH=str(REPO / ".venv/share/jupyter"), **services_env(lab))
    for name in ("2-experiment_train.ipynb", "3-save_model.ipynb"):
        params = ["-p", "data_dir", str(SAMPLE)] if name.startswith("2") else []
        subprocess.run(
            [str(REPO / ".venv/bin/papermill"), "--cwd", str(REPO / "notebooks"), "--kernel", "rust", "--no-progress-bar",
             str(REPO / "notebooks" / name), str(REPO / "notebooks/out" / name), *params],
            env=env, check=True, timeout=600,
        )
    assert registered(lab, "0.0.1")


def run_notebook_with_plot(lab, browser, name, plot_cell, what, check=None):
    """Runs notebook `name` with Run All, checks that the output of the cell starting with
    `plot_cell` is a rendered SVG (`what` names it in a failure), runs `check(page)`, keeps a
    screenshot and closes the notebook's session."""
    started = time.monotonic()
    path = copy_notebook(name)
    page = run_all(lab, browser, path)
    assert_svg_rendered(output_of(page, plot_cell), what)
    if check:
        check(page)
    page.screenshot(path=str(SHOTS / f"lab-{Path(name).stem}.png"))
    print(f"{name}: {time.monotonic() - started:.0f} s")
    page.close()
    end_session(lab, path)


def test_notebooks_1_and_4_run_in_the_browser_with_their_plots(lab, browser):
    run_notebook_with_plot(lab, browser, "1-data_exploration.ipynb", "correlation_heatmap", "notebook 1's heatmap")
    ensure_model_registered(lab)

    def names_a_country(page):
        assert "most likely in the Top 50 of" in output_of(page, "prediction.top_k(1)").inner_text()

    run_notebook_with_plot(lab, browser, "4-request_model.ipynb", "prediction.chart()", "notebook 4's probability chart",
                           check=names_a_country)


def test_a_broken_cell_fails_the_run_with_its_error_text(lab, browser):
    path = write_notebook(
        "broken.ipynb",
        ['println!("before the broken cell");', 'let broken: u32 = "deliberately not a number";', 'println!("after");'],
    )
    with pytest.raises(CellError) as failure:
        run_all(lab, browser, path, timeout=300)
    end_session(lab, path)
    message = str(failure.value)
    assert "deliberately not a number" in message and "mismatched types" in message, message


def test_training_progress_is_redrawn_in_place_in_the_page(lab, browser):
    """A training cell of many epochs, stopped through the kernel's interrupt once the page has
    drawn its bar in three states (so the test takes the same time on a fast or a slow machine):
    while it runs, its output area holds one output whose bar (an HTML <progress>) moves; when it
    stops, that output shows the epoch lines and the "Stopped at" line, and no bar; the cell ends
    as an error."""
    path = write_notebook(
        "training.ipynb",
        [
            "use jukebox::data::ChartData;\nuse jukebox::prepare::{PreparedData, SplitOptions};\n"
            "use jukebox::train::{Learner, NeuralNetwork, TrainedModel};\n"
            f"let charts: ChartData = ChartData::load(Some(std::path::Path::new({json.dumps(str(SAMPLE))})))?;\n"
            "let data: PreparedData = PreparedData::new(&charts, &jukebox::data::FEATURES, &SplitOptions::with_seed(42))?;",
            "let model: TrainedModel = NeuralNetwork::new(100000, 32, 42).fit(&data)?;",
        ],
    )
    seen = []  # (number of outputs, bar value, text) of the training cell while it runs
    interrupted = []

    def watch(page):
        sample = page.evaluate(
            """() => {
              const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')];
              const cell = cells.find(c => (c.querySelector('.jp-InputArea-editor')?.textContent ?? '').includes('NeuralNetwork::new(100000'));
              const bar = cell?.querySelector('.jp-OutputArea progress');
              return bar ? [cell.querySelectorAll('.jp-OutputArea-output').length, bar.getAttribute('value'), bar.closest('div').textContent] : null;
            }"""
        )
        if sample:
            if not seen:
                page.screenshot(path=str(SHOTS / "lab-training-progress.png"))
            seen.append(sample)
        if not interrupted and len({s[2] for s in seen}) >= 3:
            kernel_id = session_of(lab, path)["kernel"]["id"]
            api(lab, f"/api/kernels/{kernel_id}/interrupt", "POST")
            interrupted.append(time.monotonic())

    page = run_all(lab, browser, path, timeout=300, on_poll=watch, poll=0.1, expect_error=True)
    output = output_of(page, "NeuralNetwork::new(100000")
    final = output.inner_text()
    bars_left, outputs = output.locator("progress").count(), output.locator(".jp-OutputArea-output").count()
    page.screenshot(path=str(SHOTS / "lab-training-done.png"))
    page.close()
    end_session(lab, path)
    print(f"training progress: {len(seen)} samples of the bar, {len({s[2] for s in seen})} distinct")
    assert interrupted, f"the bar did not move while training: {seen}"
    assert all(count == 1 for count, _, _ in seen), f"more than one output while training: {seen}"
    assert "Epoch 1/100000:" in final and "Stopped at epoch" in final, final
    assert "training interrupted at epoch" in final, final
    assert bars_left == 0, "a bar is left after training"
    # The progress output and the cell's error.
    assert outputs == 2, final


@pytest.mark.parametrize(
    "failing, words",
    [
        ('let n: u32 = "three".parse::<u32>()?;', "invalid digit"),
        ('let n: u32 = "three, not a number";', "mismatched types"),
        ('let v: Vec<u32> = Vec::new();\nprintln!("{}", v[3]);', "index out of bounds"),
    ],
    ids=["question-mark", "compile-error", "panic"],
)
def test_run_all_stops_at_a_failed_cell(lab, browser, failing, words):
    """Five cells, the third fails: Run All shows its error as an error output and never runs
    cells 4 and 5, as with a Python kernel."""
    name = f"stops-{words.split()[0]}.ipynb"
    path = write_notebook(
        name,
        ['println!("cell one");', 'println!("cell two");', failing, 'println!("cell four");', 'println!("cell five");'],
    )
    page = run_all(lab, browser, path, timeout=300, expect_error=True)
    state = page.evaluate(
        """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell')].map(c => ({
              prompt: c.querySelector('.jp-InputArea-prompt')?.textContent ?? '',
              outputs: c.querySelectorAll('.jp-OutputArea-output').length,
              text: c.querySelector('.jp-OutputArea')?.textContent ?? '',
            }))"""
    )
    # Save the page's notebook: the file says which outputs are errors.
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.click()
    page.keyboard.press("Control+s")
    saved = None
    for _ in range(50):
        nb = nbformat.read(COPIES / name, as_version=4)
        if any(c.get("outputs") for c in nb.cells):
            saved = nb
            break
        time.sleep(0.2)
    page.close()
    end_session(lab, path)
    assert [s["prompt"].strip() for s in state][:3] == ["[1]:", "[2]:", "[3]:"], state
    assert "cell one" in state[0]["text"] and "cell two" in state[1]["text"], state
    assert words in state[2]["text"], state
    for cell in state[3:]:
        assert cell["outputs"] == 0 and cell["prompt"].strip() == "[ ]:", state
    assert saved is not None, "the notebook was not saved"
    errors = [o for o in saved.cells[2].outputs if o.output_type == "error"]
    assert errors and words in (errors[0].evalue + "\n".join(errors[0].traceback)), saved.cells[2].outputs
    assert all(not c.outputs and c.execution_count is None for c in saved.cells[3:]), saved.cells[3:]
