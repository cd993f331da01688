"""Checks an executed notebook: no error outputs and nothing on stderr, at least one output of each required MIME type,
and each required text somewhere in the outputs.

Usage: check_notebook.py NOTEBOOK [--require MIME ...] [--contains TEXT ...]
"""
import argparse
import sys

import nbformat


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
            texts.append(output.get("text", ""))
            texts.extend(str(value) for value in output.get("data", {}).values())
            # evcxr reports a failed `?` (and a panic) on stderr and lets papermill go on, so a
            # failing display cell would pass unseen; the notebooks write nothing else there.
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
