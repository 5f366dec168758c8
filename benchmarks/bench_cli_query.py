"""Benchmark: ``graphret query STORE --id X`` from a fresh process, and what its wall time is
made of (issue 25, deliverable 5: <= 0.5 s on a pixel store).

A query of a few ids runs the search kernels as Python (``graphret.kernels.jit.interpreted``),
so the command imports neither numba nor scipy.  Each round runs, in fresh Python processes and
interleaved (so that the shared machine's load falls on all of them alike):

* **floors**: ``python -c pass``; ``import numpy``; ``import numpy, pyarrow, click``; the
  modules the command imports (``graphret.cli.main`` and ``graphret.cli.query``);
  for contrast, ``import numba`` and ``import numba`` then numba's target-context refresh (what
  numba runs before it loads *any* cached kernel: every numba implementation module and
  ``scipy.linalg``), which a search through the compiled kernels pays first;
* **end to end**: ``graphret query STORE --id X`` (the console script's Python), and the same
  with nine ids (more than ``INTERPRETED_QUERIES``: the compiled kernels); with ``--image FILE``
  also ``graphret query STORE --image FILE`` (the pixel encoder's file read without torch:
  ``graphret.encoders.arrays_file``) and, with ``--before CLI`` (the console script of a checkout
  without that change), the same query read by torch, for contrast;
* **phases**: one process that times, in order, the imports, opening the store, the searcher,
  its walk inputs, the region graph, the first and second search as Python, rendering, then
  the first search through the compiled kernels (numba's import, refresh and cache load).

Each figure is the median over ``--rounds``, in milliseconds; the load average is recorded
before and after.

**Fresh processes against the store's size** (``--sizes NAME=STORE[:BEFORE] ...``, e.g. the
generated stores of ``bench_query_cost.py`` at 10k, 100k and 1M and the MedNIST pixel store;
issue 25.1): per store, interleaved, ``graphret query STORE --id X`` as shipped (prepared tables
mapped, checksums remembered: ``graphret.store.prepared``, ``graphret.store.verified``); the
same with remembering off (``GRAPHRET_CACHE_DIR=""``: every fragment hashed); on ``BEFORE``, the
same store written without prepared tables (format 2: the CSR, walk lists and totals built from
the edges in the process), with remembering off (what every process paid before); and
``graphret.open(STORE).search([X])`` from Python in a fresh process (the compiled kernels: numba's
import and cached kernels).  Checks are remembered in ``--cache`` (warmed first).

Usage::

    graphret build-graph ../shared/data/mednist/mednist_64.npz -o /tmp/mednist --encoder pixels
    python benchmarks/bench_cli_query.py --store /tmp/mednist --id Hand/008821 \
        --image ../shared/data/mednist/jpeg_sample/Hand/000063.jpeg --before /work/main/.venv/bin/graphret \
        --out benchmarks/results/cli_query
    python benchmarks/bench_cli_query.py --sizes 10k=/tmp/qc/codes-10000:/tmp/qc2/codes-10000 ... \
        --size-ids 10k=123 --rounds 5 --out benchmarks/results/cli_query
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, log, machine, one_thread, utc_stamp  # noqa: E402

FLOORS = {
    "python -c pass": "pass",
    "import numpy": "import numpy",
    "import numpy, pyarrow, click": "import numpy, pyarrow, click",
    "import the command's modules (graphret.cli.main, .query)": "import graphret.cli.main, graphret.cli.query",
    "import numba": "import numba",
    "import numba + refresh (before any cached kernel loads)":
        "import numba\nfrom numba.core.registry import cpu_target\ncpu_target.target_context.refresh()",
}
COMMAND = "graphret query STORE --id X"
COMPILED = "graphret query STORE --id X (9 ids: compiled kernels)"
IMAGE = "graphret query STORE --image FILE (pixel store)"
BEFORE = "for contrast: the same query by image before (--before: the encoder file read by torch)"

PHASES = r'''
import sys, time, json
marks = [("start", time.perf_counter())]
def mark(name): marks.append((name, time.perf_counter()))
import numpy; mark("import numpy")
import pyarrow, click; mark("import pyarrow, click")
from graphret.kernels.jit import interpreted
from graphret.query.config import SearchConfig
from graphret.query.searcher import Searcher, search_store
from graphret.store.read import open_store
from graphret.query.output import render_bytes
mark("import graphret's query modules")
snapshot = open_store(sys.argv[1]); mark("open the store (manifest, checksums)")
searcher = Searcher(snapshot); mark("Searcher (archive rows, codes)")
searcher.index.walk_base; mark("walk inputs (walk lists as CSR)")
searcher.index.region; mark("region graph (graph, communities, totals)")
def one():
    return search_store(snapshot, lambda **index: searcher, [sys.argv[2]], kind="ids", config=SearchConfig())
with interpreted():
    result = one(); mark("first search (kernels as Python)")
    one(); mark("second search (kernels as Python)")
render_bytes(result, fmt="table"); mark("render the table")
assert "numba" not in sys.modules and "scipy" not in sys.modules, "the path imported numba or scipy"
one(); mark("for contrast: first compiled search (numba's import, refresh, cached kernels)")
one(); mark("second compiled search")
print(json.dumps([(b[0], 1000 * (b[1] - a[1])) for a, b in zip(marks, marks[1:])]))
'''


def wall_ms(argv: list[str], cpu: list[float] | None = None, env: dict | None = None) -> float:
    """Wall milliseconds of one fresh process (its output discarded; a failure stops the run);
    its CPU milliseconds (user + system, which waiting for a busy core does not add to) are
    appended to ``cpu``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = 1000 * (time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.strip().splitlines()[-1:]}")
    if cpu is not None:
        cpu.append(1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    return wall


SIZE_PATHS = {
    "query --id (shipped)": lambda cli, store, before, item: [cli, "query", store, "--id", item],
    "query --id, remembering off (every fragment hashed)": lambda cli, store, before, item: [cli, "query", store, "--id", item],
    "query --id on the store without prepared tables, remembering off (before)":
        lambda cli, store, before, item: [cli, "query", before, "--id", item] if before else None,
    "graphret.open(STORE).search([X]) (compiled kernels)":
        lambda cli, store, before, item: [str(Path(cli).with_name("python")), "-c",
                                          f"import graphret; graphret.open({store!r}).search([{item!r}], k=10)"],
}
UNREMEMBERED = ("off", "before")


def fresh_sizes(args) -> None:
    """The fresh-process table against the store's size (see the module docstring)."""
    import os

    cli = str(Path(sys.executable).with_name("graphret"))
    stores = []
    for spec in args.sizes:
        name, _, paths = spec.partition("=")
        store, _, before = paths.partition(":")
        stores.append((name, store, before or None, dict(i.split("=", 1) for i in args.size_ids).get(name, "0")))
    env_on = {**os.environ, "GRAPHRET_CACHE_DIR": str(args.cache)}
    env_off = {**os.environ, "GRAPHRET_CACHE_DIR": ""}
    runs = {(name, path): (argv, env_off if any(w in path for w in UNREMEMBERED) else env_on)
            for name, store, before, item in stores for path, make in SIZE_PATHS.items()
            if (argv := make(cli, store, before, item)) is not None}
    for argv, env in runs.values():  # warm: page cache, numba's cache, the remembered checks
        wall_ms(argv, env=env), wall_ms(argv, env=env)
    load_before = load_average()
    wall: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in runs}
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}")
        for key, (argv, env) in runs.items():
            wall[key].append(wall_ms(argv, cpu[key], env=env))
    med = {key: statistics.median(v) for key, v in wall.items()}
    cpu_med = {key: statistics.median(v) for key, v in cpu.items()}
    result = {"machine": machine("numba", "pyarrow"), "stores": stores, "rounds": args.rounds, "load_average_before": load_before,
              "load_average_after": load_average(), "wall_ms_all": {f"{n} | {p}": v for (n, p), v in wall.items()},
              "cpu_ms_all": {f"{n} | {p}": v for (n, p), v in cpu.items()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fresh_process.json").write_text(json.dumps(result, indent=1) + "\n")
    names = [s[0] for s in stores]
    lines = [f"# One query from a fresh process against the store's size ({utc_stamp()})", "",
             f"Median of {args.rounds} interleaved rounds, wall ms (CPU ms = user + system); load average {load_before} "
             f"before, {result['load_average_after']} after. Stores: " + "; ".join(f"{n} `{s}` (id `{i}`)" + (f", before: `{b}`" if b else "")
                                                                             for n, s, b, i in stores) + ".", "",
             "| process | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for path in SIZE_PATHS:
        cells = [f"{med[(n, path)]:,.0f} ({cpu_med[(n, path)]:,.0f})" if (n, path) in med else "" for n in names]
        lines.append(f"| {path} | " + " | ".join(cells) + " |")
    first, last = names[0], names[-1]
    shipped = "query --id (shipped)"
    lines += ["", "Ratios in the same rounds: " + "; ".join(
        f"{path.split(' (')[0] if path != shipped else 'shipped'} {n} / {first}: {med[(n, path)] / med[(first, path)]:.2f}"
        for path in SIZE_PATHS for n in names[1:] if (n, path) in med and (first, path) in med)]
    lines += ["", f"Shipped against before, per store: " + "; ".join(
        f"{n} {med[(n, p)] / med[(n, shipped)]:.1f}x" for n in names
        for p in [k for k in SIZE_PATHS if 'before' in k] if (n, p) in med)]
    (args.out / "fresh_process.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    one_thread()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", help="a pixel store (graphret build-graph ... --encoder pixels)")
    ap.add_argument("--id", help="a stored item id to query by")
    ap.add_argument("--sizes", nargs="+", help="NAME=STORE[:BEFORE]: the fresh-process table against the store's size "
                                               "(BEFORE: the same store without prepared tables)")
    ap.add_argument("--size-ids", nargs="*", default=[], help="NAME=ID: the id queried in each --sizes store (default 0)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/graphret-bench-cache"), help="where --sizes runs remember checks")
    ap.add_argument("--image", help="an image file to query the (pixel) store by, e.g. a MedNIST JPEG")
    ap.add_argument("--before", help="with --image: the graphret console script of a checkout before the change")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/cli_query"))
    args = ap.parse_args()
    if args.sizes:
        return fresh_sizes(args)
    if not args.store or not args.id:
        ap.error("give --store and --id (or --sizes)")
    py = sys.executable
    cli = str(Path(py).with_name("graphret"))
    env_load = load_average()
    timings: dict[str, list[float]] = {name: [] for name in [*FLOORS, COMMAND, COMPILED, *([IMAGE] if args.image else []), *([BEFORE] if args.image and args.before else [])]}
    cpu: dict[str, list[float]] = {name: [] for name in timings}
    phases: dict[str, list[float]] = {}
    single = [cli, "query", args.store, "--id", args.id]
    nine = single + [arg for _ in range(8) for arg in ("--id", args.id)]
    by_image = [cli, "query", args.store, "--image", args.image] if args.image else None
    wall_ms(single), wall_ms(nine)  # the files in the page cache, the kernels in numba's cache
    before = [args.before, *by_image[1:]] if by_image and args.before else None
    for argv in (by_image, before):
        if argv:
            wall_ms(argv)
    for r in range(args.rounds):
        log(f"round {r + 1}/{args.rounds}")
        for name, code in FLOORS.items():
            timings[name].append(wall_ms([py, "-c", code], cpu[name]))
        timings[COMMAND].append(wall_ms(single, cpu[COMMAND]))
        timings[COMPILED].append(wall_ms(nine, cpu[COMPILED]))
        if by_image:
            timings[IMAGE].append(wall_ms(by_image, cpu[IMAGE]))
        if before:
            timings[BEFORE].append(wall_ms(before, cpu[BEFORE]))
        done = subprocess.run([py, "-c", PHASES, args.store, args.id], capture_output=True, text=True, check=True)
        for name, ms in json.loads(done.stdout.strip().splitlines()[-1]):
            phases.setdefault(name, []).append(ms)
    med = {name: round(statistics.median(v), 1) for name, v in timings.items()}
    cpu_med = {name: round(statistics.median(v), 1) for name, v in cpu.items()}
    phase_med = {name: round(statistics.median(v), 1) for name, v in phases.items()}
    result = {
        "machine": machine("numba", "pyarrow", "scipy"), "store": args.store, "id": args.id, "image": args.image, "before": args.before, "rounds": args.rounds,
        "load_average_before": env_load, "load_average_after": load_average(), "goal_ms": 500,
        "wall_ms_median": med, "cpu_ms_median": cpu_med, "phases_ms_median": phase_med, "wall_ms_all": timings,
        "cpu_ms_all": cpu,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli_query.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# `graphret query STORE --id X` from a fresh process ({utc_stamp()})", "",
             f"Store `{args.store}`, id `{args.id}`, median of {args.rounds} interleaved rounds, load average "
             f"{env_load} before, {result['load_average_after']} after. Goal: <= 500 ms wall.", "",
             "| process | wall ms | CPU ms (user + system) |", "|---|---:|---:|"]
    lines += [f"| {name} | {ms:,.1f} | {cpu_med[name]:,.1f} |" for name, ms in med.items()]
    lines += ["", "Phases inside one process (each after the one above):", "", "| phase | ms |", "|---|---:|"]
    lines += [f"| {name} | {ms:,.1f} |" for name, ms in phase_med.items()]
    lines += ["", f"The command: {med[COMMAND]:,.0f} ms, {'within' if med[COMMAND] <= 500 else 'above'} the 500 ms goal; "
                  f"{med[COMMAND] / med['python -c pass']:.1f}x `python -c pass` and "
                  f"{med[COMMAND] / med['import numpy, pyarrow, click']:.2f}x `import numpy, pyarrow, click` in the same "
                  f"rounds. With the compiled kernels (nine ids) it takes {med[COMPILED]:,.0f} ms. CPU: {cpu_med[COMMAND]:,.0f} ms "
                  f"against {cpu_med[COMPILED]:,.0f} ms compiled."]
    if args.image:
        lines += ["", f"By image (`{args.image}`): {med[IMAGE]:,.0f} ms wall, {cpu_med[IMAGE]:,.0f} ms CPU; "
                      f"{med[IMAGE] / med['import numpy, pyarrow, click']:.2f}x `import numpy, pyarrow, click` and "
                      f"{med[IMAGE] / med[COMMAND]:.2f}x the query by id in the same rounds"
                      + (f"; before (`{args.before}`): {med[BEFORE]:,.0f} ms wall, {cpu_med[BEFORE]:,.0f} ms CPU "
                         f"({med[BEFORE] / med[IMAGE]:.1f}x)." if before else ".")]
    (args.out / "cli_query.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
