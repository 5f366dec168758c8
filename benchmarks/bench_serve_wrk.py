"""Benchmark: `graphret serve` under wrk (issue 25, deliverable 3).

The server runs as a user starts it (``graphret serve STORE --workers W``, its own processes);
wrk (Debian's package: ``apt-get install wrk``) sends ``POST /search`` by stored id (region
unless ``--mode``, k 10) from 8 and 32 connections, on the same cores, cycling through
``--ids`` stored test ids with ``benchmarks/wrk_search.lua`` (no result cache in graphret: the
load spreads over hundreds of ids).  Each level runs ``--seconds`` seconds after a short warm-up;
the table has queries/s, p50, p90, p99 and max latency and the errors wrk counted.  With
``--adds`` a writer keeps adding batches of the store's own test images through ``POST /add``
during the levels (every add must land).

Usage::

    python benchmarks/bench_serve_wrk.py --store /tmp/mednist-store --out benchmarks/results/serve_wrk --workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
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

from common import ROOT, load_average, log, utc_stamp  # noqa: E402 - benchmarks/ is on the path of a script run from it

LUA = ROOT / "benchmarks" / "wrk_search.lua"
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(store: str, port: int, workers: int, log_file: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "graphret.cli.main", "serve", store, "--port", str(port), "--workers", str(workers)]
    env = dict(os.environ, GRAPHRET_WRITE_TOKEN=TOKEN)
    with open(log_file, "w") as sink:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, cwd=ROOT, env=env, start_new_session=True)
    import httpx

    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {log_file.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return proc  # each worker opened and warmed the store before it answered its supervisor
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(1)
    raise SystemExit("the server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def group_usage(pgid: int) -> tuple[float, int]:
    """(CPU seconds, minor page faults) of the processes of group ``pgid`` (the server and its
    workers), from /proc: with the requests wrk counted, the server's own cost per request,
    which a shared machine's load disturbs far less than the queries per second."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu, faults = 0.0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # (fields from the state on: pgrp is the 3rd, minflt the 8th, utime/stime 12th/13th)
            cpu += (int(fields[11]) + int(fields[12])) / tick
            faults += int(fields[7])
    return cpu, faults


def run_wrk(port: int, ids_file: Path, connections: int, seconds: int, mode: str, k: int, server: int | None = None) -> dict:
    env = dict(os.environ, WRK_IDS=str(ids_file), WRK_MODE=mode, WRK_K=str(k))
    threads = min(2, connections)
    before = group_usage(server) if server else None
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA),
                           f"http://127.0.0.1:{port}"], capture_output=True, text=True, env=env, timeout=seconds + 120)
    line = next((x for x in done.stdout.splitlines() if x.startswith("JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary: {done.stdout}\n{done.stderr}")
    raw = json.loads(line[5:])
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    errors = raw["errors_connect"] + raw["errors_read"] + raw["errors_write"] + raw["errors_timeout"] + raw["errors_status"]
    out = {"connections": connections, "requests": raw["requests"], "qps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
           "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
           "max_ms": raw["max_us"] / 1000, "errors": errors, "non_2xx": int(non2xx.group(1)) if non2xx else 0}
    if before is not None and raw["requests"]:
        after = group_usage(server)
        out.update(server_cpu_us=round((after[0] - before[0]) / raw["requests"] * 1e6, 1),
                   server_minflt=round((after[1] - before[1]) / raw["requests"], 2))
    return out


class Adder(threading.Thread):
    """Adds batches of images through POST /add until stopped; counts what landed."""

    def __init__(self, port: int, files: list[Path], batch: int) -> None:
        super().__init__(daemon=True)
        self.port, self.files, self.batch = port, files, batch
        self.stop = threading.Event()
        self.landed = 0
        self.failed = 0
        self.seconds: list[float] = []

    def run(self) -> None:
        import httpx

        i = 0
        while not self.stop.is_set() and i + self.batch <= len(self.files):
            chunk = self.files[i : i + self.batch]
            i += self.batch
            t0 = time.perf_counter()
            files = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in chunk]
            answer = httpx.post(f"http://127.0.0.1:{self.port}/add", files=files, timeout=600,
                                headers={"Authorization": f"Bearer {TOKEN}"})
            if answer.status_code == 200:
                self.landed += len(chunk)
                self.seconds.append(time.perf_counter() - t0)
            else:
                self.failed += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--ids", type=int, default=500, help="distinct stored ids the load cycles through")
    parser.add_argument("--mode", default="region")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--adds", type=Path, default=None, help="a folder of images to add while serving")
    parser.add_argument("--name", default=None, help="the store's name in the table")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    import graphret

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store_path = args.store
        if args.adds:  # adds change the store: serve a copy
            store_path = str(work / "store")
            shutil.copytree(args.store, store_path, symlinks=True)
        store = graphret.open(store_path)
        splits = store.snapshot.split_names
        rows_pool = store.snapshot.split_rows(["test"]) if "test" in splits else np.arange(len(store))
        chosen = np.random.default_rng(0).choice(rows_pool, size=min(args.ids, len(rows_pool)), replace=False)
        ids_file = work / "ids.txt"
        ids_file.write_text("\n".join(str(store.ids[r]) for r in chosen) + "\n")
        items = len(store)
        del store
        for workers in args.workers:
            port = free_port()
            log(f"starting the server, {workers} worker(s)")
            proc = start_server(store_path, port, workers, work / "server.log")
            adder = None
            try:
                run_wrk(port, ids_file, 8, 3, args.mode, args.k)  # warm-up
                if args.adds:
                    adder = Adder(port, sorted(args.adds.rglob("*.jpeg")) + sorted(args.adds.rglob("*.png")), 20)
                    adder.start()
                for connections in args.connections:
                    row = {"workers": workers, "adds": bool(args.adds), **run_wrk(port, ids_file, connections, args.seconds, args.mode, args.k,
                                                                                     server=proc.pid)}
                    rows.append(row)
                    log(json.dumps(row))
            finally:
                if adder is not None:
                    adder.stop.set()
                    adder.join(600)
                    rows[-1]["added"] = adder.landed
                    rows[-1]["add_failed"] = adder.failed
                stop_server(proc)
    result = {"date": utc_stamp(), "load": load_average(),
              "store": args.name or args.store, "items": items, "mode": args.mode, "k": args.k, "ids": int(len(chosen)),
              "seconds": args.seconds, "rows": rows, "command": "python benchmarks/bench_serve_wrk.py " + " ".join(sys.argv[1:])}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"wrk_{(args.name or Path(args.store).name)}{'_adds' if args.adds else ''}"
        (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = [f"# `graphret serve` under wrk: {result['store']} ({items:,} items)", "",
                 f"{result['date']}, 2 cores shared by the server, wrk and other work (load average {', '.join(map(str, result['load']))} "
                 f"at the end).  `POST /search` by stored id, mode {args.mode}, k {args.k}, cycling through {len(chosen)} test ids, "
                 f"{args.seconds} s per level.  Command: `{result['command']}`.", "",
                 "| workers | adds running | connections | requests | q/s | p50 ms | p90 ms | p99 ms | max ms | errors | non-2xx "
                 "| server CPU us / request | minor faults / request |",
                 "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['workers']} | {'yes' if r['adds'] else 'no'} | {r['connections']} | {r['requests']:,} | {r['qps']:,} | "
                         f"{r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['errors']} | {r['non_2xx']} | "
                         f"{r.get('server_cpu_us', '-')} | {r.get('server_minflt', '-')} |")
        (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
