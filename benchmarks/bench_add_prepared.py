"""Benchmark: what the prepared tables cost an add (issue 25.1's store format 3).

An add now writes its version's prepared tables (``graphret.store.prepared``: the archive's
graph and walk lists as CSR, the region arrays), which an add before format 3 did not: this
times ``add_to_store`` of ``--n`` images to a fresh copy of ``--store``, with and without them
(``prepare=None``, as before), interleaved over ``--rounds``, and counts the bytes each writes.

Usage::

    python benchmarks/bench_add_prepared.py --store /tmp/mednist --images ../shared/data/mednist/jpeg_sample \\
        --n 20 --rounds 3 --out benchmarks/results/store
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, log, one_thread, utc_stamp  # noqa: E402


def stored_bytes(store: Path) -> int:
    return sum(f.stat().st_size for f in (store / "data").iterdir())


def main() -> None:
    one_thread()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", type=Path, required=True, help="a store with an encoder (a pixel store)")
    ap.add_argument("--images", type=Path, required=True, help="a folder of class folders of images to add from")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/store"))
    args = ap.parse_args()
    import graphret.api.add as add

    work = Path(tempfile.mkdtemp(prefix="add-prepared-"))
    new = work / "new"
    for f in sorted(args.images.rglob("*.jpeg"))[: args.n]:
        (new / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, new / f.parent.name / f"added-{f.name}")
    sides = {"with the prepared tables (format 3)": add.prepared_tables, "without them (before)": None}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    written: dict[str, int] = {}
    load = load_average()
    for r in range(args.rounds):
        for name, prepare in sides.items():
            target = work / "store"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(args.store, target)
            add.prepared_tables = prepare
            before = stored_bytes(target)
            t0 = time.perf_counter()
            add.add_to_store(target, str(new), log=lambda m: None)
            seconds[name].append(time.perf_counter() - t0)
            written[name] = stored_bytes(target) - before
            log(f"round {r + 1}: {name}: {seconds[name][-1]:.2f} s, {written[name]:,} bytes")
    shutil.rmtree(work, ignore_errors=True)
    med = {name: statistics.median(v) for name, v in seconds.items()}
    result = {"store": str(args.store), "n": args.n, "rounds": args.rounds, "load_average_before": load,
              "load_average_after": load_average(), "seconds": seconds, "bytes_written": written}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "add_prepared.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# What the prepared tables cost an add ({utc_stamp()})", "",
             f"`add_to_store` of {args.n} images to a copy of `{args.store}`, median of {args.rounds} interleaved rounds, "
             f"load average {load} before, {result['load_average_after']} after.", "",
             "| add | seconds | bytes written |", "|---|---:|---:|"]
    lines += [f"| {name} | {med[name]:.2f} | {written[name]:,} |" for name in sides]
    (args.out / "add_prepared.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
