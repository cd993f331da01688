"""Checks that no two Rust modules of the workspace import each other (the house rule of
ARCHITECTURE.md: a stage's parts import siblings, never the parent that re-exports them).

It reads each `crates/*/src` file as text, outside `#[cfg(test)]`: its `use` lines and every
`crate::...` / `super::...` path (doc links included: rustdoc resolves them as imports). A path
points at the deepest module file it names. A parent's `pub use child::X` and the child's
`use super::Y` make a pair.

Usage: check_module_cycles.py [REPO]   (exit status 1 and the pairs when there are any)
"""
import glob
import os
import re
import sys


def modules(root: str) -> dict:
    found = {}
    for crate in sorted(os.listdir(root)):
        src = os.path.join(root, crate, "src")
        for path in glob.glob(src + "/**/*.rs", recursive=True):
            parts = os.path.relpath(path, src)[:-3].split("/")
            if parts[-1] in ("lib", "main", "mod"):
                parts = parts[:-1]
            found[(crate, tuple(parts))] = path
    return found


def target(mods: dict, crate: str, current: tuple, path: str):
    segments = [s.strip() for s in path.split("::")]
    if segments[0] == "crate":
        base, segments = [], segments[1:]
    elif segments[0] == "super":
        base = list(current)
        while segments and segments[0] == "super":
            base, segments = base[:-1], segments[1:]
    elif segments[0] == "self":
        base, segments = list(current), segments[1:]
    elif (crate, tuple(list(current) + [segments[0]])) in mods:
        base = list(current)
    else:
        return None
    best = tuple(base)
    for segment in segments:
        deeper = best + (segment.strip("{} "),)
        if (crate, deeper) not in mods:
            break
        best = deeper
    return best


def pairs(root: str) -> list:
    mods = modules(root)
    edges = set()
    for (crate, module), path in mods.items():
        text = open(path).read().split("#[cfg(test)]")[0]
        paths = re.findall(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([\w:]+)", text, re.M)
        paths += re.findall(r"\b((?:crate|super)(?:::\w+)+)::", text)
        for used in paths:
            found = target(mods, crate, module, used)
            if found is not None and found != module:
                edges.add(((crate, module), (crate, found)))
    name = lambda m: "::".join(m[1]) or f"{m[0]} (crate root)"
    return sorted(f"{a[0]}: {name(a)} <-> {name(b)}" for a, b in edges if (b, a) in edges and a < b)


def main() -> int:
    repo = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    found = pairs(os.path.join(repo, "crates"))
    for pair in found:
        print(f"modules importing each other: {pair}")
    if not found:
        print("module imports: ok (no two modules import each other)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
