"""Prints where the time of executed notebooks went, from the timings papermill records in them.

Usage: notebook_timings.py NOTEBOOK.ipynb ...

Columns: kernel start (the notebook's start to its first cell's start: papermill starting the
kernel, which runs its init), the first cell (`jukebox::about()`: the first compile linking the
helper library), the parameters cell, the other cells' median and 95th percentile (cells tagged
`heavy`, which fit models, excluded: their own work takes longer than the target), the heavy
cells' total, and the whole notebook. Then the kernel's resident memory, which the papermill engine
records in each notebook (kernel/papermill_rust): idle before the first cell, and the peak over the
notebook of evcxr_jupyter (with rust-analyzer inside it), of the cell process (the notebook's
variables and libjukebox.so) and of all the kernel's processes together (launcher, relay included).
"""
import statistics
import sys
from datetime import datetime

import nbformat


def seconds(start, end):
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def row(path):
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    code = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("papermill", {}).get("start_time")]
    if not code:
        raise SystemExit(f"{path}: no executed cells with papermill timings")
    kernel_start = seconds(meta["start_time"], code[0].metadata.papermill.start_time)
    durations = [(c, c.metadata.papermill.get("duration") or 0.0) for c in code]
    tags = lambda c: c.metadata.get("tags", [])  # noqa: E731
    first = durations[0][1]
    parameters = sum(d for c, d in durations if {"parameters", "injected-parameters"} & set(tags(c)))
    heavy = [d for c, d in durations if "heavy" in tags(c)]
    others = [d for c, d in durations[1:] if not ({"parameters", "injected-parameters", "heavy"} & set(tags(c)))]
    return {
        "notebook": path.rsplit("/", 1)[-1],
        "kernel start": kernel_start,
        "first cell": first,
        "parameters": parameters,
        "cells p50": statistics.median(others) if others else float("nan"),
        "cells p95": percentile(others, 0.95),
        "cells": len(others),
        "heavy cells": sum(heavy),
        "whole notebook": meta.get("duration") or 0.0,
    }


def slow_cells(path, threshold=2.0, top=3):
    """The `top` slowest code cells over `threshold` seconds: (seconds, first line of source)."""
    nb = nbformat.read(path, as_version=4)
    timed = [
        (c.metadata.get("papermill", {}).get("duration") or 0.0, c.source.strip().splitlines()[0][:90] if c.source.strip() else "")
        for c in nb.cells
        if c.cell_type == "code"
    ]
    return sorted((t for t in timed if t[0] > threshold), reverse=True)[:top]


def memory_row(path):
    nb = nbformat.read(path, as_version=4)
    memory = nb.metadata.get("jukebox", {}).get("kernel_memory_mb")
    if not memory:
        return None
    idle, peak = memory["idle"], memory["peak"]
    return [
        path.rsplit("/", 1)[-1],
        f"{sum(idle.values())} MB",
        f"{peak.get('evcxr_jupyter', 0)} MB",
        f"{peak.get('cell process', 0)} MB",
        f"{sum(peak.values())} MB",
    ]


def main(paths):
    rows = [row(p) for p in paths]
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for r in rows:
        cells = [r["notebook"]] + [f"{r[c]}" if c == "cells" else f"{r[c]:.2f} s" for c in columns[1:]]
        print("| " + " | ".join(cells) + " |")
    total = sum(r["whole notebook"] for r in rows)
    print(f"\nall {len(rows)} notebooks: {total:.1f} s of papermill time")
    print("\nslowest cells (over 2 s):")
    for path in paths:
        for seconds, source in slow_cells(path):
            print(f"  {path.rsplit('/', 1)[-1]}: {seconds:.1f} s  {source}")
    memory = [m for m in (memory_row(p) for p in paths) if m]
    if memory:
        print("\n| notebook | kernel idle | evcxr_jupyter peak | cell process peak | kernel peak (all processes) |")
        print("|---|---|---|---|---|")
        for m in memory:
            print("| " + " | ".join(m) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
