#!/usr/bin/env bash
# One-time (and idempotent) setup of everything the notebooks need:
#   - a Python venv in the repo (.venv) with JupyterLab, papermill and the onnxruntime wheel,
#     whose shared library is what the `ort` crate loads at run time;
#   - the papermill translator for Rust (kernel/papermill_rust);
#   - evcxr_jupyter (pinned), installed with cargo only when missing or another version;
#   - the `rust` kernelspec inside the venv, launching kernel/evcxr-kernel with ORT_DYLIB_PATH and
#     the evcxr config dir set, so notebooks need no manual setup.
# Usage: kernel/setup.sh [--with-tests]   (--with-tests adds the peer clients the tests use)
set -euo pipefail

EVCXR_VERSION=0.22.0
repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
python=${PYTHON:-python3}
with_tests=false
[[ "${1:-}" == "--with-tests" ]] && with_tests=true

say() { printf '[setup] %s\n' "$*"; }

# 1. Python venv. pip skips what is already satisfied, so re-runs take seconds.
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
requirements="$repo/kernel/requirements.txt"
$with_tests && requirements="$repo/kernel/requirements-test.txt"
say "installing Python packages from ${requirements#$repo/}"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo/kernel/papermill_rust"
if $with_tests && [[ -f "$repo/kernel/requirements-mr037.txt" ]]; then
  # The older Kubeflow model-registry client (v1alpha3 API) lives in a venv of its own.
  [[ -x "$repo/.venv-mr037/bin/python" ]] || "$python" -m venv "$repo/.venv-mr037"
  "$repo/.venv-mr037/bin/pip" install --quiet --disable-pip-version-check -r "$repo/kernel/requirements-mr037.txt"
fi

ort_lib=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1 || true)
[[ -n "$ort_lib" ]] || { echo "onnxruntime's shared library not found in $venv" >&2; exit 1; }

# 2. evcxr_jupyter, the Rust kernel (about 12 minutes to build on 2 cores, so only when needed).
# evcxr_jupyter has no --version; cargo's install list has it.
installed=$(cargo install --list 2>/dev/null | sed -n 's/^evcxr_jupyter v\([0-9.]*\):$/\1/p')
if [[ "$installed" != "$EVCXR_VERSION" ]]; then
  say "installing evcxr_jupyter $EVCXR_VERSION (found: ${installed:-none}); this takes a while"
  cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION"
fi
evcxr_bin=$(command -v evcxr_jupyter || echo "$HOME/.cargo/bin/evcxr_jupyter")

# evcxr loads each cell as a shared library linked against the toolchain's libstd-*.so. Its
# relative RUNPATH is computed from cargo's deps/ folder but the library is loaded from one level
# up, which breaks when the build folder shares a path prefix with the toolchain (~/.cache and
# ~/.rustup): the kernel then dies with "dlopen failed". LD_LIBRARY_PATH points at libstd directly.
rust_libdir="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/lib"

# 3. The kernelspec, where the venv's Jupyter looks first (sys.prefix/share/jupyter/kernels).
spec="$venv/share/jupyter/kernels/rust"
mkdir -p "$spec"
"$venv/bin/python" - "$spec/kernel.json" "$repo" "$evcxr_bin" "$ort_lib" "$rust_libdir" <<'PY'
import json, sys
path, repo, evcxr, ort, rust_libdir = sys.argv[1:]
json.dump({
    "argv": [f"{repo}/kernel/evcxr-kernel", "--control_file", "{connection_file}"],
    "display_name": "Rust (jukebox)",
    "language": "rust",
    "interrupt_mode": "message",
    "env": {
        "EVCXR_JUPYTER": evcxr,
        "EVCXR_CONFIG_DIR": f"{repo}/kernel/evcxr",
        "ORT_DYLIB_PATH": ort,
        "LD_LIBRARY_PATH": rust_libdir,
    },
}, open(path, "w"), indent=2)
PY
say "kernelspec 'rust' written to $spec"
say "ready: ORT_DYLIB_PATH=$ort_lib"
