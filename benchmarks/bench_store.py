"""Benchmark: a store that never loses data (issue 12).

Four parts, each a real `graphret` process where a process must die or race:

* **faults** -- a build, adds and a compact killed with SIGKILL before each of their file
  operations in turn (``GRAPHRET_FAULT_AFTER=N``, the hook in ``graphret.store.fs``): after every
  kill the store must open at its last committed version with every committed item, pass
  ``graphret verify``, and take the next write;
* **concurrency** -- four processes adding 100 distinct images each at once, over repeated
  trials, while this process runs queries on freshly opened snapshots: every add must land
  (400 items each trial) and no query may fail or see a torn store;
* **corruption** -- random bytes flipped in every kind of file, the manifest's checksum
  recomputed to match (so only the Arrow validation stands between the bytes and the process),
  then ``graphret query``: a clear one-line error or a correct answer, never a signal;
* **add cost** -- adding 100 images to stores of 10k, 100k and 1M items: seconds and bytes
  written (``wchar`` of /proc/self/io around the add), format 2 against format 1 (graphret
  0.1, which rewrote the whole store; measured with that version's code from a checkout given
  by ``--before``, e.g. ``git worktree add /tmp/graphret-0.1 2f0cac8``).

Usage::

    python benchmarks/bench_store.py --out benchmarks/results/store --before /tmp/graphret-0.1
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphret.evaluation.machine import cpu_model  # noqa: E402


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def cli(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphret.cli.main", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=timeout)


def blob_folder(folder: Path, prefix: str, n: int, seed: int, size: int = 16) -> Path:
    """n small grey images of 3 classes (bright blobs at class-specific places) as PNG files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    centres = [(4, 4), (11, 11), (4, 11)]
    for i in range(n):
        c = i % 3
        cy, cx = centres[c]
        img = 200 * np.exp(-((yy - cy - rng.normal(0, 1)) ** 2 + (xx - cx - rng.normal(0, 1)) ** 2) / 8.0) + rng.normal(20, 8, (size, size))
        sub = folder / f"class{c}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(sub / f"{prefix}{i}.png")
    return folder


# ------------------------------------------------------------------------------------- faults
def _state(path: Path) -> tuple[int | None, int]:
    """(the newest committed version or None, its items)."""
    from graphret.store import open_store
    from graphret.store.versions import newest_version

    if newest_version(path) is None:
        return None, 0
    snap = open_store(path)
    return snap.version, len(snap)


def kill_everywhere(args: list, path: Path, after_items: int) -> dict:
    """Run ``graphret *args`` killed before its 0th, 1st, ... file operation until it has
    committed.  After each kill the store must be at its previous version with its items
    (nothing committed) or at the next version with ``after_items`` items (the kill came after
    the commit), and pass ``verify``; then the next run goes on from there."""
    from graphret.store import verify

    base_version, base_items = _state(path)
    runs = kills = bad = committed_by_killed = 0
    point = 0
    problems: list[str] = []
    while True:
        done = cli(*args, env={"GRAPHRET_FAULT_AFTER": str(point)})
        runs += 1
        if done.returncode not in (0, -signal.SIGKILL):
            problems.append(f"point {point}: exit {done.returncode}: {done.stderr.strip()[-200:]}")
            bad += 1
            break
        version, items = _state(path)
        expected_next = 1 if base_version is None else base_version + 1
        try:
            if version not in (base_version, expected_next):
                raise RuntimeError(f"at version {version}, expected {base_version} or {expected_next}")
            if version == base_version and items != base_items:
                raise RuntimeError(f"{items} items at the old version, expected {base_items}")
            if version == expected_next and items != after_items:
                raise RuntimeError(f"{items} items at the new version, expected {after_items}")
            if version is not None and verify(path):
                raise RuntimeError(f"verify: {verify(path)}")
        except Exception as error:  # noqa: BLE001 - every failure counts
            bad += 1
            problems.append(f"point {point}: {error}")
        if done.returncode == 0:
            break
        kills += 1
        if version == expected_next:  # killed after its commit: the change is in
            committed_by_killed += 1
            break
        point += 1
    return {"operation": args[0], "runs": runs, "kills": kills, "killed_after_commit": committed_by_killed, "failures": bad,
            "problems": problems[:5]}


def faults(work: Path, rounds: int) -> list[dict]:
    rows = []
    store = work / "faults"
    build = ["build-graph", "demo:n=150,size=16", "-o", store, "--encoder", "pixels", "--k", "4", "--communities", "cnm", "--quiet"]
    log("faults: build")
    rows.append(kill_everywhere(build, store, 150))
    for r in range(rounds):
        _, before = _state(store)
        folder = blob_folder(work / f"add{r}", f"r{r}-", 20, seed=r)
        log(f"faults: add round {r + 1} ({before} items)")
        rows.append(kill_everywhere(["add", store, folder, "--quiet"], store, before + 20))
        log("faults: compact")
        rows.append(kill_everywhere(["compact", store], store, before + 20))
        log("faults: build --overwrite")
        rows.append(kill_everywhere(build + ["--overwrite"], store, 150))
    return rows


# -------------------------------------------------------------------------------- concurrency
def concurrency(work: Path, trials: int, adders: int, per_adder: int, queries: int) -> dict:
    import graphret
    from graphret.query import search
    from graphret.store import open_store

    results = []
    for trial in range(trials):
        path = work / f"conc{trial}"
        graphret.build("demo:n=300,size=16", path, encoder="pixels", k=5, communities=("cnm",))
        base = _state(path)[1]
        folders = [blob_folder(work / f"c{trial}-{p}", f"t{trial}p{p}-", per_adder, seed=100 * trial + p) for p in range(adders)]
        failures: list[str] = []
        answered, during = [0], [0]
        versions: set[int] = set()
        stop = threading.Event()

        def reader():  # until every add has finished, and at least `queries` answers
            while not stop.is_set() or answered[0] < queries:
                try:
                    snap = open_store(path)
                    res = search(snap, snap.codes()[:4], k=5, mode="flat")
                    if res.rows.max() >= len(snap) or len(snap) != snap.manifest["counts"]["items"]:
                        raise RuntimeError("torn read")
                    versions.add(snap.version)
                    answered[0] += 1
                    during[0] += not stop.is_set()
                except Exception as error:  # noqa: BLE001
                    failures.append(repr(error))

        thread = threading.Thread(target=reader)
        started = time.perf_counter()
        thread.start()
        procs = [subprocess.Popen([sys.executable, "-m", "graphret.cli.main", "add", str(path), str(f), "--quiet"], cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for f in folders]
        codes = [p.wait(timeout=900) for p in procs]
        adds_seconds = time.perf_counter() - started
        stop.set()
        thread.join()
        final = _state(path)[1]
        results.append({"trial": trial, "exit_codes": codes, "items_added": final - base, "expected": adders * per_adder,
                        "queries": answered[0], "queries_during_adds": during[0], "query_failures": len(failures),
                        "versions_seen": sorted(versions),
                        "adds_seconds": round(adds_seconds, 1), "failure_examples": failures[:3]})
        log(f"concurrency trial {trial + 1}: {results[-1]}")
        shutil.rmtree(path, ignore_errors=True)
    return {"adders": adders, "images_each": per_adder, "trials": results,
            "all_landed": all(r["items_added"] == r["expected"] for r in results),
            "query_failures": sum(r["query_failures"] for r in results),
            "queries": sum(r["queries"] for r in results)}


# --------------------------------------------------------------------------------- corruption
def corruption(work: Path, trials: int, seed: int = 0) -> dict:
    import graphret

    rng = np.random.default_rng(seed)
    base = work / "corrupt-base"
    graphret.build("demo:n=200,size=16", base, encoder="pixels", k=5, communities=("cnm", "leiden"))
    outcomes: dict[str, dict[str, int]] = {}
    for kind in ("items", "edges", "communities", "dendrogram", "encoder", "manifest"):
        counts = {"clear_error": 0, "answered": 0, "signal": 0, "other": 0, "verify_found": 0}
        for t in range(trials):
            copy = work / f"c-{kind}-{t}"
            shutil.copytree(base, copy)
            newest = sorted((copy / "_versions").glob("*.json"))[-1]
            manifest = json.loads(newest.read_text())
            if kind == "manifest":
                data = bytearray(newest.read_bytes())
                for _ in range(4):
                    data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
                newest.write_bytes(bytes(data))
            else:
                entry = manifest["encoder"]["file"] if kind == "encoder" else manifest["tables"][kind][0]
                path = copy / entry["file"]
                data = bytearray(path.read_bytes())
                for _ in range(int(rng.integers(1, 16))):
                    data[int(rng.integers(0, len(data)))] ^= int(rng.integers(1, 256))
                path.write_bytes(bytes(data))
                entry["sha256"] = hashlib.sha256(bytes(data)).hexdigest()  # the checksum no longer guards it
                newest.write_text(json.dumps(manifest))
            args = ("query", copy, "--image", work / "query.png", "--k", "3") if kind == "encoder" else \
                ("query", copy, "--split", "test", "--k", "3", "--mode", "region")
            done = cli(*args)
            if done.returncode < 0:
                counts["signal"] += 1
            elif done.returncode == 0:
                counts["answered"] += 1
            elif done.returncode == 1 and done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1:
                counts["clear_error"] += 1
            else:
                counts["other"] += 1
            checked = cli("verify", copy)
            if checked.returncode < 0:
                counts["signal"] += 1
            counts["verify_found"] += checked.returncode == 1
            shutil.rmtree(copy, ignore_errors=True)
        outcomes[kind] = counts
        log(f"corruption {kind}: {counts}")
    return outcomes


# ----------------------------------------------------------------------------------- add cost
def synthetic_store(path: Path, n: int, *, legacy: bool, dim: int = 64, k: int = 10, seed: int = 0) -> None:
    """A store of n items whose codes, graph and communities are generated (what an add costs
    does not depend on their quality), with a real pixel encoder fitted on blob images."""
    import graphret
    from graphret.data.imageset import ImageSet
    from graphret.encoders.pixels import PixelPCAEncoder
    from graphret.graph.build import edges_arrow
    from graphret.store.fragments import fixed_size_list, sha256_file, write_arrow
    from graphret.store.write import StoreContent, write_store

    rng = np.random.default_rng(seed)
    sample_dir = blob_folder(path.parent / f"{path.name}-sample", "s", 300, seed=seed)
    from graphret.data.folder import load_folder

    sample: ImageSet = load_folder(sample_dir, seed=seed, split=False)
    encoder = PixelPCAEncoder(image_size=16, dim=dim).fit(sample, np.arange(len(sample)))
    centres = encoder.encode(sample).default[:3]
    label = rng.integers(0, 3, n)
    codes = centres[label] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    src = np.repeat(np.arange(n), k)
    dst = (src + rng.integers(1, 1000, n * k)) % n
    a, b = np.minimum(src, dst), np.maximum(src, dst)
    key = np.unique(a.astype(np.int64) * n + b)
    a, b = key // n, key % n
    a, b = a[a != b], b[a != b]
    items = pa.table({"id": pa.array([f"item{i}" for i in range(n)]), "path": pa.nulls(n, pa.string()),
                      "split": pa.array(["all"] * n), "label": pa.array(label.astype(np.int32)),
                      "label_name": pa.array([f"class{c}" for c in label]),
                      "code": fixed_size_list(codes.astype(np.float32), pa.float32())})
    edges = edges_arrow(a, b, rng.uniform(0.5, 1.0, len(a)).astype(np.float32))
    communities = pa.table({"cnm": pa.array((label + 3 * (np.arange(n) % 50)).astype(np.int32))})
    manifest = {
        "graphret_version": graphret.__version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "source": {"spec": str(sample_dir), "description": "generated codes", "task": "multiclass",
                   "class_names": ["class0", "class1", "class2"], "split_origin": "none", "skipped": {}, "metadata_columns": []},
        "encoder": {"name": "pixels", "description": encoder.description, "config": encoder.config(), "spaces": {"default": dim},
                    "classifier": False},
        "archive": ["all"], "graph": {"items": "all", "k": k},
        "communities": {"cnm": {"resolution": 1.0, "n_communities": int(communities.column("cnm").to_numpy().max()) + 1,
                                "quality_function": "newman"}},
        "params": {"k": k, "quality": "newman", "resolution": 1.0, "split": False},
        "seed": seed, "counts": {"items": n, "archive": n, "edges": edges.num_rows, "by_split": {"all": n}, "added_since_clustering": 0},
        "build": {},
    }
    if not legacy:
        items = items.append_column("added", pa.array(np.zeros(n, bool)))
        write_store(path, StoreContent(items=items, edges=edges, communities=communities, manifest=manifest,
                                       write_encoder=encoder.save))
        return
    path.mkdir(parents=True)
    write_arrow(path / "items.arrow", items)
    write_arrow(path / "edges.arrow", edges)
    write_arrow(path / "communities.arrow", communities)
    encoder.save(path / "encoder.pt")
    manifest["encoder"]["file"] = "encoder.pt"
    files = {name: {"sha256": sha256_file(path / name), "bytes": (path / name).stat().st_size}
             for name in ("items.arrow", "edges.arrow", "communities.arrow", "encoder.pt")}
    (path / "manifest.json").write_text(json.dumps({"format": "graphret-store", "format_version": 1, **manifest, "files": files}))


ADD_CHILD = r"""
import json, sys, time
def wchar():
    for line in open("/proc/self/io"):
        if line.startswith("wchar:"):
            return int(line.split()[1])
store, folder, legacy = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if legacy:
    from graphret.store.append import add_to_store
    run = lambda: add_to_store(store, folder, split=False)
else:
    from graphret.api.add import add_to_store
    from graphret.api.config import AddConfig
    run = lambda: add_to_store(store, folder, AddConfig.from_options(split=False))
import graphret.encoders.pixels, numpy, torch  # imports outside the timed add
w0, t0 = wchar(), time.perf_counter()
summary = run()
print(json.dumps({"seconds": time.perf_counter() - t0, "bytes_written": wchar() - w0, "items": summary["items"]}))
"""


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def add_cost(work: Path, sizes: list[int], before: Path | None) -> list[dict]:
    rows = []
    folder = blob_folder(work / "add100", "new", 100, seed=7)
    for n in sizes:
        for legacy in ([True, False] if before else [False]):
            path = work / f"{'v1' if legacy else 'v2'}-{n}"
            log(f"add cost: {'format 1' if legacy else 'format 2'} store of {n:,} items")
            synthetic_store(path, n, legacy=legacy)
            size_before = folder_bytes(path)
            env = {**os.environ, "PYTHONPATH": str(before if legacy else ROOT)}
            done = subprocess.run([sys.executable, "-c", ADD_CHILD, str(path), str(folder), "1" if legacy else "0"], capture_output=True,
                                  text=True, env=env, cwd=str(before if legacy else ROOT), timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-2000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append({"items": n, "format": 1 if legacy else 2, "graphret": "0.1" if legacy else "this",
                         "seconds": round(result["seconds"], 2), "bytes_written": result["bytes_written"],
                         "store_bytes_before": size_before, "items_after": result["items"]})
            log(f"  {rows[-1]}")
            shutil.rmtree(path, ignore_errors=True)
    return rows


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = ["# Store durability and add cost (issue 12)", "",
             f"{m['date_utc']}, {m['cpu']}, {m['cores']} cores, load {m['load_average']}; command: `{report['command']}`", ""]
    if report.get("faults"):
        f = report["faults"]
        total = sum(r["runs"] for r in f)
        kills = sum(r["kills"] for r in f)
        fails = sum(r["failures"] for r in f)
        lines += ["## Fault injection (SIGKILL before each file operation)", "",
                  f"{total} runs, {kills} of them killed; {fails} left a store that was not at its last committed version "
                  "(the one before the operation, or the operation's own when the kill came after its commit) with all its "
                  "items, failed `verify`, or refused the next write.", "",
                  "| operation | runs | kills | killed after the commit | failures |", "|---|---:|---:|---:|---:|"]
        by_operation: dict[str, dict] = {}  # one line per operation, summed over the rounds
        for r in f:
            row = by_operation.setdefault(r["operation"], {"runs": 0, "kills": 0, "killed_after_commit": 0, "failures": 0})
            for key in row:
                row[key] += r[key]
        lines += [f"| {op} | {r['runs']} | {r['kills']} | {r['killed_after_commit']} | {r['failures']} |" for op, r in by_operation.items()]
        lines.append("")
    if report.get("concurrency"):
        c = report["concurrency"]
        lines += [f"## Concurrency: {c['adders']} processes adding {c['images_each']} images each at once", "",
                  "| trial | items added (expected) | queries (while adds ran) | query failures | versions seen | seconds |",
                  "|---:|---:|---:|---:|---|---:|"]
        lines += [f"| {t['trial'] + 1} | {t['items_added']} ({t['expected']}) | {t['queries']} ({t['queries_during_adds']}) | {t['query_failures']} | "
                  f"{t['versions_seen'][0]}..{t['versions_seen'][-1]} | {t['adds_seconds']} |" for t in c["trials"]]
        lines.append("")
    if report.get("corruption"):
        lines += ["## Corruption (random byte flips, checksums recomputed to match)", "",
                  "A query (`--split test --mode region`; an image query for the encoder) and `graphret verify` on each damaged "
                  "copy. \"Answered\": the query read only undamaged parts, or damaged values that are still valid data (a "
                  "flipped float in a code, a flipped weight in the encoder: only the checksum, defeated here on purpose, "
                  "catches those).", "",
                  "| file | query: clear one-line error | query: answered | killed by a signal | other | verify found it |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['clear_error']} | {v['answered']} | {v['signal']} | {v['other']} | {v.get('verify_found', '-')} |"
                  for k, v in report["corruption"].items()]
        lines.append("")
    if report.get("add_cost"):
        lines += ["## Adding 100 images", "", "| items | format | seconds | bytes written | store size before |", "|---:|---|---:|---:|---:|"]
        lines += [f"| {r['items']:,} | {r['format']} (graphret {r['graphret']}) | {r['seconds']} | {r['bytes_written']:,} | "
                  f"{r['store_bytes_before']:,} |" for r in report["add_cost"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/store")
    parser.add_argument("--parts", default="faults,concurrency,corruption,add_cost",
                        help="the parts to run; the others' figures are kept from an earlier store.json in --out")
    parser.add_argument("--rounds", type=int, default=3, help="fault rounds (add, compact, rebuild each)")
    parser.add_argument("--trials", type=int, default=3, help="concurrency trials")
    parser.add_argument("--queries", type=int, default=1000, help="queries per concurrency trial")
    parser.add_argument("--flips", type=int, default=20, help="corruption trials per kind of file")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--before", type=Path, default=None, help="a checkout of graphret 0.1 (format 1) for the add cost before")
    args = parser.parse_args()
    parts = args.parts.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / "store.json").read_text()) if (out / "store.json").is_file() else {}
    report: dict = {**previous, "command": "python benchmarks/bench_store.py " + " ".join(sys.argv[1:]),
                    "machine": {"date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
                                "cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}}
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        work = Path(tmp)
        blob_folder(work / "q", "q", 1, seed=1)
        shutil.copy(next((work / "q").rglob("*.png")), work / "query.png")
        if "faults" in parts:
            report["faults"] = faults(work, args.rounds)
        if "concurrency" in parts:
            report["concurrency"] = concurrency(work, args.trials, 4, 100, args.queries)
        if "corruption" in parts:
            report["corruption"] = corruption(work, args.flips)
        if "add_cost" in parts:
            report["add_cost"] = add_cost(work, args.sizes, args.before)
    (out / "store.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "store.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
