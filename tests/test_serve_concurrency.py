"""Many readers at once while adds run: every answer comes from one committed version (and is
exactly the library's answer on that version), and adds that arrive together all land."""

import json
import threading

import httpx
import numpy as np

from graphret.api.add import add_to_store
from graphret.query.searcher import Searcher
from graphret.store import open_store
from tests.serving import TOKEN, live_server, png_bytes
from tests.synthetic import blob_images

QUERY = {"ids": ["blob-0001"], "k": 5, "mode": "region"}


def _uploads(seed: int, prefix: str):
    images = blob_images(n_per_class=1, n_classes=3, seed=seed)
    return [("files", (f"{prefix}-{i}.png", png_bytes(images.image(i)), "image/png")) for i in range(3)]


def test_reads_stay_consistent_while_two_adds_land(blob_store_copy):
    path = blob_store_copy()
    answers: list[tuple[int, dict]] = []
    adds: list[httpx.Response] = []
    done = threading.Event()
    start = threading.Barrier(2 + 6)

    def reader(url: str) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            start.wait()
            for _ in range(200):  # bounded; stops early once both adds have answered
                response = c.post("/search", json=QUERY)
                answers.append((response.status_code, response.json()))
                if done.is_set():
                    break

    def adder(url: str, seed: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            start.wait()
            adds.append(c.post("/add", files=_uploads(seed, f"a{seed}"), headers={"Authorization": f"Bearer {TOKEN}"}))

    with live_server(path, write_token=TOKEN) as server:
        threads = [threading.Thread(target=reader, args=(server.url,)) for _ in range(6)]
        writers = [threading.Thread(target=adder, args=(server.url, seed)) for seed in (40, 41)]
        for t in threads + writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        for t in threads:
            t.join()
        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/health").json() == {"status": "ok", "version": 3, "items": 66}

    assert [r.status_code for r in adds] == [200, 200], [r.text for r in adds]
    assert sorted(r.json()["version"] for r in adds) == [2, 3]  # both landed, one version each
    final = open_store(path)
    assert len(final) == 66 and sorted(i for i in final.ids if str(i).startswith("upload/")) == sorted(
        i for r in adds for i in r.json()["ids"])
    assert answers and all(status == 200 for status, _ in answers)
    expected = {}
    for _, payload in answers:
        version = payload["version"]
        if version not in expected:
            snapshot = open_store(path, version=version)
            expected[version] = Searcher(snapshot).search(QUERY["ids"], k=5, mode="region").to_dict()
        got = {k: v for k, v in payload.items() if k not in ("version", "seconds", "encode_seconds")}
        assert got == expected[version]  # the whole answer from that one version
    assert set(expected) <= {1, 2, 3}


def test_the_server_moves_to_a_version_another_process_committed(blob_store_copy):
    path = blob_store_copy()
    with live_server(path) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/health").json()["version"] == 1
        images = blob_images(n_per_class=1, n_classes=3, seed=50)
        images.ids = [f"outside-{i}" for i in range(3)]
        add_to_store(path, images)  # as `graphret add` from another process would
        assert c.get("/health").json() == {"status": "ok", "version": 2, "items": 63}
        detail = c.get("/items/outside-2").json()
        assert detail["added"] is True and detail["version"] == 2
        assert np.isfinite(c.post("/search", json={"ids": ["outside-2"], "k": 3}).json()["queries"][0]["results"][0]["score"])


def test_a_newer_version_that_cannot_be_read_leaves_the_server_on_its_version(blob_store_copy):
    path = blob_store_copy()
    versions = path / "_versions"
    manifest = json.loads((versions / "00000001.json").read_text())
    manifest.update(version=2, parent=1)
    manifest["tables"]["items"][0]["sha256"] = "0" * 64  # a damaged version 2: its items fail their checksum
    with live_server(path) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        (versions / "00000002.json").write_text(json.dumps(manifest))
        for _ in range(3):  # tried once, then not again
            assert c.get("/health").json() == {"status": "ok", "version": 1, "items": 60}
        assert c.post("/search", json=QUERY).json()["version"] == 1


def test_the_id_look_up_is_built_before_a_version_is_served(blob_store_copy):
    """The holder builds what a search by stored id looks ids up in, and the ids and paths
    every answer shows, while it opens a version, so no request pays them (about 1 s per worker
    at 1M items)."""
    from graphret.serve.holder import StoreHolder

    view = StoreHolder(blob_store_copy()).view
    assert {"row_of_id", "ids", "paths"} <= set(vars(view.snapshot))
    assert view.snapshot.row_of_id["blob-0001"] == list(view.snapshot.ids).index("blob-0001")


def test_warming_a_version_builds_the_graph_modes_community_layout(blob_store_copy, monkeypatch):
    """The graph mode's community layout (seconds and a copy of the codes at 1M items) is built
    while a version warms, not by its first graph-mode request."""
    from graphret.graph import layout as layouts
    from graphret.serve.holder import StoreHolder

    monkeypatch.setattr(layouts, "LAYOUT_ABOVE", 0)  # as a large archive would
    searcher = StoreHolder(blob_store_copy()).view.searcher()
    index = searcher.index
    assert "graph_base" in vars(index) and index.graph_base.layout is not None
    assert searcher._single is not None and searcher._single.base is index.graph_base  # a code alone's call, warmed too
