"""Tests of the papermill translator for Rust: generated code, compiled with rustc, and a real
papermill run against the evcxr kernel with a parameter of each type."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import papermill
import pytest
from papermill.translators import papermill_translators

from papermill_rust.translator import ParameterTypeError, RustTranslator

REPO = Path(__file__).resolve().parents[2]


def test_registered_for_kernel_name_and_language():
    assert papermill_translators.find_translator("rust", "rust") is RustTranslator
    assert papermill_translators.find_translator("other", "Rust") is RustTranslator


@pytest.mark.parametrize(
    "value, rust_type, rust",
    [
        (5, "usize", "5"),
        (-3, "i64", "-3"),
        (4.0, "u32", "4"),
        (0.5, "f64", "0.5"),
        (2, "f32", "2.0"),
        (1e-7, "f64", "1e-07"),
        (float("nan"), "f32", "f32::NAN"),
        (True, "bool", "true"),
        (None, "Option<String>", "None"),
        ("x", "Option<String>", 'Some("x".to_string())'),
        (3, "Option<usize>", "Some(3)"),
        ('a "quoted"\\ path\n\x01 ü', "String", '"a \\"quoted\\"\\\\ path\\n\\u{1} ü".to_string()'),
        ("0.0.2", "String", '"0.0.2".to_string()'),
        (1.0, "String", '"1.0".to_string()'),
        ("models", "std::path::PathBuf", 'std::path::PathBuf::from("models")'),
        ("x", "&str", '"x"'),
        ([1, 2.5], "Vec<f64>", "vec![1.0, 2.5]"),
        ([], "Vec<String>", "vec![]"),
        ({"a": 1}, "BTreeMap<String, u32>", '<BTreeMap<String, u32>>::from([("a".to_string(), 1)])'),
        ({}, "std::collections::HashMap<String, f64>", "<std::collections::HashMap<String, f64>>::new()"),
    ],
)
def test_literal_of_declared_type(value, rust_type, rust):
    assert RustTranslator.literal("p", value, rust_type) == rust


@pytest.mark.parametrize(
    "value, rust_type, message",
    [
        (None, "usize", "only an Option"),
        ("five", "usize", "an integer is expected"),
        (2.5, "u64", "an integer is expected"),
        (True, "i32", "an integer is expected"),
        ("x", "bool", "true or false"),
        ([1], "String", "a text is expected"),
        ("x", "Vec<u8>", "a list is expected"),
        (1, "MyType", "the Rust translator writes"),
    ],
)
def test_literal_refuses_values_that_do_not_fit(value, rust_type, message):
    with pytest.raises(ParameterTypeError, match=f"parameter 'p' is declared as {re.escape(rust_type)}.*{message}"):
        RustTranslator.literal("p", value, rust_type)


def test_inspect_reads_parameters_cell():
    cell = nbformat.v4.new_code_cell('let epochs: usize = 2; // training epochs\nlet name: String = "x".to_string();')
    params = RustTranslator.inspect(cell)
    assert [(p.name, p.inferred_type_name, p.default, p.help) for p in params] == [
        ("epochs", "usize", "2", "training epochs"),
        ("name", "String", '"x".to_string()', ""),
    ]


def test_a_declaration_over_several_lines_is_one_parameter():
    # Notebook 2's feature list: one element per line, so dropping a feature is deleting a line.
    cell = nbformat.v4.new_code_cell(
        'let data_dir: String = "http://x".to_string(); // a URL keeps its //\n'
        "let features: Vec<String> = vec![ // the model's inputs\n"
        '    "danceability".to_string(),\n'
        '    "energy".to_string(), // loud songs are energetic\n'
        "];\n"
        "let epochs: usize = 2; // passes\n"
    )
    params = RustTranslator.inspect(cell)
    assert [(p.name, p.inferred_type_name, p.help) for p in params] == [
        ("data_dir", "String", "a URL keeps its //"),
        ("features", "Vec<String>", "the model's inputs"),
        ("epochs", "usize", "passes"),
    ]
    assert params[1].default == 'vec![ "danceability".to_string(), "energy".to_string(), ]'


def test_a_list_parameter_given_as_json_text():
    # papermill's `-p features '["a", "b"]'` hands the translator a text.
    RustTranslator.inspect(nbformat.v4.new_code_cell("let features: Vec<String> = vec![];"))
    assert RustTranslator.codify({"features": '["danceability", "energy"]'}) == (
        '// Parameters\nlet features: Vec<String> = vec!["danceability".to_string(), "energy".to_string()];\n'
    )
    RustTranslator.inspect(nbformat.v4.new_code_cell("let features: Vec<String> = vec![];"))
    with pytest.raises(ParameterTypeError, match="a list is expected; as text, give it as JSON"):
        RustTranslator.codify({"features": "danceability, energy"})


def test_injected_cell_is_plain_typed_lets():
    cell = nbformat.v4.new_code_cell("let epochs: usize = 2;\nlet data_dir: Option<String> = None; // data")
    RustTranslator.inspect(cell)
    assert RustTranslator.codify({"epochs": 30, "data_dir": "/data"}) == (
        "// Parameters\nlet epochs: usize = 30;\nlet data_dir: Option<String> = Some(\"/data\".to_string());\n"
    )
    # The declarations were for that notebook only.
    with pytest.raises(ParameterTypeError, match="'epochs' is not declared in the notebook's parameters cell"):
        RustTranslator.codify({"epochs": 30})


def test_bad_parameter_names_are_refused():
    RustTranslator.declared = {"bad-name": "usize"}
    with pytest.raises(ValueError, match="not a Rust identifier"):
        RustTranslator.codify({"bad-name": 1})


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
    RustTranslator.inspect(nbformat.v4.new_code_cell(DECLARATIONS))
    code = RustTranslator.codify(params)
    program = (
        "fn main() {\n"
        + DECLARATIONS
        + code
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
