#!/usr/bin/env bash
# One-time (and idempotent) setup of everything the notebooks need:
#   - a Python venv in the repo (.venv) with JupyterLab, papermill and the onnxruntime wheel,
#     whose shared library is what the `ort` crate loads at run time;
#   - papermill support for Rust (kernel/papermill_rust: typed parameters, failed cells stop a run);
#   - evcxr_jupyter (pinned, with kernel/evcxr's patch), built only when missing or another version;
#   - the workspace built once with the flags of kernel/env.sh: the `jukebox` command and
#     libjukebox.so, the helper library every notebook cell is linked against;
#   - the `rust` kernelspec inside the venv, launching kernel/evcxr-kernel;
#   - a first kernel started once, so that the notebooks' first cells find a warm build slot.
# Usage: kernel/setup.sh [--with-tests]   (--with-tests adds the peer clients, pinned by
#                                          kernel/constraints-test.txt, KServe's server in
#                                          .venv-kserve, and the Chromium the tests use)
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
wanted=$(cat "$repo"/kernel/requirements*.txt "$repo"/kernel/constraints*.txt "$repo/kernel/papermill_rust/pyproject.toml" | sha256sum | cut -c1-16)
# The tests' peers install at the versions pinned in kernel/constraints-test.txt (updated on
# purpose, dated), so that a compatibility result cannot change with an upstream release.
constraints=()
$with_tests && constraints=(-c "$repo/kernel/constraints-test.txt")
stamp="$venv/.jukebox-installed-$(basename "$requirements" .txt)"
# The test requirements include the others.
test_stamp="$venv/.jukebox-installed-requirements-test"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" && "$(cat "$test_stamp" 2>/dev/null)" != "$wanted" ]]; then
  say "installing Python packages from ${requirements#"$repo"/}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" "${constraints[@]}"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -e "$repo/kernel/papermill_rust"
  if $with_tests && [[ -f "$repo/kernel/requirements-mr037.txt" ]]; then
    # The older Kubeflow model-registry client (v1alpha3 API) lives in a venv of its own.
    [[ -x "$repo/.venv-mr037/bin/python" ]] || "$python" -m venv "$repo/.venv-mr037"
    "$repo/.venv-mr037/bin/pip" install --quiet --disable-pip-version-check -r "$repo/kernel/requirements-mr037.txt" \
      -c "$repo/kernel/constraints-mr037.txt"
  fi
  if $with_tests; then
    # KServe's own Python model server, which `jukebox request` meets in
    # kernel/tests/test_contracts_kserve.py, in a venv of its own (kserve pins its own fastapi,
    # uvicorn and numpy ranges), at the versions of kernel/constraints-kserve.txt.
    [[ -x "$repo/.venv-kserve/bin/python" ]] || "$python" -m venv "$repo/.venv-kserve"
    "$repo/.venv-kserve/bin/pip" install --quiet --disable-pip-version-check -r "$repo/kernel/requirements-kserve.txt" \
      -c "$repo/kernel/constraints-kserve.txt"
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

# 3. evcxr_jupyter, the Rust kernel, built from crates.io's sources of evcxr 0.22.0 with our patch
# (kernel/evcxr/evcxr-0.22.0-jukebox.patch; its header says what it changes and why: a failed cell
# is a Jupyter error and keeps the variables it did not finish assigning). About 7 minutes on 2
# cores, so only when the installed build is not of this version and patch. Installed under
# $JUKEBOX_CACHE/evcxr-jupyter (never over a user's own evcxr_jupyter), built in a target folder of
# its own without our flags, kept so that a changed patch rebuilds only evcxr's two crates.
evcxr_root="$JUKEBOX_CACHE/evcxr-jupyter"
evcxr_bin="$evcxr_root/bin/evcxr_jupyter"
evcxr_patch="$repo/kernel/evcxr/evcxr-$EVCXR_VERSION-jukebox.patch"
evcxr_wanted="$EVCXR_VERSION+$(sha256sum "$evcxr_patch" | cut -c1-16)"
if [[ ! -x "$evcxr_bin" || "$(cat "$evcxr_root/built" 2>/dev/null)" != "$evcxr_wanted" ]]; then
  say "building evcxr_jupyter $evcxr_wanted (patched); this takes a while"
  (
    unset CARGO_TARGET_DIR CARGO_BUILD_TARGET CARGO_ENCODED_RUSTFLAGS
    src="$JUKEBOX_CACHE/evcxr-src"
    rm -rf "$src" && mkdir -p "$src/fetch/src"
    # cargo downloads the two crates' sources through the registry, as `cargo install` would.
    printf '[package]\nname = "evcxr-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nevcxr_jupyter = "=%s"\n' \
      "$EVCXR_VERSION" >"$src/fetch/Cargo.toml"
    : >"$src/fetch/src/lib.rs"
    (cd "$src/fetch" && cargo fetch --quiet)
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    for crate in evcxr evcxr_jupyter; do
      archive=$(ls "$cargo_home"/registry/cache/*/"$crate-$EVCXR_VERSION.crate" | head -n1)
      tar -xzf "$archive" -C "$src"
    done
    (cd "$src" && patch --quiet -p1 <"$evcxr_patch")
    printf '\n[patch.crates-io]\nevcxr = { path = "../evcxr-%s" }\n' "$EVCXR_VERSION" >>"$src/evcxr_jupyter-$EVCXR_VERSION/Cargo.toml"
    # rust-analyzer's assists, diagnostics and structural search come with its `ide` crate, and
    # evcxr never calls them (it asks for types, completions and hovers): built unoptimised,
    # they take 13 s of compiling instead of 83 s, and the cold install about 40 s less.
    for crate in ra_ap_ide_assists ra_ap_ide_diagnostics ra_ap_ide_ssr; do
      printf '\n[profile.release.package.%s]\nopt-level = 0\n' "$crate"
    done >>"$src/evcxr_jupyter-$EVCXR_VERSION/Cargo.toml"
    # The published lock file, with only evcxr's entry moved to the patched path.
    (cd "$src/evcxr_jupyter-$EVCXR_VERSION" && cargo metadata --format-version 1 >/dev/null)
    export CARGO_TARGET_DIR="$JUKEBOX_CACHE/evcxr-target" JUKEBOX_BUILD_LABEL=evcxr
    jukebox_with_progress cargo install --locked --force --root "$evcxr_root" --path "$src/evcxr_jupyter-$EVCXR_VERSION"
  )
  echo "$evcxr_wanted" >"$evcxr_root/built"
  phase "evcxr_jupyter installed"
fi

# 4. The workspace: the `jukebox` command and libjukebox.so (about 20 minutes the first time).
say "building the workspace into $CARGO_TARGET_DIR"
jukebox_build
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
