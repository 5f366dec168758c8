"""Peak memory of the build steps that held whole copies of 1M codes, before and after issue 17's
fixes, measured in isolation at n = 1,000,000, d = 128 (one process per measurement, VmHWM above
the process's footprint once its inputs are allocated):

* ``entry_points`` medoids: ``np.add.at`` on float64 copies of all codes (before) against sums and
  scores a block at a time (now);
* ``graph_from_knn``: (n k) int64 rows/keys and a lexsort (before) against the lists as CSR rows (now).

Run: ``python benchmarks/bench_scale_memory.py`` -> benchmarks/results/scale/memory.json and .md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from common import reset_peak, vm_mib  # one home: benchmarks/common.py

N, D, K, C = 1_000_000, 128, 10, 1000


def old_medoids(codes, labels):
    inside = np.flatnonzero(labels >= 0)
    uniq, dense = np.unique(labels[inside], return_inverse=True)
    sums = np.zeros((len(uniq), codes.shape[1]), np.float64)
    np.add.at(sums, dense, codes[inside])
    score = np.einsum("ij,ij->i", codes[inside], sums[dense].astype(np.float32))
    order = np.lexsort((inside, -score, dense))
    first = np.r_[True, dense[order][1:] != dense[order][:-1]]
    return inside[order[first]]


def old_graph_from_knn(indices, sims):
    import scipy.sparse as sp

    n, k = indices.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = indices.astype(np.int64).ravel()
    vals = sims.ravel()
    keep = (vals > 0) & np.isfinite(vals) & (rows != cols)
    rows, cols, vals = rows[keep], cols[keep], np.minimum(vals[keep], np.float32(1.0))
    key = rows * n + cols
    order = np.lexsort((-vals, key))
    key, rows, cols, vals = key[order], rows[order], cols[order], vals[order]
    first = np.ones(key.size, bool)
    first[1:] = key[1:] != key[:-1]
    A = sp.csr_matrix((vals[first], (rows[first], cols[first])), shape=(n, n), dtype=np.float32)
    G = sp.csr_matrix(A.maximum(A.T.tocsr()), dtype=np.float32)
    G.setdiag(0)
    G.eliminate_zeros()
    G.sort_indices()
    return G


def one(what: str) -> dict:
    rng = np.random.default_rng(0)
    if what.startswith("medoids"):
        codes = rng.standard_normal((N, D), dtype=np.float32)
        codes /= np.linalg.norm(codes, axis=1, keepdims=True)
        labels = rng.integers(0, C, N)
        from graphret.graph.search_graph import _medoids

        reset_peak()
        base = vm_mib("VmRSS")
        out = old_medoids(codes, labels) if what == "medoids_before" else _medoids(codes, labels)
    else:
        idx = (np.arange(N)[:, None] + rng.integers(1, 5000, (N, K))) % N  # local random lists, no self
        sims = rng.random((N, K), dtype=np.float32)
        from graphret.graph.build import graph_from_knn

        reset_peak()
        base = vm_mib("VmRSS")
        out = old_graph_from_knn(idx, sims) if what == "graph_before" else graph_from_knn(idx, sims)
    return {"what": what, "inputs_mib": round(base, 1), "peak_mib": round(vm_mib("VmHWM"), 1), "above_inputs_mib": round(vm_mib("VmHWM") - base, 1),
            "check": int(out.shape[0]) if hasattr(out, "shape") else None}


STEPS = ("medoids_before", "medoids_now", "graph_before", "graph_now")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=STEPS, help="measure this one step in this process (the run spawns one per step)")
    args = parser.parse_args()
    if args.what:
        print("RESULT " + json.dumps(one(args.what)), flush=True)
        return
    rows = []
    for what in STEPS:
        out = subprocess.run([sys.executable, __file__, what], capture_output=True, text=True).stdout
        rows.append(json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:]))
        print(rows[-1], flush=True)
    out = Path(__file__).resolve().parent / "results" / "scale"
    (out / "memory.json").write_text(json.dumps(rows, indent=1))
    lines = ["# Memory of two build steps at 1M codes, before and after issue 17's fixes", "",
             f"n = {N:,}, d = {D}, k = {K}, {C} communities; VmHWM of one process per row, above its resident memory (VmRSS) once the inputs are allocated (the codes, "
             "or the kNN lists).  Command: `python benchmarks/bench_scale_memory.py`.", "",
             "| step | inputs MiB | peak above inputs MiB |", "|---|---:|---:|"]
    lines += [f"| {r['what']} | {r['inputs_mib']:.0f} | {r['above_inputs_mib']:.0f} |" for r in rows]
    (out / "memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
