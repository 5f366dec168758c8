"""Retrieval quality of the graph rankings through the product path (issue 13's quality goal).

For each real set and encoder, a store is built with ``graphret.build`` (defaults: k = 10, CNM
with its size heuristic and multilevel refinement, walk lists), then the test split is searched
against the archive with ``Store.search`` in each mode and ranking.  Relevance: same class
(multi-class) or Haq et al.'s exact label-set match (the NIH chest X-rays, split by patient).

Goal (issue 13): the default graph ranking's P@50 >= flat's - 0.005 on every set and >= flat's
+ 0.01 on at least two; the graph ranking becomes the default only if it meets this.

    python benchmarks/bench_rank_quality.py --stores /tmp/rank-stores --out benchmarks/results/graph_search
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


from shared_data import NIH_CSV
from shared_data import SETS as SINGLE_LABEL_SETS

K = 50

#: key -> (display name, source): the guide's five sets and the NIH chest X-rays
SETS: dict[str, tuple[str, Path]] = {**SINGLE_LABEL_SETS, "nih": ("NIH chest X-rays (1,000, patient split)", NIH_CSV)}
#: name -> build options (the small CNN is graphret's default encoder)
ENCODERS: dict[str, dict[str, Any]] = {
    "pixels": {"encoder": "pixels"},
    "cnn-small": {"encoder": "cnn", "backbone": "small", "work": 60.0, "threads": 1},
}
#: column -> Store.search options
VARIANTS: dict[str, dict[str, Any]] = {
    "flat": {"mode": "flat"},
    "graph": {"mode": "graph"},
    "region (gain order)": {"mode": "region"},
    "flat + smoothed": {"mode": "flat", "rank": "smoothed"},
    "flat + manifold": {"mode": "flat", "rank": "manifold"},
    "graph + smoothed": {"mode": "graph", "rank": "smoothed"},
    "graph + manifold": {"mode": "graph", "rank": "manifold"},
}


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def build(set_name: str, encoder: str, stores: Path):
    import graphret

    path = stores / f"{set_name}-{encoder}"
    if path.is_dir():
        log(f"reusing {path}")
        return graphret.open(path), None
    t0 = time.perf_counter()
    store = graphret.build(str(SETS[set_name][1]), path, seed=0, log=log, **ENCODERS[encoder])
    return store, time.perf_counter() - t0


def precision(store, result) -> float:
    from graphret.metrics.retrieval import precision_at_k, relevance

    labels = store.snapshot.labels
    rel = relevance(labels[result.queries.rows], labels[result.rows], mode="same")
    return precision_at_k(rel, K)


def measure(set_name: str, encoder: str, stores: Path) -> dict[str, Any]:
    store, seconds = build(set_name, encoder, stores)
    row: dict[str, Any] = {"set": SETS[set_name][0], "encoder": encoder, "items": len(store),
                           "build s": None if seconds is None else round(seconds, 1)}
    for name, options in VARIANTS.items():
        t0 = time.perf_counter()
        result = store.search("test", k=K, **options)
        row[name] = round(precision(store, result), 4)
        row[f"{name} s"] = round(time.perf_counter() - t0, 2)
        log(f"{set_name} {encoder} {name}: P@{K} {row[name]}")
    row["queries"] = int(len(result.queries))
    return row


def markdown(rows: list[dict[str, Any]], header: str) -> str:
    cols = list(VARIANTS)
    lines = [header, "", "| set | encoder | queries | " + " | ".join(cols) + " | best graph ranking - flat |",
             "|---|---|---:|" + "---:|" * len(cols) + "---:|"]
    for r in rows:
        best = max(r[c] for c in cols if "+" in c)
        lines.append(f"| {r['set']} | {r['encoder']} | {r['queries']:,} | " + " | ".join(f"{r[c]:.4f}" for c in cols)
                     + f" | {best - r['flat']:+.4f} |")
    lines.append("")
    for ranking in (c for c in cols if "+" in c):
        deltas = [r[ranking] - r["flat"] for r in rows]
        lines.append(f"* {ranking}: worst {min(deltas):+.4f}, sets at >= flat + 0.01: {sum(d >= 0.01 for d in deltas)} of {len(rows)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=Path, required=True, help="folder of the stores (reused when present)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--encoders", nargs="*", default=list(ENCODERS))
    args = parser.parse_args()
    args.stores.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for set_name in args.sets:
        for encoder in args.encoders:
            rows.append(measure(set_name, encoder, args.stores))
            (args.out / "rank_quality.json").write_text(json.dumps(rows, indent=1))
    header = (f"# Graph rankings through `Store.search`: P@{K}, test split against the archive\n\n"
              f"Run {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')} on {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores (shared).  Stores built by `graphret.build` with the defaults and the encoder named "
              f"(cnn-small: graphret's default encoder).  Relevance: same class; NIH: exact label set.  Command: "
              f"`python benchmarks/bench_rank_quality.py {' '.join(sys.argv[1:])}`.")
    (args.out / "rank_quality.md").write_text(markdown(rows, header))
    print(markdown(rows, header))


if __name__ == "__main__":
    main()
