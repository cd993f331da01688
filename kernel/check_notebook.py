"""Checks an executed notebook: no error outputs and nothing on stderr, at least one output of each required MIME type,
and each required text somewhere in the outputs. And what a reader sees: no number in scientific
notation inside 1e-4..1e7 in an HTML table (plain decimals read better there), and no SVG wider
than JupyterLab's output area (960 px) unless it scales with the page (a width in %). Every rich
output (HTML, SVG) also carries a text/plain alternative, what a terminal, nbconvert to text or a
screen reader gets.

Usage: check_notebook.py NOTEBOOK [--require MIME ...] [--contains TEXT ...]
"""
import argparse
import re
import sys

import nbformat


OUTPUT_AREA_PX = 960
# A number in scientific notation as a table cell shows it (1.9362e5, 7.2e-5, 1e+07).
SCIENTIFIC = re.compile(r"(?<![\w.#-])(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)(?![\w.])")
SVG_WIDTH = re.compile(r"<svg\b[^>]*?\swidth=\"([^\"]+)\"", re.S)


def display_problems(html: str, svg: str) -> list[str]:
    problems = []
    for table in re.findall(r"<table\b.*?</table>", html, re.S):
        text = re.sub(r"<[^>]+>", " ", table)
        for mantissa, exponent in SCIENTIFIC.findall(text):
            value = abs(float(f"{mantissa}e{exponent}"))
            if value == 0 or 1e-4 <= value < 1e7:
                problems.append(f"table shows {mantissa}e{exponent} in scientific notation")
    for width in SVG_WIDTH.findall(svg + html):
        if not width.endswith("%") and float(re.sub(r"[a-z]+$", "", width)) > OUTPUT_AREA_PX:
            problems.append(f"an SVG is {width} wide (the output area is {OUTPUT_AREA_PX} px) and does not scale")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("--require", nargs="*", default=[])
    parser.add_argument("--contains", nargs="*", default=[])
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    errors, seen, texts = [], set(), []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            seen.update(output.get("data", {}).keys())
            data = output.get("data", {})
            for problem in display_problems(str(data.get("text/html", "")), str(data.get("image/svg+xml", ""))):
                errors.append(f"cell {index}: {problem}")
            rich = [m for m in ("text/html", "image/svg+xml") if m in data]
            if rich and not str(data.get("text/plain", "")).strip():
                errors.append(f"cell {index}: a {rich[0]} output without a text/plain alternative")
            texts.append(output.get("text", ""))
            texts.extend(str(value) for value in output.get("data", {}).values())
            # The notebooks write nothing on stderr: anything there is a problem to look at.
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                errors.append(f"cell {index}: stderr: {output['text'][:300]}")
    missing = [m for m in args.require if m not in seen]
    everything = "\n".join(texts)
    absent = [t for t in args.contains if t not in everything]
    for e in errors:
        print(f"{args.notebook}: {e}")
    for m in missing:
        print(f"{args.notebook}: no output of type {m}")
    for t in absent:
        print(f"{args.notebook}: no output contains {t!r}")
    if errors or missing or absent:
        return 1
    print(f"{args.notebook}: ok ({len(nb.cells)} cells, outputs: {', '.join(sorted(seen))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
