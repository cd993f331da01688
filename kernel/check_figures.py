"""Checks that the prose of an executed notebook quotes only figures the notebook prints.

A markdown cell that says "19,699 rows" or "about 0.34" was written for one data set; run on
another (the full upstream file, a participant's own), the sentence is wrong while every cell
still succeeds. This check fails when a markdown cell quotes a number that no output of the
executed notebook shows, so the prose either points at a printed figure or is phrased without
one.

What counts as a quoted figure: a decimal (`0.34`, `1.4 %`), a number with thousands separators
(`19,699`) or an integer of three digits or more (`300`). Not counted: anything in code (fenced
blocks, `inline code`: parameters, grids and commands are code), URLs and host addresses,
version names (`0.0.1`), years (1900-2099) and numbers inside words (`dense_1`, `E0594`). Small
integers (`13 features`, `20 %`, `2 epochs`) are the workshop's settings, not measurements.

A figure is printed when an output's text holds it: the same integer (with or without its
thousands separators), or a decimal that starts with the quoted digits (`0.34` matches a printed
`0.3442`).

Usage: check_figures.py EXECUTED_NOTEBOOK.ipynb ...
"""
import re
import sys

import nbformat

from notebook_text import outputs_text, report

FENCED = re.compile(r"```.*?```", re.S)
INLINE = re.compile(r"`[^`\n]*`")
URL = re.compile(r"\b(?:https?|s3)://\S+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
VERSION = re.compile(r"(?<![\w.])\d+\.\d+\.\d+(?![\w.])")
HTML_TAG = re.compile(r"<[^>]+>")
FIGURE = re.compile(
    r"(?<![\w.,])("
    r"\d+\.\d+"  # a decimal
    r"|\d{1,3}(?:,\d{3})+"  # thousands separators
    r"|\d{3,}"  # three digits or more
    r")(?![\w]|[.,]\d)"
)


def prose(cell_source: str) -> str:
    text = FENCED.sub(" ", cell_source)
    text = INLINE.sub(" ", text)
    text = URL.sub(" ", text)
    text = VERSION.sub(" ", text)
    return HTML_TAG.sub(" ", text)


def quoted_figures(cell_source: str) -> list[str]:
    found = []
    for figure in FIGURE.findall(prose(cell_source)):
        if re.fullmatch(r"(19|20)\d\d", figure):
            continue
        found.append(figure)
    return found


def printed(figure: str, text: str) -> bool:
    plain = figure.replace(",", "")
    if "." in figure:
        return re.search(r"(?<![\d.])" + re.escape(figure), text) is not None
    forms = {figure, plain, f"{int(plain):,}"}
    return any(re.search(r"(?<![\d.,])" + re.escape(form) + r"(?![\d]|[.,]\d)", text) for form in forms)


def problems(path: str) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    text = outputs_text(nb)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for figure in quoted_figures(cell.source):
            if not printed(figure, text):
                line = next((l.strip() for l in cell.source.splitlines() if figure in l), "")
                found.append(f"{path}: markdown cell {index} quotes {figure}, which no output prints: {line[:140]}")
    return found


def main(paths: list[str]) -> int:
    found = [p for path in paths for p in problems(path)]
    return report(found, f"figures in the prose: ok ({len(paths)} notebooks, every quoted figure is printed)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
