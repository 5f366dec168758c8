"""Versions, one writer at a time, reads that never tear, crashes at any point, corruption, and
the paths users have (symlinks, umask, format 1 stores).  Runs the real `graphret` command in
subprocesses where a process must die or race."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import graphret
from graphret.errors import StoreError
from graphret.query import search
from graphret.store import history, open_store, upgrade, vacuum, verify
from tests.stores import fragment_paths, newest_manifest
from tests.synthetic import blob_images

ROOT = Path(__file__).resolve().parents[1]


def build(path, n_per_class=20):
    return graphret.build(blob_images(n_per_class=n_per_class, n_classes=3, seed=4), path, k=4, communities=("cnm",),
                          encoder="pixels", image_size=16, dim=12)


def image_folder(folder: Path, prefix: str, n: int, seed: int) -> Path:
    images = blob_images(n_per_class=(n + 2) // 3, n_classes=3, seed=seed)
    for i in range(n):
        sub = folder / images.class_names[images.labels[i]]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images.image(i)).save(sub / f"{prefix}{i}.png")
    return folder


def graphret_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "graphret.cli.main", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)


def files_of(store: Path) -> dict[str, bytes]:
    return {str(f.relative_to(store)): f.read_bytes() for f in store.rglob("*") if f.is_file() and f.name != "_writer.lock"}


@pytest.fixture()
def store(tmp_path):
    return build(tmp_path / "store")


def test_add_commits_a_version_that_writes_only_what_it_adds(store, tmp_path):
    first = newest_manifest(store.path)
    before = files_of(store.path)
    store.add(image_folder(tmp_path / "new", "n", 6, seed=9))
    assert store.version == 2 and len(store) == 66
    second = newest_manifest(store.path)
    assert second["parent"] == 1 and second["operation"] == "add"
    for table in ("items", "edges", "communities", "walk"):
        assert second["tables"][table][:-1] == first["tables"][table]  # the base's fragments, listed again
        assert len(second["tables"][table]) == len(first["tables"][table]) + 1
    assert second["tables"]["items"][-1]["rows"] == 6
    after = files_of(store.path)
    assert all(after[name] == data for name, data in before.items())  # nothing written before was changed
    new = set(after) - set(before)
    assert len(new) == 8 and all(name.startswith(("data/items-", "data/edges-", "data/communities-", "data/thumbnails-",
                                                  "data/walk-", "data/adjacency-", "data/regions-", "_versions/"))
                                 for name in new)  # the new items, their edges, communities, thumbnails and walk links,
    # the new version's prepared tables (graphret.store.prepared: what a search of it needs) and the manifest
    assert second["tables"]["adjacency"] != first["tables"]["adjacency"]
    old = open_store(store.path, version=1)  # the earlier version still reads as it was
    assert len(old) == 60 and old.version == 1
    assert [row["version"] for row in history(store.path)] == [1, 2]


def test_concurrent_adds_all_land_and_reads_never_tear(store, tmp_path):
    base = len(store)
    folders = [image_folder(tmp_path / f"in{p}", f"p{p}-", 10, seed=20 + p) for p in range(4)]
    failures, answers, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                snap = open_store(store.path)
                result = search(snap, snap.codes()[:3], k=5, mode="flat")
                assert result.rows.max() < len(snap) == snap.manifest["counts"]["items"]
                answers.append(snap.version)
            except Exception as error:  # noqa: BLE001 - every failure counts
                failures.append(repr(error))

    thread = threading.Thread(target=reader)
    thread.start()
    procs = [subprocess.Popen([sys.executable, "-m", "graphret.cli.main", "add", str(store.path), str(f), "--quiet"],
                              cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for f in folders]
    outputs = [p.communicate(timeout=300) for p in procs]
    stop.set()
    thread.join()
    assert all(p.returncode == 0 for p in procs), outputs
    final = open_store(store.path)
    assert len(final) == base + 40 and final.version == 5
    assert sorted(json.loads(out)["version"] for out, _ in outputs) == [2, 3, 4, 5]
    assert failures == [] and len(answers) > 0


@pytest.mark.parametrize("operation", ["add", "compact", "build"])
def test_a_writer_killed_at_any_point_leaves_the_last_version(store, tmp_path, operation):
    """SIGKILL before each file operation in turn (every second one, every fifth for a build, to
    keep the test short; benchmarks/bench_store.py kills at every one): the store opens at its
    last committed version with every committed item, and the next write succeeds."""
    folder = image_folder(tmp_path / "new", "k", 4, seed=7)
    args = {"add": ("add", store.path, folder, "--quiet"),
            "compact": ("compact", store.path),
            "build": ("build-graph", "demo:n=60,size=16", "-o", store.path, "--overwrite", "--encoder", "pixels",
                      "--k", "4", "--communities", "cnm", "--quiet")}[operation]
    if operation == "compact":
        store.add(image_folder(tmp_path / "first", "f", 3, seed=8))
    committed = len(open_store(store.path))
    point, killed = 0, 0
    while True:
        done = graphret_cli(*args, env={"GRAPHRET_FAULT_AFTER": str(point)})
        if done.returncode == 0:
            break
        assert done.returncode == -signal.SIGKILL, done.stderr
        killed += 1
        snap = open_store(store.path)  # opens at the last committed version
        assert verify(store.path) == []
        if operation == "add" and len(snap) == committed + 4:
            break  # killed after its commit (fsync of _versions/, removing the temporary file): the add landed whole
        assert len(snap) == committed
        point += 5 if operation == "build" else 2
    assert killed >= 4
    after = open_store(store.path)
    assert verify(store.path) == [] and after.version == history(store.path)[-1]["version"]
    referenced = {e["file"] for es in newest_manifest(store.path)["tables"].values() for e in es}
    store.refresh().add(image_folder(tmp_path / "next", "z", 3, seed=6))  # the next write succeeds ...
    leftovers = {f"data/{p.name}" for p in (store.path / "data").iterdir()} - referenced
    assert not any(name.startswith("data/.") for name in leftovers)  # ... and took the litter away


def test_corrupt_files_give_a_clear_error_never_a_signal(store, tmp_path):
    """Random byte flips in every kind of file, with the manifest's checksums recomputed to
    match (so only the Arrow validation stands between the bytes and the process)."""
    rng = np.random.default_rng(0)
    kinds = ["items", "edges", "communities", "dendrogram"]
    for trial, kind in enumerate(kinds * 2):
        copy = tmp_path / f"c{trial}"
        shutil.copytree(store.path, copy)
        path = fragment_paths(copy, kind)[0]
        data = bytearray(path.read_bytes())
        for _ in range(8):
            data[int(rng.integers(8, len(data) - 8))] ^= int(rng.integers(1, 256))
        path.write_bytes(bytes(data))
        newest = sorted((copy / "_versions").glob("*.json"))[-1]
        manifest = json.loads(newest.read_text())
        import hashlib

        for entry in manifest["tables"][kind]:
            entry["sha256"] = hashlib.sha256((copy / entry["file"]).read_bytes()).hexdigest()
        newest.write_text(json.dumps(manifest))
        done = graphret_cli("verify", copy)
        assert done.returncode in (0, 1), done.stderr  # never killed by a signal
        query = graphret_cli("query", copy, "--split", "test", "--k", "3", "--mode", "region")
        assert query.returncode in (0, 1), query.stderr
        if query.returncode == 1:
            assert query.stderr.startswith("Error: ") and len(query.stderr.strip().splitlines()) == 1, query.stderr
    flipped = tmp_path / "manifest-garbage"
    shutil.copytree(store.path, flipped)
    newest = sorted((flipped / "_versions").glob("*.json"))[-1]
    newest.write_bytes(b"{\"format\": \"graphret-store\", " + bytes(rng.integers(0, 256, 40, dtype=np.uint8)))
    done = graphret_cli("query", flipped, "--split", "test", "--k", "3")
    assert done.returncode == 1 and "not valid JSON" in done.stderr


def test_a_symlinked_store_is_changed_where_it_lives(store, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(store.path)
    graphret.open(link).add(image_folder(tmp_path / "new", "s", 3, seed=5))
    assert link.is_symlink() and os.readlink(link) == str(store.path)
    assert len(open_store(store.path)) == 63
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "new", "store"]  # nothing beside them


def test_stores_get_the_users_umask(tmp_path):
    old = os.umask(0o022)
    try:
        store = build(tmp_path / "masked")
    finally:
        os.umask(old)
    for path in [store.path, store.path / "data", store.path / "_versions"]:
        assert path.stat().st_mode & 0o777 == 0o755, path
    for path in (store.path / "data").iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_vacuum_keeps_what_readers_may_hold(store, tmp_path):
    store.add(image_folder(tmp_path / "a", "a", 3, seed=1))
    store.add(image_folder(tmp_path / "b", "b", 3, seed=2))
    store.compact()
    assert store.version == 4 and len(newest_manifest(store.path)["tables"]["items"]) == 1
    assert vacuum(store.path)["versions_removed"] == 0  # all superseded within the grace period
    report = vacuum(store.path, keep=1, grace=0)
    assert report["versions_removed"] == 3 and report["versions_left"] == 1
    assert [row["version"] for row in history(store.path)] == [4]
    listed = {e["file"] for es in newest_manifest(store.path)["tables"].values() for e in es}
    listed.add(newest_manifest(store.path)["encoder"]["file"]["file"])
    assert {f"data/{p.name}" for p in (store.path / "data").iterdir()} == listed
    assert len(open_store(store.path)) == 66 and verify(store.path) == []
    with pytest.raises(StoreError, match="has no version 1"):
        open_store(store.path, version=1)


def test_format_1_stores_open_read_only_and_upgrade(store, tmp_path):
    """A store as graphret 0.1 wrote it: one file per table and manifest.json at the top."""
    import hashlib

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    snap = open_store(store.path)
    manifest = {k: v for k, v in snap.manifest.items() if k not in ("tables", "version", "parent", "operation", "committed")}
    files = {}
    for table, name in (("items", "items.arrow"), ("edges", "edges.arrow"), ("communities", "communities.arrow"), ("dendrogram", "dendrogram.arrow")):
        shutil.copy(fragment_paths(store.path, table)[0], legacy / name)
    shutil.copy(store.path / snap.encoder_entry["file"], legacy / "encoder.pt")
    for name in ("items.arrow", "edges.arrow", "communities.arrow", "dendrogram.arrow", "encoder.pt"):
        files[name] = {"sha256": hashlib.sha256((legacy / name).read_bytes()).hexdigest(), "bytes": (legacy / name).stat().st_size}
    manifest.update(format_version=1, files=files)
    manifest["encoder"] = {k: v for k, v in manifest["encoder"].items() if k != "file"} | {"file": "encoder.pt"}
    (legacy / "manifest.json").write_text(json.dumps(manifest))
    old = graphret.open(legacy)
    assert old.snapshot.read_only and len(old) == 60
    assert old.search("test", k=3, mode="flat").rows.shape[1] == 3
    with pytest.raises(StoreError, match="format 1 store.*graphret upgrade"):
        old.add(image_folder(tmp_path / "new", "u", 3, seed=3))
    assert upgrade(legacy) == 1
    assert not (legacy / "manifest.json").exists() and not (legacy / "items.arrow").exists()
    new = graphret.open(legacy)
    assert not new.snapshot.read_only and len(new) == 60
    np.testing.assert_array_equal(new.codes(), old.codes())
    new.add(image_folder(tmp_path / "new2", "v", 3, seed=3))
    assert len(new) == 63


def test_sigterm_ends_a_build_like_ctrl_c(tmp_path):
    target = tmp_path / "term"
    # 400 epochs that early stopping cannot end: the training outlasts any machine's speed
    proc = subprocess.Popen([sys.executable, "-m", "graphret.cli.main", "build-graph", "demo:n=400,size=32", "-o", str(target),
                             "--epochs", "400", "--patience", "400"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while "epoch 2/" not in "".join(seen) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # until the encoder's training is under way, however slow the machine
    assert proc.poll() is None, "".join(seen)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    err = "".join(seen)
    assert proc.returncode == 130, err
    assert "interrupted; the store is at its last committed version" in err
    assert not (target / "_versions").exists() or not list((target / "_versions").glob("*.json"))


def test_newest_version_lists_the_folder_again_only_when_it_changed(tmp_path, monkeypatch):
    """NewestVersion (the server asks it per request) lists _versions/ once while the folder's
    mtime stays, sees a commit (a new entry moves the mtime), and does not trust a listing
    taken within a second of the folder's last change: an entry added in the same clock tick,
    which leaves the mtime where it was, is still seen."""
    from graphret.store import versions

    folder = tmp_path / "_versions"
    folder.mkdir()
    (folder / "00000001.json").write_text("{}")
    listed = []
    real = versions.newest_version
    monkeypatch.setattr(versions, "newest_version", lambda path: listed.append(path) or real(path))
    old = time.time_ns() - 10 * 10**9
    os.utime(folder, ns=(old, old))
    newest = versions.NewestVersion(tmp_path)
    assert [newest() for _ in range(5)] == [1] * 5 and len(listed) == 1
    (folder / "00000002.json").write_text("{}")  # a commit: the mtime moves
    assert newest() == 2 and len(listed) == 2
    assert newest() == 2 and len(listed) == 3  # the change was just now: not trusted yet
    recent = os.stat(folder).st_mtime_ns
    (folder / "00000003.json").write_text("{}")
    os.utime(folder, ns=(recent, recent))  # a commit in the same tick: the mtime did not move
    assert newest() == 3
    (folder / "00000003.json").unlink()  # a vacuum's removal is seen too
    os.utime(folder, ns=(old, old))
    assert newest() == 2 and newest() == 2 and len(listed) == 5
