"""`graphret serve` from the command line, as a subprocess: it starts on loopback, read-only
unless a token is given (here through the environment), answers, and stops on SIGTERM."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serving import png_bytes

ROOT = Path(__file__).resolve().parents[1]

# Runs this checkout's command line even where another checkout's cli/ is installed as
# graphret.cli (an editable install elsewhere): graphret.cli is loaded from ROOT/cli first.
BOOT = """
import importlib.util, runpy, sys
root = sys.argv.pop(1)
spec = importlib.util.spec_from_file_location("graphret.cli", root + "/cli/__init__.py", submodule_search_locations=[root + "/cli"])
module = importlib.util.module_from_spec(spec)
sys.modules["graphret.cli"] = module
spec.loader.exec_module(module)
origin = importlib.util.find_spec("graphret.cli.main").origin
if not origin.startswith(root + "/cli/"):
    sys.exit(f"graphret.cli.main comes from {origin}, not {root}/cli")
sys.argv[0] = "graphret"
runpy.run_module("graphret.cli.main", run_name="__main__")
"""


def graphret_command(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k != "GRAPHRET_WRITE_TOKEN"}  # only the token the test gives
    environment.update({"PYTHONPATH": str(ROOT), **(env or {})})
    return subprocess.Popen([sys.executable, "-c", BOOT, str(ROOT), *args], cwd=ROOT, env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            return httpx.get(url + "/health", timeout=5).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail("the server did not answer in time")


def test_serve_starts_on_loopback_answers_and_stops(blob_store_copy):
    store = blob_store_copy()
    port = free_port()
    proc = graphret_command("serve", str(store), "--port", str(port), "--max-upload-mb", "1",
                            env={"GRAPHRET_WRITE_TOKEN": "from-the-environment"})
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_up(url, proc) == {"status": "ok", "version": 1, "items": 60}
        summary = httpx.get(url + "/store").json()
        assert summary["writable"] is True and summary["limits"]["max_upload_mb"] == 1
        image = {"files": ("a.png", png_bytes(np.zeros((16, 16), np.uint8)), "image/png")}
        assert httpx.post(url + "/add", files=image).status_code == 401
        added = httpx.post(url + "/add", files=image, headers={"Authorization": "Bearer from-the-environment"}, timeout=120)
        assert added.status_code == 200 and added.json()["items"] == 61
        assert "graphret" in httpx.get(url + "/").text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in err and "read-write" in err and "Traceback" not in err


def test_serve_is_read_only_without_a_token_and_refuses_a_missing_store(tmp_path, blob_stores):
    store = blob_stores()  # read-only: the server refuses every write
    port = free_port()
    proc = graphret_command("serve", str(store), "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc)
        assert httpx.get(url + "/store").json()["writable"] is False
        refused = httpx.post(url + "/add", files={"files": ("a.png", b"x", "image/png")})
        assert refused.status_code == 403 and "read-only" in refused.json()["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "read-only" in err
    missing = graphret_command("serve", str(tmp_path / "nowhere"), "--port", str(free_port()))
    _, err = missing.communicate(timeout=120)
    assert missing.returncode != 0 and "Traceback" not in err and "nowhere" in err
    help_text = graphret_command("serve", "--help")
    out, _ = help_text.communicate(timeout=120)
    assert "--write-token" in out and "--host" in out and "127.0.0.1" in out


def test_serve_with_two_worker_processes_answers_searches_and_adds(blob_store_copy):
    """`serve --workers 2`: two processes on one socket, each with the store; an add through one
    is read by every later search (issue 25.3)."""
    store = blob_store_copy()
    port = free_port()
    proc = graphret_command("serve", str(store), "--port", str(port), "--workers", "2", "--search-threads", "1",
                            env={"GRAPHRET_WRITE_TOKEN": "two-workers"})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(url, proc)
        item = httpx.get(url + "/items", params={"limit": 1}).json()["items"][0]["id"]
        answers = [httpx.post(url + "/search", json={"ids": [item], "k": 3}, timeout=60) for _ in range(6)]
        assert all(a.status_code == 200 and len(a.json()["queries"][0]["results"]) == 3 for a in answers)
        image = {"files": ("a.png", png_bytes(np.zeros((16, 16), np.uint8)), "image/png")}
        added = httpx.post(url + "/add", files=image, headers={"Authorization": "Bearer two-workers"}, timeout=120)
        assert added.status_code == 200 and added.json()["items"] == 61
        versions = {httpx.post(url + "/search", json={"ids": [item], "k": 3}, timeout=120).json()["version"] for _ in range(6)}
        assert versions == {2}
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert "2 worker processes" in err and "Traceback" not in err
