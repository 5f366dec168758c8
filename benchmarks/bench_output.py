"""Benchmark: writing a batch of query results (issue 25, deliverable 6).

``graphret query STORE --split test --k 50`` on MedNIST (17,686 queries, 884,300 results):
in one process, the search (region and flat) and then each output format, timed apart, in
results written per second -- JSON, CSV and Parquet from the Arrow result table
(:mod:`graphret.query.output`), beside the per-result Python path they replace
(``SearchResult.to_dict`` then ``json.dumps(indent=2)`` / the csv module), measured in the
same run; and the command end to end (``graphret query ... -o FILE``, wall seconds, fresh
processes, region and flat interleaved), each step of it timed by ``cli_phases.py``, so the
region/flat ratio a user sees can be set beside the search's own and its ceiling.

Usage::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_output.py --store /tmp/mednist-store --no-legacy \
        [--before /tmp/old-checkout] --out benchmarks/results/output
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, load_average, timed, utc_stamp  # noqa: E402 - benchmarks/ is on the path of a script run from it


def legacy_json(result) -> bytes:
    return json.dumps(result.to_dict(), indent=2).encode()


def legacy_csv(result) -> bytes:
    from graphret.store.read import label_text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for entry in result.to_dict()["queries"]:
        query = entry["query"]
        for hit in entry["results"]:
            writer.writerow([query["id"] or "", label_text(query["label"]), query["path"] or "", hit["rank"], hit["id"],
                             f"{hit['score']:.6f}", label_text(hit["label"]), "" if hit["community"] is None else hit["community"],
                             hit["path"] or "", f"{entry['scanned_fraction']:.6f}"])
    return out.getvalue().encode()


#: the steps of a fresh `graphret query` process that cli_phases.py times, in order
PHASES = ["start", "imports", "numba", "open store", "searcher", "queries", "search", "render", "write", "other"]


def cli_run(store: str, split: str, k: int, mode: str, fmt: str, target: Path) -> dict:
    """One fresh `graphret query ... -o target` process through cli_phases.py: its wall and
    CPU seconds and those of each step (``start``: the interpreter's own start and exit, outside
    the script; ``other``: the script's time outside the timed steps)."""
    command = [sys.executable, str(ROOT / "benchmarks" / "cli_phases.py"), "query", store, "--split", split, "--k", str(k),
               "--mode", mode, "--format", fmt, "-o", str(target)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done, wall = timed(lambda: subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    spent = json.loads(done.stdout.strip().splitlines()[-1])
    run = {"wall": round(wall, 3), "cpu": round(cpu, 3)}
    for kind, total in (("wall", wall), ("cpu", cpu)):
        steps = dict(spent[kind])
        script = steps.pop("script")
        steps = {"start": total - script, **steps, "other": script - sum(steps.values())}
        run[f"{kind}_steps"] = {name: round(steps.get(name, 0.0), 3) for name in PHASES}
    return run


#: runs `graphret` from another checkout (argv: the checkout, then the command line): its
#: graphret package first on the path, and its cli/ folder as graphret.cli, as an editable
#: install of that checkout would map them
BEFORE_RUNNER = """import importlib.util, sys
root = sys.argv[1]
sys.path.insert(0, root)
spec = importlib.util.spec_from_file_location("graphret.cli", root + "/cli/__init__.py", submodule_search_locations=[root + "/cli"])
sys.modules["graphret.cli"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sys.modules["graphret.cli"])
import graphret
assert graphret.__file__.startswith(root), graphret.__file__
from graphret.cli import main as console
sys.argv = ["graphret", *sys.argv[2:]]
console.run()
"""


def before_run(checkout: Path, store: str, split: str, k: int, mode: str, fmt: str, target: Path) -> dict:
    """The same command run by the graphret of another checkout (the code before a change):
    its wall and CPU seconds."""
    command = [sys.executable, "-c", BEFORE_RUNNER, str(checkout), "query", store, "--split", split, "--k", str(k),
               "--mode", mode, "--format", fmt, "-o", str(target)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    _, wall = timed(lambda: subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": round(wall, 3), "cpu": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process rounds (region and flat interleaved)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--before", type=Path, default=None,
                        help="a checkout of graphret before a change (git worktree add DIR COMMIT): its `graphret query` "
                             "runs in the same rounds (JSON), for a before/after under the same load")
    parser.add_argument("--no-legacy", action="store_true", help="skip the per-result Python path (slow)")
    args = parser.parse_args()
    load_before = load_average()

    import graphret
    from graphret.query import output

    store = graphret.open(args.store)
    rows = []
    for mode in ("region", "flat"):
        store.search(args.split, k=args.k, mode=mode)  # warm: index, kernels
        result, search_s = timed(lambda: store.search(args.split, k=args.k, mode=mode))
        n = result.rows.size
        row = {"mode": mode, "queries": len(result), "results": n, "search_s": round(search_s, 3)}
        # the first JSON of the mode (of the process, for region: imports, the items' columns), then each format warm
        _, row["json_first_s"] = timed(lambda: output.render_bytes(result, fmt="json"), digits=3)
        for fmt in ("json", "csv", "parquet"):
            data, seconds = timed(lambda: output.render_bytes(result, fmt=fmt))
            row[fmt] = {"seconds": round(seconds, 3), "results_per_s": round(n / seconds), "mb": round(len(data) / 1e6, 1)}
        if not args.no_legacy and mode == "region":
            for fmt, call in (("json", legacy_json), ("csv", legacy_csv)):
                data, seconds = timed(lambda: call(result))
                row[f"legacy_{fmt}"] = {"seconds": round(seconds, 3), "results_per_s": round(n / seconds), "mb": round(len(data) / 1e6, 1)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    runs: dict[str, list[dict]] = {}
    before_runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for fmt in ("json", "parquet"):
                for mode in ("region", "flat"):
                    run = cli_run(args.store, args.split, args.k, mode, fmt, Path(tmp) / f"out.{fmt}")
                    runs.setdefault(f"{mode}_{fmt}", []).append(run)
                    print(mode, fmt, json.dumps(run), file=sys.stderr, flush=True)
                    if args.before and fmt == "json":
                        run = before_run(args.before, args.store, args.split, args.k, mode, fmt, Path(tmp) / f"before.{fmt}")
                        before_runs.setdefault(mode, []).append(run)
                        print("before", mode, fmt, json.dumps(run), file=sys.stderr, flush=True)
    median = {key: sorted(found, key=lambda r: r["wall"])[len(found) // 2] for key, found in runs.items()}
    cli = {key: round(run["wall"], 2) for key, run in median.items()}
    cli_cpu = {key: round(sorted(r["cpu"] for r in found)[len(found) // 2], 2) for key, found in runs.items()}
    by_mode = {r["mode"]: r for r in rows}
    ceiling = (by_mode["flat"]["search_s"] + by_mode["flat"]["json"]["seconds"]) / (by_mode["region"]["search_s"] + by_mode["region"]["json"]["seconds"])
    result = {"date": utc_stamp(), "load": load_before, "load_after": load_average(), "threads": {name: os.environ.get(name) for name in THREAD_VARIABLES},
              "store": args.store, "items": len(store), "k": args.k, "rows": rows, "cli_wall_s": cli, "cli_cpu_s": cli_cpu,
              "cli_runs": runs, "cli_median_steps": {key: {"wall": run["wall_steps"], "cpu": run["cpu_steps"]} for key, run in median.items()},
              "ceiling_flat_over_region_json": round(ceiling, 2),
              "before": {"checkout": str(args.before), "runs": before_runs,
                         "median": {mode: {kind: round(sorted(r[kind] for r in found)[len(found) // 2], 2) for kind in ("wall", "cpu")}
                                    for mode, found in before_runs.items()}} if args.before else None,
              "command": "python benchmarks/bench_output.py " + " ".join(sys.argv[1:])}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "output.json").write_text(json.dumps(result, indent=2) + "\n")
        (args.out / "output.md").write_text(report(result, args) + "\n")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def report(result: dict, args: argparse.Namespace) -> str:
    """The results file: the in-process table, the fresh-process walls and their steps."""
    rows, cli, steps = result["rows"], result["cli_wall_s"], result["cli_median_steps"]
    threads = ", ".join(f"{name}={value}" for name, value in result["threads"].items() if value) or "threads as the machine gives"
    lines = ["# Writing a batch of query results (issue 25.6)", "",
             f"{result['date']}, 2 shared cores (load average {', '.join(map(str, result['load']))} before, "
             f"{', '.join(map(str, result['load_after']))} after; {threads}).  Store: {args.store} "
             f"({result['items']:,} items).  `--split {args.split} --k {args.k}`.  Command: `{result['command']}`.", "",
             "In one process, the search warm, then the first JSON of each mode (region's is the process's first: "
             "pyarrow.compute's import, the items' columns), then each format:", "",
             "| mode | queries | results | search s | first json s | json s (results/s, MB) | csv s (results/s, MB) | parquet s (results/s, MB) |",
             "|---|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        cells = [f"{r[f]['seconds']} ({r[f]['results_per_s']:,}, {r[f]['mb']})" for f in ("json", "csv", "parquet")]
        lines.append(f"| {r['mode']} | {r['queries']:,} | {r['results']:,} | {r['search_s']} | {r['json_first_s']} | " + " | ".join(cells) + " |")
    legacy = rows[0]
    if "legacy_json" in legacy:
        lines += ["", "The per-result Python path these replace, same run, region results: "
                      f"JSON {legacy['legacy_json']['seconds']} s ({legacy['legacy_json']['results_per_s']:,} results/s), "
                      f"CSV {legacy['legacy_csv']['seconds']} s ({legacy['legacy_csv']['results_per_s']:,} results/s)."]
    rounds = len(next(iter(result["cli_runs"].values())))
    cpu = result["cli_cpu_s"]
    lines += ["", f"End to end, `graphret query ... -o FILE` in a fresh process (median of {rounds} rounds, region and flat "
                  "interleaved, wall seconds and CPU seconds (user + system); run through benchmarks/cli_phases.py, which times "
                  "the command's steps):", "",
              "| mode | json wall | json CPU | parquet wall | parquet CPU |", "|---|---:|---:|---:|---:|"]
    for mode in ("region", "flat"):
        lines.append(f"| {mode} | {cli[f'{mode}_json']} | {cpu[f'{mode}_json']} | {cli[f'{mode}_parquet']} | {cpu[f'{mode}_parquet']} |")
    lines.append(f"| flat / region | {cli['flat_json'] / cli['region_json']:.2f} | {cpu['flat_json'] / cpu['region_json']:.2f} | "
                 f"{cli['flat_parquet'] / cli['region_parquet']:.2f} | {cpu['flat_parquet'] / cpu['region_parquet']:.2f} |")
    if result.get("before"):
        was = result["before"]["median"]
        lines += ["", f"The same JSON command by the code before the change ({result['before']['checkout']}), in the same rounds:", "",
                  "| mode | before wall | before CPU | now wall | now CPU |", "|---|---:|---:|---:|---:|"]
        for mode in ("region", "flat"):
            lines.append(f"| {mode} | {was[mode]['wall']} | {was[mode]['cpu']} | {cli[f'{mode}_json']} | {cpu[f'{mode}_json']} |")
        lines.append(f"| flat / region | {was['flat']['wall'] / was['region']['wall']:.2f} | {was['flat']['cpu'] / was['region']['cpu']:.2f} | "
                     f"{cli['flat_json'] / cli['region_json']:.2f} | {cpu['flat_json'] / cpu['region_json']:.2f} |")
    lines += ["", f"Ceiling of the JSON ratio with nothing but the search and the output (in-process figures above): "
                  f"(flat search + flat json) / (region search + region json) = {result['ceiling_flat_over_region_json']}.", "",
              "Steps of the median JSON run (start = the interpreter's start and exit; numba = its import and the target "
              "preparation any compiled kernel's load runs first; search includes loading the kernels and the layout; "
              "write includes the fsync):", "",
              "| mode | seconds | total | " + " | ".join(PHASES) + " |", "|---|---|" + "---:|" * (len(PHASES) + 1)]
    for mode in ("region", "flat"):
        for kind, total in (("wall", cli), ("cpu", cpu)):
            step = steps[f"{mode}_json"][kind]
            lines.append(f"| {mode} | {kind} | {total[f'{mode}_json']} | " + " | ".join(str(step[name]) for name in PHASES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
