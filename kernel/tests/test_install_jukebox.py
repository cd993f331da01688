"""The standalone `jukebox` command (kernel/install-jukebox): installed, then its folder copied
somewhere else, it runs from any folder without the checkout, the build cache or the toolchain
(its run path names only its own folder, and every Rust library it loads resolves there)."""
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_installed_command_runs_from_a_copy_of_its_folder(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run([REPO / "kernel/install-jukebox", prefix], check=True, capture_output=True, text=True)
    assert (prefix / "bin/jukebox").exists()

    # Somewhere the install never wrote: what a copy into an image or onto another machine gets.
    elsewhere = tmp_path / "elsewhere" / "jukebox"
    shutil.copytree(prefix / "lib/jukebox", elsewhere, symlinks=True)
    shutil.rmtree(prefix)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    for binary in ("jukebox", "libjukebox.so"):
        runpath = subprocess.run(
            ["readelf", "-d", elsewhere / binary], check=True, capture_output=True, text=True
        ).stdout
        lines = [line for line in runpath.splitlines() if "RUNPATH" in line or "RPATH" in line]
        assert lines and all("[$ORIGIN]" in line for line in lines), f"{binary}: {lines}"

    loaded = subprocess.run(["ldd", elsewhere / "jukebox"], check=True, capture_output=True, text=True, env=env).stdout
    rust_libraries = [line for line in loaded.splitlines() if "libstd-" in line or "libjukebox" in line]
    assert len(rust_libraries) == 2, loaded
    assert all(str(elsewhere) in line for line in rust_libraries), loaded
    assert "not found" not in loaded, loaded
    assert list(elsewhere.glob("libonnxruntime.so*")), "ONNX Runtime's library travels with the command"

    version = subprocess.run(
        [elsewhere / "jukebox", "--version"], check=True, capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert version.stdout.startswith("jukebox "), version.stdout
    up_help = subprocess.run(
        [elsewhere / "jukebox", "up", "--help"], check=True, capture_output=True, text=True, env=env, cwd="/"
    )
    assert "Usage: jukebox up" in up_help.stdout, up_help.stdout
