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
  (cd "$jukebox_repo" && cargo build --release --workspace --lib --bins "$@") && echo "$jukebox_repo" >"$JUKEBOX_BUILT_STAMP"
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
