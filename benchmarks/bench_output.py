"""Benchmark: writing a batch of query results (issue 25, deliverable 6).

``graphret query STORE --split test --k 50`` on MedNIST (17,686 queries, 884,300 results):
in one process, the search (region and flat) and then each output format, timed apart, in
results written per second -- JSON, CSV and Parquet from the Arrow result table
(:mod:`graphret.query.output`), beside the per-result Python path they replace
(``SearchResult.to_dict`` then ``json.dumps(indent=2)`` / the csv module), measured in the
same run; and the command end to end (``graphret query ... -o FILE``, wall seconds), region
and flat, so the region/flat ratio a user sees can be set beside the search's own.

Usage::

    python benchmarks/bench_output.py --store /tmp/mednist-store --out benchmarks/results/output
"""

from __future__ import annotations

import argparse
import csv
import io
import json
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-legacy", action="store_true", help="skip the per-result Python path (slow)")
    args = parser.parse_args()

    import graphret
    from graphret.query import output

    store = graphret.open(args.store)
    rows = []
    for mode in ("region", "flat"):
        store.search(args.split, k=args.k, mode=mode)  # warm: index, kernels
        result, search_s = timed(lambda: store.search(args.split, k=args.k, mode=mode))
        n = result.rows.size
        output.item_columns(store.snapshot)  # prepared once per version (timed apart below)
        row = {"mode": mode, "queries": len(result), "results": n, "search_s": round(search_s, 3)}
        for fmt in ("json", "csv", "parquet"):
            data, seconds = timed(lambda: output.render_bytes(result, fmt=fmt))
            row[fmt] = {"seconds": round(seconds, 3), "results_per_s": round(n / seconds), "mb": round(len(data) / 1e6, 1)}
        if not args.no_legacy and mode == "region":
            for fmt, call in (("json", legacy_json), ("csv", legacy_csv)):
                data, seconds = timed(lambda: call(result))
                row[f"legacy_{fmt}"] = {"seconds": round(seconds, 3), "results_per_s": round(n / seconds), "mb": round(len(data) / 1e6, 1)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    cli = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("region", "flat"):
            for fmt in ("json", "parquet"):
                target = Path(tmp) / f"out.{fmt}"
                command = [sys.executable, "-m", "graphret.cli.main", "query", args.store, "--split", args.split, "--k", str(args.k),
                           "--mode", mode, "--format", fmt, "-o", str(target)]
                _, seconds = timed(lambda: subprocess.run(command, check=True, cwd=ROOT))
                cli[f"{mode}_{fmt}"] = round(seconds, 2)
                print(mode, fmt, seconds, file=sys.stderr, flush=True)
    result = {"date": utc_stamp(), "load": load_average(),
              "store": args.store, "items": len(store), "k": args.k, "rows": rows, "cli_wall_s": cli,
              "command": "python benchmarks/bench_output.py " + " ".join(sys.argv[1:])}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "output.json").write_text(json.dumps(result, indent=2) + "\n")
        lines = ["# Writing a batch of query results (issue 25.6)", "",
                 f"{result['date']}, 2 shared cores (load average {', '.join(map(str, result['load']))}).  Store: {args.store} "
                 f"({len(store):,} items).  `--split {args.split} --k {args.k}`.  Command: `{result['command']}`.", "",
                 "| mode | queries | results | search s | json s (results/s, MB) | csv s (results/s, MB) | parquet s (results/s, MB) |",
                 "|---|---:|---:|---:|---|---|---|"]
        for r in rows:
            cells = [f"{r[f]['seconds']} ({r[f]['results_per_s']:,}, {r[f]['mb']})" for f in ("json", "csv", "parquet")]
            lines.append(f"| {r['mode']} | {r['queries']:,} | {r['results']:,} | {r['search_s']} | " + " | ".join(cells) + " |")
        legacy = rows[0]
        if "legacy_json" in legacy:
            lines += ["", "The per-result Python path these replace, same run, region results: "
                          f"JSON {legacy['legacy_json']['seconds']} s ({legacy['legacy_json']['results_per_s']:,} results/s), "
                          f"CSV {legacy['legacy_csv']['seconds']} s ({legacy['legacy_csv']['results_per_s']:,} results/s)."]
        lines += ["", "End to end, `graphret query ... -o FILE` (wall seconds, a fresh process: imports, opening the store, "
                      "the index, the search, the file):", "",
                  "| mode | json | parquet |", "|---|---:|---:|"]
        for mode in ("region", "flat"):
            lines.append(f"| {mode} | {cli[f'{mode}_json']} | {cli[f'{mode}_parquet']} |")
        lines.append(f"| flat / region | {cli['flat_json'] / cli['region_json']:.2f} | {cli['flat_parquet'] / cli['region_parquet']:.2f} |")
        (args.out / "output.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
