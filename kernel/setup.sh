#!/usr/bin/env bash
# One-time (and idempotent) setup of everything the notebooks need:
#   - a Python venv in the repo (.venv) with JupyterLab, papermill and the onnxruntime wheel,
#     whose shared library is what the `ort` crate loads at run time;
#   - papermill support for Rust (kernel/papermill_rust: typed parameters, failed cells stop a run);
#   - evcxr_jupyter (pinned), installed with cargo only when missing or another version;
#   - the workspace built once with the flags of kernel/env.sh: the `jukebox` command and
#     libjukebox.so, the helper library every notebook cell is linked against;
#   - the `rust` kernelspec inside the venv, launching kernel/evcxr-kernel;
#   - a first kernel started once, so that the notebooks' first cells find a warm build slot.
# Usage: kernel/setup.sh [--with-tests]   (--with-tests adds the peer clients and the Chromium
#                                          the tests use)
set -euo pipefail

EVCXR_VERSION=0.22.0
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$here/env.sh"
repo=$jukebox_repo
venv="$repo/.venv"
python=${PYTHON:-python3}
with_tests=false
[[ "${1:-}" == "--with-tests" ]] && with_tests=true

say() { printf '[setup] %s\n' "$*"; }
started=$SECONDS
phase() { say "$1 ($((SECONDS - started)) s so far)"; }

# 1. Python venv. Skipped when the requirements did not change since the last install (pip's
# own check of an installed JupyterLab takes about 10 s).
if [[ ! -x "$venv/bin/python" ]]; then
  say "creating $venv"
  "$python" -m venv "$venv"
fi
requirements="$repo/kernel/requirements.txt"
$with_tests && requirements="$repo/kernel/requirements-test.txt"
wanted=$(cat "$repo"/kernel/requirements*.txt "$repo/kernel/papermill_rust/pyproject.toml" | sha256sum | cut -c1-16)
stamp="$venv/.jukebox-installed-$(basename "$requirements" .txt)"
# The test requirements include the others.
test_stamp="$venv/.jukebox-installed-requirements-test"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" && "$(cat "$test_stamp" 2>/dev/null)" != "$wanted" ]]; then
  say "installing Python packages from ${requirements#"$repo"/}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo/kernel/papermill_rust"
  if $with_tests && [[ -f "$repo/kernel/requirements-mr037.txt" ]]; then
    # The older Kubeflow model-registry client (v1alpha3 API) lives in a venv of its own.
    [[ -x "$repo/.venv-mr037/bin/python" ]] || "$python" -m venv "$repo/.venv-mr037"
    "$repo/.venv-mr037/bin/pip" install --quiet --disable-pip-version-check -r "$repo/kernel/requirements-mr037.txt"
  fi
  echo "$wanted" >"$stamp"
fi
# Headless Chromium renders the registry's web page in a test (Debian's package; nothing else
# downloads a browser here).
if $with_tests && ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium for the browser test"
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi
[[ -n "$(jukebox_ort_lib)" ]] || { echo "onnxruntime's shared library not found in $venv" >&2; exit 1; }
phase "Python ready"

# 2. The standard library's source, which rust-analyzer inside the kernel reads to infer the types
# of `let`s (without it, a `let` of a std type must name its type, as jukebox values do anyway).
# rust-analyzer would install it itself at the first kernel start; doing it here makes it
# deterministic. Best effort: rustup's server may be out of reach.
if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup component add rust-src >/dev/null 2>&1 || say "rust-src not installed (no connection to rustup's server): kernels start without std type inference"
fi
# The tests check the house style with rustfmt and clippy (in rustup's default profile; added if
# the toolchain was installed with the minimal one).
if $with_tests; then
  for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
      rustup component add "$component" >/dev/null 2>&1 || say "$component not installed (no connection to rustup's server)"
    fi
  done
fi

# 3. evcxr_jupyter, the Rust kernel (about 8 minutes to build on 2 cores, so only when needed).
# evcxr_jupyter has no --version; cargo's install list has it. Built in its own target folder
# (cargo install's default), without our flags.
installed=$(cargo install --list 2>/dev/null | sed -n 's/^evcxr_jupyter v\([0-9.]*\):$/\1/p')
if [[ "$installed" != "$EVCXR_VERSION" ]]; then
  say "installing evcxr_jupyter $EVCXR_VERSION (found: ${installed:-none}); this takes a while"
  (unset CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_ENCODED_RUSTFLAGS; cargo install --locked evcxr_jupyter --version "$EVCXR_VERSION")
  phase "evcxr_jupyter installed"
fi
evcxr_bin=$(command -v evcxr_jupyter || echo "$HOME/.cargo/bin/evcxr_jupyter")

# 4. The workspace: the `jukebox` command and libjukebox.so (about 20 minutes the first time).
say "building the workspace into $CARGO_TARGET_DIR"
jukebox_build --quiet
phase "workspace built"

# 5. The kernelspec, where the venv's Jupyter looks first (sys.prefix/share/jupyter/kernels).
spec="$venv/share/jupyter/kernels/rust"
mkdir -p "$spec"
# evcxr_jupyter rewrites the kernelspec of the folder JUPYTER_PATH names (kernel.json included)
# whenever its version.txt there is missing or older, at its first start: install its files
# first, then write our kernel.json over its own.
JUPYTER_PATH="$venv/share/jupyter" "$evcxr_bin" --install >/dev/null
"$venv/bin/python" - "$spec/kernel.json" "$repo" "$evcxr_bin" <<'PY'
import json, sys
path, repo, evcxr = sys.argv[1:]
json.dump({
    "argv": [f"{repo}/kernel/evcxr-kernel", "--control_file", "{connection_file}"],
    "display_name": "Rust (jukebox)",
    "language": "rust",
    # SIGINT to the kernel's process group; kernel/evcxr-kernel passes it to the cell process
    # (a training cell stops and keeps the variables) or kills that process as evcxr would.
    "interrupt_mode": "signal",
    "env": {"EVCXR_JUPYTER": evcxr},
}, open(path, "w"), indent=2)
PY
say "kernelspec 'rust' written to $spec"

# 6. Warm the first two build slots (each compiles the small cell crate once), so that the first
# notebook, and a second one opened beside it, start warm.
if [[ -z "${JUKEBOX_NO_WARM:-}" && ! -d "$JUKEBOX_CACHE/evcxr/slot-1/build/target" ]]; then
  JUPYTER_PATH="$venv/share/jupyter" "$venv/bin/python" "$repo/kernel/warm_kernel.py" --kernels 2
fi
phase "ready"
