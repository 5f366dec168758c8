"""Benchmark: the cost of serving (issue 15).

A MedNIST store (59k images, pixel codes) served by ``graphret serve`` in its own process on
loopback, and a bounded load of search requests from 1, 8 and 32 concurrent clients (asyncio
and httpx in this process): queries/s and p50/p95 latency, beside in-process ``store.search``
on the same queries (the ratio is the overhead of serving: HTTP, JSON, the server's threads),
with no failed request allowed -- first with the store left alone, then while a writer keeps
adding batches of uploaded images (every add must land: the store's final size is checked).

Every level is bounded by ``--requests`` requests and ``--max-seconds`` seconds.  Both sides
share the machine's cores, so the served figures include the load generator's own cost.

Usage::

    python benchmarks/bench_serve.py --out benchmarks/results/serve            # builds the store (~1-4 min)
    python benchmarks/bench_serve.py --store mednist-store --out ...            # a copy of an existing store
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphret.evaluation.machine import cpu_model  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from shared_data import MEDNIST  # noqa: E402
TOKEN = "bench-token"
SCREENSHOTS = ("query-results.png", "modes.png", "communities.png")
SERVER = """
import sys
sys.path.insert(0, {root!r})
from graphret.serve import ServeConfig, serve
serve({store!r}, ServeConfig(port={port}, write_token={token!r}, max_k=1000), log=lambda line: print(line, file=sys.stderr, flush=True))
"""


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "mean_ms": round(float(ms.mean()), 2)}


# ---------------------------------------------------------------------------------- the store
def prepare_store(args, work: Path) -> Path:
    import graphret

    target = work / "store"
    if args.store:
        log(f"copying {args.store}")
        shutil.copytree(args.store, target, symlinks=True, ignore=shutil.ignore_patterns("uploads"))
        return target
    log(f"building the MedNIST store from {args.source} (pixel codes)")
    started = time.perf_counter()
    graphret.build(str(args.source), str(target), encoder="pixels")
    log(f"built in {time.perf_counter() - started:.0f} s")
    return target


def choose_queries(store, n: int, seed: int) -> list[str]:
    rows = store.snapshot.split_rows(["test"]) if "test" in set(store.snapshot.splits) else np.arange(len(store))
    chosen = np.random.default_rng(seed).choice(rows, size=min(n, len(rows)), replace=False)
    return [str(store.ids[r]) for r in chosen]


def in_process(store, queries: list[str], k: int, mode: str) -> dict:
    """store.search on each query in turn, in this process (the searcher warmed first)."""
    store.search(queries[:1], k=k, mode=mode)
    latencies = []
    started = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        store.search([q], k=k, mode=mode)
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    return {"requests": len(queries), "failed": 0, "qps": round(len(queries) / wall, 1), **percentiles(latencies)}


# ---------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(store: Path, port: int, log_file: Path) -> subprocess.Popen:
    """The server in its own process, its log (warnings and errors) written to ``log_file``."""
    code = SERVER.format(root=str(ROOT), store=str(store), port=port, token=TOKEN)
    with open(log_file, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=sink, text=True)
    import httpx

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log_file.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")


async def load(url: str, queries: list[str], *, clients: int, requests: int, max_seconds: float, k: int, mode: str) -> dict:
    """``clients`` concurrent clients sending ``requests`` searches (at most ``max_seconds``)."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    versions: set[int] = set()
    next_index = 0
    deadline = time.perf_counter() + max_seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        async def worker() -> None:
            nonlocal next_index
            while next_index < requests and time.perf_counter() < deadline:
                q = queries[next_index % len(queries)]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/search", json={"ids": [q], "k": k, "mode": mode})
                    if response.status_code != 200:
                        failures.append(f"at {t0 - started:.1f} s: {response.status_code}: {response.text[:200]}")
                        continue
                    versions.add(response.json()["version"])
                except httpx.HTTPError as error:
                    failures.append(f"at {t0 - started:.1f} s: {type(error).__name__}: {error!r} ({error.__context__!r})")
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - started
    return {"clients": clients, "requests": len(latencies) + len(failures), "failed": len(failures),
            "failures": failures[:5], "qps": round(len(latencies) / wall, 1) if latencies else 0.0,
            "seconds": round(wall, 2), "versions_seen": sorted(versions), **(percentiles(latencies) if latencies else {})}


class Adder:
    """A writer adding batches of uploaded images until stopped (state: its thread and counts)."""

    def __init__(self, url: str, images: np.ndarray, batch: int) -> None:
        self.url, self.images, self.batch = url, images, batch
        self.stop = threading.Event()
        self.added = 0
        self.batches: list[float] = []
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def _files(self, n: int):
        from PIL import Image

        files = []
        for i in range(self.batch):
            buffer = io.BytesIO()
            Image.fromarray(self.images[(n * self.batch + i) % len(self.images)]).save(buffer, format="PNG")
            files.append(("files", (f"bench-{n}-{i}.png", buffer.getvalue(), "image/png")))
        return files

    def run(self) -> None:
        import httpx

        n = 0
        with httpx.Client(base_url=self.url, timeout=600) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                response = client.post("/add", files=self._files(n), headers={"Authorization": f"Bearer {TOKEN}"})
                n += 1
                if response.status_code == 200:
                    self.added += response.json()["added"]
                    self.batches.append(time.perf_counter() - t0)
                else:
                    self.failures.append(f"{response.status_code}: {response.text[:200]}")

    def __enter__(self) -> "Adder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


# ---------------------------------------------------------------------------------- report
def markdown(report: dict) -> str:
    lines = [
        "# Serving cost: `graphret serve` against in-process `store.search`",
        "",
        f"{report['date']} on {report['machine']['cpu']} ({report['machine']['cores']} cores shared by the server and the "
        f"load generator; load average {report['machine'].get('load_average_at_start', ['?'])[0]} at the start, from other "
        f"work on the machine), Python {report['machine']['python']}.  Store: {report['store']['items']} MedNIST images, "
        f"{report['store']['encoder']} codes, thumbnails table {report['store']['thumbnail_mib']} MiB.  "
        f"{report['queries']} stored test images as queries, k = {report['k']}; each level at most "
        f"{report['bound']['requests']} requests or {report['bound']['max_seconds']} s.",
        "",
        f"Command: `{report['command']}`",
        "",
        "| mode | while | clients | requests | failed | queries/s | p50 ms | p95 ms | q/s vs in-process | p50 vs in-process |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, block in report["modes"].items():
        base = block["in_process"]
        lines.append(f"| {mode} | in-process `store.search` | 1 | {base['requests']} | 0 | {base['qps']} | {base['p50_ms']} | "
                     f"{base['p95_ms']} | 1.00 | 1.00 |")
        for scenario in ("idle", "adding"):
            for row in block[scenario]:
                lines.append(
                    f"| {mode} | {'an add running' if scenario == 'adding' else 'nothing else'} | {row['clients']} | {row['requests']} | "
                    f"{row['failed']} | {row['qps']} | {row.get('p50_ms', '')} | {row.get('p95_ms', '')} | "
                    f"{row['qps'] / base['qps']:.2f} | {row.get('p50_ms', 0) / base['p50_ms']:.2f} |")
    adds = report["adds"]
    lines += [
        "",
        f"While adding: {adds['batches']} adds of {adds['batch']} uploaded images landed ({adds['added']} images, "
        f"median {adds['median_seconds']} s each), {adds['failed']} failed; the store went from {adds['items_before']} to "
        f"{adds['items_after']} items ({'nothing lost' if adds['items_after'] == adds['items_before'] + adds['added'] else 'ITEMS LOST'}), "
        f"and searches read versions {adds['versions_seen']}.",
        "",
        "The ratio columns divide the served figure by the in-process one: queries/s below 1 and latency above 1 are the",
        "cost of HTTP, JSON and the server's threads, with the load generator on the same two cores.  With one client the",
        "latency ratio is that cost per request; with 8 and 32 the server is saturated (queries/s stays about level) and",
        "latency is mostly waiting in line: about clients / queries/s.  While adding, each add encodes, links and commits",
        "its images, and the server opens and warms every new version, on the same two cores.",
    ]
    shots = report.get("screenshots") or []
    if shots:
        lines += ["", "## The page", "",
                  "Screenshots taken by `tests/test_serve_browser.py` in headless Chromium "
                  "(`GRAPHRET_SCREENSHOTS=benchmarks/results/serve pytest tests/test_serve_browser.py`):", ""]
        lines += [f"![{name}]({name})" for name in shots]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=str(MEDNIST), help="the MedNIST npz the store is built from")
    parser.add_argument("--store", default=None, help="copy this store instead of building one")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "serve"))
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--modes", default="region,flat")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--requests", type=int, default=600, help="requests per level at most")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="seconds per level at most")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--add-batch", type=int, default=20, help="images per add while adding")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import graphret

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    clients = [int(c) for c in args.clients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="graphret-bench-serve-"))
    proc = None
    report: dict = {}
    try:
        path = prepare_store(args, work)
        store = graphret.open(path)
        queries = choose_queries(store, args.queries, args.seed)
        thumbnails = sum(e["bytes"] for e in store.manifest["tables"].get("thumbnails", []))
        report.update({
            "date": _dt.date.today().isoformat(),
            "command": "python benchmarks/bench_serve.py " + " ".join(sys.argv[1:]),
            "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
            "store": {"items": len(store), "encoder": store.manifest["encoder"]["name"], "thumbnail_mib": round(thumbnails / 2**20, 1)},
            "queries": len(queries), "k": args.k, "bound": {"requests": args.requests, "max_seconds": args.max_seconds},
            "modes": {},
        })
        modes = args.modes.split(",")
        for mode in modes:
            log(f"in-process store.search, mode {mode}")
            report["modes"][mode] = {"in_process": in_process(store, queries, args.k, mode), "idle": [], "adding": []}
        del store
        port = free_port()
        log(f"starting the server on port {port}")
        server_log = work / "server.log"
        proc = start_server(path, port, server_log)
        url = f"http://127.0.0.1:{port}"
        for mode in modes:
            for c in clients:
                log(f"served, mode {mode}, {c} clients")
                report["modes"][mode]["idle"].append(asyncio.run(load(url, queries, clients=c, requests=args.requests,
                                                                      max_seconds=args.max_seconds, k=args.k, mode=mode)))
        with np.load(args.source) as z:
            new_images = z["test_images"][:2000] if "test_images" in z.files else z["images"][-2000:]
        items_before = len(graphret.open(path))
        versions: set[int] = set()
        with Adder(url, new_images, args.add_batch) as adder:
            for mode in modes:
                for c in clients:
                    log(f"served while adding, mode {mode}, {c} clients")
                    row = asyncio.run(load(url, queries, clients=c, requests=args.requests, max_seconds=args.max_seconds,
                                           k=args.k, mode=mode))
                    versions.update(row["versions_seen"])
                    report["modes"][mode]["adding"].append(row)
        items_after = len(graphret.open(path))
        report["adds"] = {"batch": args.add_batch, "batches": len(adder.batches), "added": adder.added, "failed": len(adder.failures),
                          "failures": adder.failures[:5], "median_seconds": round(float(np.median(adder.batches)), 2) if adder.batches else None,
                          "items_before": items_before, "items_after": items_after, "versions_seen": sorted(versions)}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            report["server_log_tail"] = server_log.read_text().splitlines()[-20:]
        shutil.rmtree(work, ignore_errors=True)
    report["screenshots"] = [name for name in SCREENSHOTS if (out / name).exists()]
    (out / "serve.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "serve.md").write_text(markdown(report))
    print(markdown(report))
    failed = sum(r["failed"] for block in report["modes"].values() for s in ("idle", "adding") for r in block[s])
    if failed or report["adds"]["failed"] or report["adds"]["items_after"] != report["adds"]["items_before"] + report["adds"]["added"]:
        raise SystemExit(f"{failed} searches and {report['adds']['failed']} adds failed, or items were lost")


if __name__ == "__main__":
    main()
