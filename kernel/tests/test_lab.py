"""kernel/lab, the way into JupyterLab: prints its URL within 15 s, the server answers with our
kernelspec, and Ctrl-C (SIGINT) stops JupyterLab, its kernels and `jukebox up`, leaving no process
behind; --cluster says which variable is missing."""
import json
import os
import signal
import subprocess
import time
import urllib.request

from lab_helpers import REPO, Lab


def api(lab, path, method="GET", body=None):
    request = urllib.request.Request(
        lab.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def test_lab_prints_its_url_serves_and_stops_everything_on_ctrl_c():
    lab = Lab()
    try:
        assert lab.url, f"no URL within 15 s:\n{lab.text()}"
        print(f"URL after {lab.seconds_to_url:.1f} s")
        assert lab.seconds_to_url < 15
        specs = api(lab, "/api/kernelspecs")
        assert specs["kernelspecs"]["rust"]["spec"]["display_name"] == "Rust (jukebox)"
        assert specs["kernelspecs"]["rust"]["spec"]["argv"][0] == str(REPO / "kernel/evcxr-kernel")
        assert "jukebox up: S3 http://127.0.0.1:" in lab.text()
        # A kernel running when Ctrl-C comes must go too.
        kernel = api(lab, "/api/kernels", "POST", {"name": "rust"})
        for _ in range(200):
            if api(lab, f"/api/kernels/{kernel['id']}")["execution_state"] == "idle":
                break
            time.sleep(0.1)
        commands = " | ".join(c for _, c in lab.ours())
        assert "jupyter-lab" in commands and "jukebox up" in commands and "evcxr" in commands, commands
    finally:
        seconds = lab.stop(signal.SIGINT)
    print(f"stopped in {seconds:.1f} s")
    assert "[lab] stopped" in lab.text(), lab.text()
    assert lab.ours() == [], f"left behind: {lab.ours()}"


def test_cluster_mode_names_the_missing_variables():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "JUKEBOX_REGISTRY", "JUKEBOX_MODEL"))}
    env["AWS_S3_ENDPOINT"] = "http://127.0.0.1:1"
    result = subprocess.run([str(REPO / "kernel/lab"), "--cluster", "--no-browser"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "AWS_ACCESS_KEY_ID" in result.stderr and "JUKEBOX_MODEL_URL" in result.stderr, result.stderr
    assert "AWS_S3_ENDPOINT" not in result.stderr.split("not set:")[1].split("(")[0], result.stderr
