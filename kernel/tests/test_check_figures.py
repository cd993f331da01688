"""kernel/check_figures.py: a markdown cell may quote only figures the executed notebook prints."""
from pathlib import Path

import nbformat

import check_figures


def executed(markdown, printed):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [nbformat.v4.new_markdown_cell(markdown), cell]
    return nb


def test_a_figure_the_notebook_does_not_print_is_reported(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(executed("In the sample, 300 of 19,999 entries; accuracy about 0.34.", "19999 rows, accuracy 0.3442"), path)
    problems = check_figures.problems(str(path))
    assert [p.split(" quotes ")[1].split(",")[0] for p in problems] == ["300"]


def test_code_versions_urls_years_and_small_integers_are_not_figures():
    text = (
        "Run `-p epochs 300` then register 0.0.2 at http://127.0.0.1:8080/ (December 2023); "
        "13 features, 20 %, dense_128.\n```python\nDense(256)\n```"
    )
    assert check_figures.quoted_figures(text) == []


def test_a_printed_decimal_may_have_more_digits_and_integers_their_separators():
    assert check_figures.printed("0.34", "accuracy 0.3442")
    assert not check_figures.printed("0.34", "accuracy 10.34")
    assert check_figures.printed("19,699", "19699 rows")
    assert check_figures.printed("19699", "| 19,699 |")
    assert not check_figures.printed("300", "3000 rows")
