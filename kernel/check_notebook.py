"""Checks an executed notebook: no error outputs, and at least one output of each required MIME type.

Usage: check_notebook.py NOTEBOOK [--require MIME ...]
"""
import argparse
import sys

import nbformat


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("--require", nargs="*", default=[])
    args = parser.parse_args()
    nb = nbformat.read(args.notebook, as_version=4)
    errors, seen = [], set()
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(f"cell {index}: {output.get('ename')}: {output.get('evalue')}")
            seen.update(output.get("data", {}).keys())
            if output.get("output_type") == "stream" and output.get("name") == "stderr" and "panicked" in output.get("text", ""):
                errors.append(f"cell {index}: panic: {output['text'][:300]}")
    missing = [m for m in args.require if m not in seen]
    for e in errors:
        print(f"{args.notebook}: {e}")
    for m in missing:
        print(f"{args.notebook}: no output of type {m}")
    if errors or missing:
        return 1
    print(f"{args.notebook}: ok ({len(nb.cells)} cells, outputs: {', '.join(sorted(seen))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
