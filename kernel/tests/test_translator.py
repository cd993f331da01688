"""Tests of the papermill translator for Rust: generated code, compiled with rustc, and a real
papermill run against the evcxr kernel with a parameter of each type."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.translators import papermill_translators

from papermill_rust.translator import PRELUDE, RustTranslator

REPO = Path(__file__).resolve().parents[2]


def test_registered_for_kernel_name_and_language():
    assert papermill_translators.find_translator("rust", "rust") is RustTranslator
    assert papermill_translators.find_translator("other", "Rust") is RustTranslator


@pytest.mark.parametrize(
    "value, rust",
    [
        (5, "5i64"),
        (-3, "-3i64"),
        (0.5, "0.5f64"),
        (2.0, "2.0f64"),
        (1e-7, "1e-07f64"),
        (True, "true"),
        (None, "PapermillNone"),
        ('a "quoted"\\ path\n', '"a \\"quoted\\"\\\\ path\\n"'),
        ([1, 2.5], "vec![1.0f64, 2.5f64]"),
        ([], "PapermillEmpty"),
        ({"a": 1}, 'vec![("a", 1i64)]'),
    ],
)
def test_translate_values(value, rust):
    assert RustTranslator.translate(value) == rust


def test_assign_keeps_declared_type_and_rejects_bad_names():
    assert RustTranslator.assign("epochs", "5i64") == "let epochs = papermill_set(epochs, 5i64);"
    with pytest.raises(ValueError, match="not a Rust identifier"):
        RustTranslator.assign("bad-name", "1i64")
    with pytest.raises(ValueError, match="one element type"):
        RustTranslator.translate([1, "x"])


def test_inspect_reads_parameters_cell():
    cell = nbformat.v4.new_code_cell('let epochs: usize = 2; // training epochs\nlet name: String = "x".to_string();')
    params = RustTranslator.inspect(cell)
    assert [(p.name, p.inferred_type_name, p.default, p.help) for p in params] == [
        ("epochs", "usize", "2", "training epochs"),
        ("name", "String", '"x".to_string()', ""),
    ]


DECLARATIONS = """
let data_dir: Option<String> = None;
let out: std::path::PathBuf = "a".into();
let title: String = String::new();
let top_n: usize = 1;
let seed: u64 = 1;
let rate: f32 = 0.1;
let ok: bool = false;
let missing: Option<String> = Some("x".into());
let limit: Option<usize> = None;
let weights: Vec<f64> = vec![];
let names: Vec<String> = vec!["z".into()];
let counts: std::collections::BTreeMap<String, u32> = Default::default();
"""


@pytest.mark.skipif(shutil.which("rustc") is None, reason="rustc not on PATH")
def test_generated_code_compiles_and_keeps_types(tmp_path):
    params = {
        "data_dir": "/data/with \"quotes\" ü",
        "out": "models",
        "title": "tab\there",
        "top_n": 5,
        "seed": 42,
        "rate": 0.25,
        "ok": True,
        "missing": None,
        "limit": 3,
        "weights": [1, 2.5],
        "names": [],
        "counts": {"a": 1, "b": 2},
    }
    code = RustTranslator.codify(params)
    program = (
        PRELUDE
        + "\nfn main() {\n"
        + DECLARATIONS
        + "\n".join(line for line in code.splitlines() if line.startswith("let "))
        + "\nlet _: usize = top_n; let _: f32 = rate;"  # the declared types survive
        + '\nprintln!("{:?}|{:?}|{:?}|{}|{}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}", data_dir, out, title, top_n, seed, rate, ok, missing, limit, weights, names, counts);\n}\n'
    )
    source = tmp_path / "params.rs"
    source.write_text(program)
    subprocess.run(["rustc", "--edition", "2021", "-o", str(tmp_path / "params"), str(source)], check=True)
    result = subprocess.run([str(tmp_path / "params")], check=True, capture_output=True, text=True)
    assert result.stdout.strip() == (
        'Some("/data/with \\"quotes\\" ü")|"models"|"tab\\there"|5|42|0.25|true|None|Some(3)|[1.0, 2.5]|[]|{"a": 1, "b": 2}'
    )


def test_papermill_run_with_each_type(tmp_path):
    """A real headless run through the evcxr kernel: -p values of each type reach the notebook."""
    if not (REPO / ".venv/share/jupyter/kernels/rust/kernel.json").exists():
        pytest.fail("the rust kernelspec is missing: run kernel/setup.sh")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rust", "display_name": "Rust", "language": "rust"}
    params = nbformat.v4.new_code_cell(DECLARATIONS)
    params.metadata["tags"] = ["parameters"]
    show = nbformat.v4.new_code_cell(
        'println!("{:?}|{}|{}|{}|{:?}|{:?}|{:?}", data_dir, top_n, rate, ok, missing, weights, names);'
    )
    nb.cells = [params, show]
    source, output = tmp_path / "params.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    env_path = str(REPO / ".venv/share/jupyter")
    os.environ["JUPYTER_PATH"] = env_path
    papermill.execute_notebook(
        str(source),
        str(output),
        parameters={"data_dir": "/x", "top_n": 7, "rate": 0.5, "ok": True, "missing": None, "weights": [1, 2], "names": ["a", "b"]},
        kernel_name="rust",
        progress_bar=False,
    )
    result = nbformat.read(output, as_version=4)
    printed = "".join(o.get("text", "") for o in result.cells[-1].outputs)
    assert printed.strip() == 'Some("/x")|7|0.5|true|None|[1.0, 2.0]|["a", "b"]'
