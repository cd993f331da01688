# The one build configuration every jukebox build shares (sourced by setup.sh, run-notebooks, test,
# bench-notebooks and the kernel launcher; never run on its own).
#
# Why one configuration: polars and the rest of the helper crate's dependencies take most of a cold
# build (about 20 minutes on two cores). The Rust kernel links every notebook cell against the
# helper crate's shared library, libjukebox.so, which must link the Rust standard library
# dynamically (-Cprefer-dynamic, as evcxr compiles cells). If the tests and the `jukebox` command
# were built with other flags, cargo would compile all of it again. So every build uses:
#   - one target folder outside the clone ($CARGO_TARGET_DIR), kept between runs and clones;
#   - the host target given explicitly (CARGO_BUILD_TARGET), so the flags below apply to our
#     code and not to build scripts and proc macros, which cargo then builds as usual;
#   - -Cprefer-dynamic, plus run paths so that binaries find libstd (in the toolchain) and
#     libjukebox.so (beside them in deps/) without LD_LIBRARY_PATH;
#   - the release profile (opt-level 3): notebooks run the helper crate's code at full speed.
# What makes this cache cold again: another toolchain (`rustc --version`), a change of these flags,
# a change of dependencies or features in Cargo.toml/Cargo.lock.
jukebox_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export JUKEBOX_CACHE=${JUKEBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jukebox}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$JUKEBOX_CACHE/target}
jukebox_host=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_BUILD_TARGET=$jukebox_host
# The toolchain's libstd-*.so, which -Cprefer-dynamic binaries and every notebook cell load.
export JUKEBOX_RUST_LIBDIR
JUKEBOX_RUST_LIBDIR="$(rustc --print sysroot)/lib/rustlib/$jukebox_host/lib"
# Flags separated by 0x1f (cargo's encoded form), so paths with spaces survive. $ORIGIN is for the
# dynamic loader, not the shell.
sep=$'\x1f'
export CARGO_ENCODED_RUSTFLAGS="-Cprefer-dynamic${sep}-Clink-arg=-Wl,-rpath,$JUKEBOX_RUST_LIBDIR${sep}-Clink-arg=-Wl,-rpath,\$ORIGIN${sep}-Clink-arg=-Wl,-rpath,\$ORIGIN/deps"
unset sep RUSTFLAGS
# Where release builds land: the `jukebox` command, and deps/libjukebox.so with the metadata of
# every crate it was built from (what the kernel hands to rustc for each cell).
export JUKEBOX_BUILD_DIR=$CARGO_TARGET_DIR/$jukebox_host/release
export JUKEBOX_BIN=$JUKEBOX_BUILD_DIR/jukebox
export JUKEBOX_LIB=$JUKEBOX_BUILD_DIR/deps/libjukebox.so
# Written after each successful jukebox_build, naming the checkout it built: the kernel compares
# the sources' times against it.
export JUKEBOX_BUILT_STAMP=$JUKEBOX_BUILD_DIR/.jukebox-built

# Builds what the notebooks and `jukebox up` need: every library (libjukebox.so among them) and
# binary of the workspace. The tests (`cargo test --release --workspace`) reuse all of it.
jukebox_build() {
  # Cargo hashes workspace crates by their path *inside* the workspace, so every checkout using
  # this cache writes the same files (libjukebox.so and `jukebox` have no hash at all), and cargo
  # takes another checkout's newer files for ours, with that checkout's paths compiled in
  # (env!("CARGO_MANIFEST_DIR") in the test kit, the tests and `about()`). After another checkout
  # built here, rebuild the workspace's own crates (a few minutes; the dependencies stay).
  if [[ -f "$JUKEBOX_BUILT_STAMP" && "$(cat "$JUKEBOX_BUILT_STAMP")" != "$jukebox_repo" ]]; then
    local members=() dir
    for dir in "$jukebox_repo"/crates/*/; do members+=(-p "$(basename "$dir")"); done
    (cd "$jukebox_repo" && cargo clean --release --target "$CARGO_BUILD_TARGET" --quiet "${members[@]}")
  fi
  (cd "$jukebox_repo" && jukebox_with_progress cargo build --release --workspace --lib --bins "$@") &&
    echo "$jukebox_repo" >"$JUKEBOX_BUILT_STAMP"
}

# Runs a cargo command ("$@") and, while it runs, prints a line every 30 s (to stderr): the time so
# far, how many crates are compiled, which ones are compiling now. A cold build takes 12-20
# minutes on two cores, and cargo itself prints nothing for minutes while one big crate (polars)
# compiles; a newcomer must see that it is alive. Cargo's own output goes to a log, printed in
# full when the command fails (its errors) and summed up in one line when it succeeds. The lines
# start with [$JUKEBOX_BUILD_LABEL] (default: build), which tells two builds running at once apart.
jukebox_with_progress() {
  local log started=$SECONDS next=30 status=0 pid label=${JUKEBOX_BUILD_LABEL:-build}
  log=$(mktemp)
  "$@" --color never 2>"$log" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS - started >= next )); then
      next=$((next + 30))
      local done_count now
      done_count=$(grep -c '^ *Compiling ' "$log" || true)
      # The crates started last and not yet followed by others: what is compiling now.
      now=$(grep '^ *Compiling ' "$log" | tail -n 3 | awk '{print $2}' | paste -sd, -)
      printf '[%s] %d s: %s crates started, latest: %s\n' "$label" "$((SECONDS - started))" "$done_count" "${now:-(checking)}" >&2
    fi
  done
  wait "$pid" || status=$?
  if (( status != 0 )); then
    cat "$log" >&2
  elif (( SECONDS - started >= 30 )); then
    printf '[%s] done in %d s (%s crates compiled)\n' "$label" "$((SECONDS - started))" "$(grep -c '^ *Compiling ' "$log" || true)" >&2
  fi
  rm -f "$log"
  return "$status"
}

# The workshop's notebooks, in the order they run (run-notebooks, bench-notebooks, the checks).
jukebox_notebooks=(1-data_exploration.ipynb 2-experiment_train.ipynb 3-save_model.ipynb 4-request_model.ipynb 5-refine_model.ipynb)

# The state folder of `jukebox up` (S3 objects, the registry's database, the model repository):
# JUKEBOX_STATE_DIR, else .jukebox/ in the checkout.
jukebox_state_dir() {
  echo "${JUKEBOX_STATE_DIR:-$jukebox_repo/.jukebox}"
}

# The environment every Jupyter-side tool of ours runs in: our kernelspec (inside the venv) first
# on JUPYTER_PATH so it wins over any other `rust` kernel, ONNX Runtime's library for the model
# server and the notebooks' checks, and the venv's Python for the tests' peer clients.
jukebox_python_env() {
  export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(jukebox_ort_lib)}
  case ":${JUPYTER_PATH:-}:" in
    *":$jukebox_repo/.venv/share/jupyter:"*) ;;
    *) export JUPYTER_PATH="$jukebox_repo/.venv/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}" ;;
  esac
  export JUKEBOX_PYTHON=${JUKEBOX_PYTHON:-$jukebox_repo/.venv/bin/python}
}

# Starts `jukebox up` (S3, registry, model server on free ports of 127.0.0.1) in the background, in
# a process group of its own (a terminal's Ctrl-C reaches the calling script only, which then stops
# it in order), waits for its env file and sources it: the data-connection variables and the
# registry and model server URLs are then set here, for the kernels this script starts.
# $1: state folder; $2: folder for jukebox-up.log and jukebox-up.env. Sets jukebox_up_pid.
jukebox_up_start() {
  local state=$1 logs=$2
  local env_file="$logs/jukebox-up.env" log="$logs/jukebox-up.log"
  rm -f "$env_file"
  setsid "$JUKEBOX_BIN" up --state-dir "$state" --s3-port 0 --registry-port 0 --model-port 0 \
    --env-file "$env_file" >"$log" 2>&1 </dev/null &
  jukebox_up_pid=$!
  local _
  for _ in $(seq 300); do
    [[ -s "$env_file" ]] && break
    kill -0 "$jukebox_up_pid" 2>/dev/null || { cat "$log" >&2; echo "jukebox up failed (log: $log)" >&2; return 1; }
    sleep 0.1
  done
  [[ -s "$env_file" ]] || { echo "jukebox up did not start within 30 s (log: $log)" >&2; return 1; }
  # shellcheck disable=SC1090
  source "$env_file"
}

# The onnxruntime wheel's shared library, which the `ort` crate loads at run time.
jukebox_ort_lib() {
  ls "$jukebox_repo"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n1
}

# Scripts that trap Ctrl-C (kernel/lab, kernel/evcxr-kernel) call this first, with their
# arguments. A bash started with SIGINT ignored (a background job of another script, as nohup and
# some CI runners start programs) can never trap it: Ctrl-C or Jupyter's interrupt would do
# nothing. Such a script starts itself again with SIGINT at its default (Linux; elsewhere, or
# without GNU env's --default-signal, nothing changes).
jukebox_restore_sigint() {
  jukebox_sigint_in $$ SigIgn || return 0
  env --default-signal=INT true 2>/dev/null || return 0
  exec env --default-signal=INT bash "$0" "$@"
}

# Whether process $1 has SIGINT in the signal set $2 of /proc/$1/status (SigIgn: ignored,
# SigCgt: caught by a handler); false when that cannot be read (not Linux, or the process ended).
jukebox_sigint_in() {
  local mask
  mask=$(sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null) || return 1
  [[ -n $mask ]] && (( 16#$mask >> 1 & 1 ))
}
