"""What the notebook checks share: the text of an executed notebook's outputs, and the way a
check reports its findings.

Every check in kernel/ (`check_figures.py`, `check_teaching.py`, `check_version_pinning.py`) and
the notebook tests read outputs the same way: stream text and every MIME value of every output,
one string, so a check can search for what a participant would see.
"""
import nbformat


def outputs_text(notebook) -> str:
    """All output text of `notebook` (a path or an nbformat notebook), one output per line."""
    nb = nbformat.read(notebook, as_version=4) if not hasattr(notebook, "cells") else notebook
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(value if isinstance(value, str) else str(value) for value in output.get("data", {}).values())
    return "\n".join(parts)


def report(found: list[str], ok: str) -> int:
    """Prints each problem (or `ok` when there is none); the exit status of a check."""
    for problem in found:
        print(problem)
    if not found:
        print(ok)
    return 1 if found else 0
