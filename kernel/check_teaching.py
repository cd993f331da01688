"""Checks the workshop notebooks as teaching material: each holds at least two check-yourself
questions with a folded answer, and every notebook file a notebook names exists.

Usage: check_teaching.py NOTEBOOK.ipynb ...
"""
import re
import sys
from pathlib import Path

import nbformat

from notebook_text import report

QUESTION = re.compile(r"\*\*Check yourself\.\*\*.*?<details><summary>Answer</summary>.+?</details>", re.S)
NOTEBOOK_NAME = re.compile(r"\b[0-9]+-[A-Za-z0-9_]+\.ipynb\b")


def problems(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    found = []
    questions = len(QUESTION.findall(text))
    if questions < 2:
        found.append(f"{path}: {questions} check-yourself question(s) with a folded answer, at least 2 wanted")
    for name in sorted(set(NOTEBOOK_NAME.findall(text))):
        if not (path.parent / name).exists():
            found.append(f"{path}: names {name}, which is not in {path.parent}")
    return found


def main(paths: list[str]) -> int:
    found = [p for path in paths for p in problems(Path(path))]
    return report(found, f"teaching checks: ok ({len(paths)} notebooks)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
