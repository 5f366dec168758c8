"""MedMNIST fetching, against files served on loopback (never the real internet)."""

import hashlib
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from graphret.data import open_source
from graphret.data.fetch import (
    TABLE_PATH,
    fetch_medmnist,
    medmnist_name,
    medmnist_table,
)
from graphret.errors import InputError


class _Server:
    def __init__(self, folder: Path):
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Loopback requests must not go through a proxy set in the environment."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def served(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.savez_compressed(
        folder / "toymnist.npz",
        train_images=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        train_labels=np.array([[0], [1], [1], [0], [2]], np.uint8),
        test_images=rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        test_labels=np.array([[1], [2]], np.uint8),
    )
    (folder / "retinamnist.npz").write_bytes((folder / "toymnist.npz").read_bytes())
    server = _Server(folder)
    yield server, folder
    server.close()


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_fetch_good_md5_caches_and_does_not_download_again(served, tmp_path):
    server, folder = served
    cache = tmp_path / "cache"
    good = _md5(folder / "toymnist.npz")
    seen = []
    path = fetch_medmnist("toymnist", cache_dir=cache, base_url=server.url, md5=good,
                          progress=lambda done, total: seen.append((done, total)))
    assert path == cache / "toymnist.npz"
    assert path.read_bytes() == (folder / "toymnist.npz").read_bytes()
    assert server.requests == ["/toymnist.npz?download=1"]
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    again = fetch_medmnist("toymnist", cache_dir=cache, base_url=server.url, md5=good)
    assert again == path
    assert len(server.requests) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["toymnist.npz"]


def test_fetch_bad_md5_leaves_nothing(served, tmp_path):
    server, folder = served
    cache = tmp_path / "cache"
    got = _md5(folder / "toymnist.npz")
    with pytest.raises(InputError, match=f"expected {'0' * 32}, got {got}"):
        fetch_medmnist("toymnist", cache_dir=cache, base_url=server.url, md5="0" * 32)
    assert list(cache.iterdir()) == []


def test_fetch_checks_the_official_md5_from_the_table(served, tmp_path, monkeypatch):
    server, folder = served
    monkeypatch.setenv("GRAPHRET_MEDMNIST_URL", server.url)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match="expected bd4c0672f1bba3e3a89f0e4e876791e4"):
        fetch_medmnist("retina", cache_dir=cache)  # a fake served under the official name
    assert server.requests == ["/retinamnist.npz?download=1"]
    assert list(cache.iterdir()) == []
    path = fetch_medmnist("retina", cache_dir=cache, verify=False)
    assert path.is_file()


def test_fetch_errors(served, tmp_path):
    server, _ = served
    with pytest.raises(InputError, match="no official MD5 known for MedMNIST file 'toymnist'"):
        fetch_medmnist("toymnist", cache_dir=tmp_path / "c", base_url=server.url)
    with pytest.raises(InputError, match="HTTP 404"):
        fetch_medmnist("absentmnist", cache_dir=tmp_path / "c", base_url=server.url, verify=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_open_source_medmnist_end_to_end(served, tmp_path, monkeypatch):
    server, folder = served
    monkeypatch.setenv("GRAPHRET_MEDMNIST_URL", server.url)
    monkeypatch.setitem(medmnist_table(), "toymnist", {"url_name": "toymnist", "md5": _md5(folder / "toymnist.npz")})
    s = open_source("medmnist:toymnist", cache_dir=tmp_path / "cache")
    assert len(s) == 7 and list(s.splits) == ["train"] * 5 + ["test"] * 2
    assert s.labels.tolist() == [0, 1, 1, 0, 2, 1, 2]
    assert s.class_names == ["0", "1", "2"]


def test_real_official_file_served_on_loopback(shared_data, tmp_path):
    server = _Server(shared_data / "medmnist")
    try:
        path = fetch_medmnist("pneumoniamnist", cache_dir=tmp_path / "cache", base_url=server.url)
        s = open_source(path)
    finally:
        server.close()
    assert _md5(path) == "28209eda62fecd6e6a2d98b1501bb15f"
    assert len(s) == 5856 and s.class_names == ["normal", "pneumonia"]


def test_table_and_names():
    table = json.loads(TABLE_PATH.read_text())["sets"]
    assert table["retinamnist"]["md5"] == "bd4c0672f1bba3e3a89f0e4e876791e4"
    assert table["pneumoniamnist"]["md5"] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert table["chestmnist"]["md5"] == "02c8a6516a18b556561a56cbdd36c4a8"
    assert table["chestmnist"]["n"] == {"train": 78468, "val": 11219, "test": 22433}
    assert table["breastmnist"]["n"] == {"train": 546, "val": 78, "test": 156}
    assert all(len(v["md5"]) == 32 for v in table.values())
    assert medmnist_name("Breast") == "breastmnist"
    assert medmnist_name("blood_64") == "bloodmnist_64"
    assert medmnist_name("pathmnist.npz") == "pathmnist"
