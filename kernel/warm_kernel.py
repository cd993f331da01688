"""Starts the Rust kernel N times at once (so each takes its own build slot), runs one cell that
calls the helper crate, and stops them: afterwards the first N notebooks opened start warm.

Usage: warm_kernel.py [--kernels N]   (JUPYTER_PATH must point at our kernelspec)
"""
import argparse
import sys
import time

from jupyter_client.manager import start_new_kernel

WARM_CELL = "jukebox::about()"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kernels", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    kernels = [start_new_kernel(kernel_name="rust", startup_timeout=600) for _ in range(args.kernels)]
    failed = False
    for manager, client in kernels:
        reply = client.execute_interactive(WARM_CELL, timeout=600, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            print(f"[warm] {WARM_CELL} failed: {reply['content']}", file=sys.stderr)
            failed = True
    for manager, client in kernels:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
    print(f"[warm] {args.kernels} kernel build slot(s) warm in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
