"""Benchmark: kNN graph construction and community detection (graphret issue 4).

For generated clustered codes (Gaussian mixture on the unit sphere, d = 64, seeded) at each
``--sizes`` n and for MedNIST pixel codes (64x64 -> 32x32 grey by 2x2 mean pooling, PCA to 128
fitted on the images, L2-normalised), measure in one run:

* exact kNN (``graphret.graph.knn.exact_knn``) -> union kNN graph used by every community step;
* pynndescent kNN (``graphret.graph.approx.approx_knn``) and its recall against exact on a
  1,000-row seeded sample;
* graphret CNM (Newman quality): plain, with the Wakita-Tsurumi size heuristic, with the
  heuristic plus the vertex-mover refinement, and with the heuristic plus the multilevel
  refinement (``refine="multilevel"``);
* igraph ``community_fastgreedy`` (weighted) and leidenalg (``RBConfigurationVertexPartition``);

with time, peak memory and the Newman modularity and Haq quality that each partition reaches
(both computed by graphret's own functions).

Every step runs in its own child process (this script with ``--worker``).  Right before the
timed call the child records its RSS (``base_mb``) and resets the kernel's peak-RSS counter
(writing 5 to ``/proc/self/clear_refs``); after the call it reads the peak (``VmHWM`` in
``/proc/self/status``; the process's ``ru_maxrss`` where the reset is not available).  This is a
true peak for numpy and C libraries, unlike tracemalloc, and it excludes import-time peaks
(numba's compiler); ``peak_mb - base_mb`` is what the step itself added on top of the inputs.  numba-compiled code (graphret's kernels, pynndescent) is warmed up
on a tiny input before the timed call, so compile time is not counted.  A step that runs past
``--timeout`` seconds is killed and recorded as timed out.

Usage::

    python benchmarks/bench_communities.py --sizes 10000 100000 300000 --k 10 \\
        --mednist ../shared/data/mednist/mednist_64.npz --out benchmarks/results/communities/
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import machine, reset_peak, vm_mib  # noqa: E402  (one home: benchmarks/common.py)

COMMUNITY_STEPS = ["cnm_plain", "cnm_size", "cnm_size_refine", "cnm_size_multilevel",
                   "igraph_fastgreedy", "leiden"]


# ---------------------------------------------------------------------------------- data
def clustered_codes(n: int, d: int = 64, seed: int = 0, spread: float = 1.5):
    """Gaussian mixture on the sphere: ``max(10, n // 1000)`` random unit centres, each point a
    centre plus N(0, spread^2 / d) noise per coordinate, L2-normalised.  Returns (codes, labels)."""
    rng = np.random.default_rng(seed)
    c = max(10, n // 1000)
    centres = rng.standard_normal((c, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, c, n)
    x = centres[labels] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def mednist_pixel_codes(path: str, dim: int = 128):
    """MedNIST pixel baseline: 64x64 -> 32x32 grey (2x2 mean), PCA to ``dim`` fitted on the
    images (centred), L2-normalised.  Returns (codes float32, labels, class_names)."""
    with np.load(path, allow_pickle=False) as z:
        images = z["images"]
        labels = np.asarray(z["labels"]).astype(np.int64).ravel()
        names = [str(s) for s in z["class_names"]] if "class_names" in z.files else []
    x = images.astype(np.float32)
    if x.ndim == 4:  # (N, H, W, C) -> grey
        x = x.mean(axis=-1)
    n, h, w = x.shape
    x = x.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4)).reshape(n, -1) / 255.0
    mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
    xc = x - mean
    cov = (xc.T.astype(np.float64) @ xc.astype(np.float64)) / n
    vals, vecs = np.linalg.eigh(cov)
    comps = vecs[:, ::-1][:, :dim].astype(np.float32)
    z = xc @ comps
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return np.ascontiguousarray(z, dtype=np.float32), labels, names


# ---------------------------------------------------------------------------------- worker
def _rss_mb() -> float:
    """Current RSS; also resets the peak counter, so call it right before the timed call."""
    global _PEAK_RESET
    _PEAK_RESET = reset_peak()
    return vm_mib("VmRSS")


_PEAK_RESET = False


def _peak_mb() -> float:
    """Peak RSS since the last reset (VmHWM), else the process's ru_maxrss."""
    return vm_mib("VmHWM") if _PEAK_RESET else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(step: str, work: Path, k: int, seed: int) -> dict:
    import scipy.sparse as sp

    from graphret.communities import cnm, haq_modularity, leiden, newman_modularity
    from graphret.communities.leiden import to_igraph
    from graphret.graph.approx import approx_knn, knn_recall
    from graphret.graph.build import graph_from_knn, graph_stats
    from graphret.graph.knn import exact_knn

    out: dict = {"step": step}
    tiny = np.random.default_rng(1).standard_normal((300, 8)).astype(np.float32)
    tiny /= np.linalg.norm(tiny, axis=1, keepdims=True)

    if step in ("exact_knn", "approx_knn"):
        codes = np.load(work / "codes.npy")
        if step == "exact_knn":
            exact_knn(tiny, 5)  # load the compiled top-k kernel
            base = _rss_mb()
            t0 = time.perf_counter()
            idx, sims = exact_knn(codes, k)
            out["seconds"] = time.perf_counter() - t0
            peak = _peak_mb()
            G = graph_from_knn(idx, sims, symmetrize="union")
            sp.save_npz(work / "graph.npz", G)
            out["graph"] = graph_stats(G)
        else:
            approx_knn(tiny, 5, seed=seed)  # numba compile / cache load, not timed
            base = _rss_mb()
            t0 = time.perf_counter()
            idx, sims = approx_knn(codes, k, seed=seed)
            out["seconds"] = time.perf_counter() - t0
            peak = _peak_mb()
            t1 = time.perf_counter()
            out["recall"] = knn_recall(idx, codes, sample=1000, seed=seed)
            out["recall_seconds"] = time.perf_counter() - t1
            G = graph_from_knn(idx, sims, symmetrize="union")
            out["graph"] = graph_stats(G)
            if not (work / "graph.npz").exists():  # exact kNN failed: communities use this one
                sp.save_npz(work / "graph.npz", G)
                out["graph_used_for_communities"] = True
        out.update(base_mb=base, peak_mb=peak)
        return out

    G = sp.load_npz(work / "graph.npz").tocsr()
    tg = sp.csr_matrix(np.ones((3, 3)) - np.eye(3))
    if step.startswith("cnm"):
        heur = None if step == "cnm_plain" else "size"
        refine = {"cnm_size_refine": True, "cnm_size_multilevel": "multilevel"}.get(step, False)
        cnm(tg, heuristic=heur, refine=refine)  # load compiled kernels
        base = _rss_mb()
        t0 = time.perf_counter()
        res = cnm(G, heuristic=heur, refine=refine)
        out["seconds"] = time.perf_counter() - t0
        peak = _peak_mb()
        membership = res.membership
        out["merges"] = res.n_merges
        out["dendrogram_quality"] = res.meta.get("dendrogram_quality")
        if refine:
            out["refine_seconds"] = res.meta.get("refine_seconds")
            out["refine_moves"] = res.meta.get("refine_moves")
            out["multilevel_levels"] = res.meta.get("multilevel_levels")
    elif step == "igraph_fastgreedy":
        t0 = time.perf_counter()
        g = to_igraph(G)
        out["prep_seconds"] = time.perf_counter() - t0
        base = _rss_mb()
        t0 = time.perf_counter()
        dend = g.community_fastgreedy(weights="weight")
        cl = dend.as_clustering()
        out["seconds"] = time.perf_counter() - t0
        peak = _peak_mb()
        membership = np.asarray(cl.membership, dtype=np.int64)
    elif step == "leiden":
        leiden(tg)
        base = _rss_mb()
        t0 = time.perf_counter()
        membership = leiden(G, resolution=1.0, seed=seed).membership
        out["seconds"] = time.perf_counter() - t0  # includes building the igraph Graph
        peak = _peak_mb()
    else:  # pragma: no cover
        raise SystemExit(f"unknown step {step}")
    np.save(work / f"membership_{step}.npy", membership)
    out.update(
        base_mb=base, peak_mb=peak,
        communities=int(np.unique(membership).size),
        newman=newman_modularity(G, membership),
        haq=haq_modularity(G, membership),
    )
    return out


def run_step(step: str, work: Path, k: int, seed: int, timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", step, "--work", str(work),
           "--k", str(k), "--seed", str(seed)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"step": step, "status": "timeout", "timeout_s": timeout,
                "wall_seconds": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"step": step, "status": "error", "stderr": proc.stderr[-2000:], "wall_seconds": wall}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res.update(status="ok", wall_seconds=wall)
    return res


# ---------------------------------------------------------------------------------- report
def fmt(x, nd=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{nd}f}"
    return str(x)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Communities benchmark (graphret issue 4)",
        "",
        f"Date: {report['date']}  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {fmt(m['memory_gib'], 1)} GiB "
        f"(shared with other jobs; load average at start {' '.join(f'{x:.2f}' for x in m['load_average_at_start'])})  ",
        f"Command: `{report['command']}`  ",
        f"k = {report['k']}, union symmetrisation, Newman resolution 1.0; peak = the step's peak RSS "
        "(VmHWM reset before the call, MiB), +MiB = peak minus RSS just before the call; quality by graphret's functions.",
        "",
        "| data | n | edges (graph) | step | status | time s | peak MiB | +MiB | communities | Newman Q | Haq Q | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds in report["datasets"]:
        edges = f"{ds.get('graph', {}).get('edges', '-')} ({ds.get('graph_source', '-')})"
        for r in ds["steps"]:
            notes = []
            if r["step"] == "approx_knn" and "recall" in r:
                notes.append(f"recall {r['recall']:.4f}")
            if r.get("prep_seconds") is not None:
                notes.append(f"+{r['prep_seconds']:.1f}s igraph Graph build")
            if r.get("refine_seconds") is not None:
                notes.append(f"refine {r['refine_seconds']:.2f}s, {r['refine_moves']} moves, "
                             f"dendrogram Q {r['dendrogram_quality']:.4f}")
            if r["status"] == "timeout":
                notes.append(f"killed after {r['timeout_s']:.0f}s")
            if r["status"] == "error":
                notes.append(r.get("stderr", "").strip().splitlines()[-1][:80] if r.get("stderr") else "error")
            delta = (r["peak_mb"] - r["base_mb"]) if "peak_mb" in r else None
            lines.append(
                f"| {ds['name']} | {ds['n']} | {edges} | {r['step']} | {r['status']} | "
                f"{fmt(r.get('seconds'), 2)} | {fmt(r.get('peak_mb'), 0)} | {fmt(delta, 0)} | "
                f"{fmt(r.get('communities'))} | {fmt(r.get('newman'), 4)} | {fmt(r.get('haq'), 4)} | "
                f"{'; '.join(notes)} |"
            )
    if report.get("scaling"):
        lines += ["", "## Time growth (log-log slope of time vs n between consecutive generated sizes)", "",
                  "| step | " + " | ".join(report["scaling"]["pairs"]) + " |",
                  "|---|" + "---|" * len(report["scaling"]["pairs"])]
        for step, slopes in report["scaling"]["slopes"].items():
            lines.append(f"| {step} | " + " | ".join(fmt(s, 2) for s in slopes) + " |")
    if report.get("mednist_agreement"):
        lines += ["", "## MedNIST pixel codes: partitions against the 6 labels", "",
                  "| method | communities | Newman Q | Haq Q | NMI | ARI |", "|---|---|---|---|---|---|"]
        for row in report["mednist_agreement"]:
            lines.append(f"| {row['step']} | {row['communities']} | {fmt(row['newman'], 4)} | "
                         f"{fmt(row['haq'], 4)} | {fmt(row['nmi'], 4)} | {fmt(row['ari'], 4)} |")
    return "\n".join(lines) + "\n"


def scaling(report: dict) -> dict:
    gen = [d for d in report["datasets"] if d["name"] == "generated"]
    gen.sort(key=lambda d: d["n"])
    pairs, slopes = [], {}
    for a, b in zip(gen, gen[1:]):
        pairs.append(f"{a['n']}->{b['n']}")
        for ra in a["steps"]:
            rb = next((r for r in b["steps"] if r["step"] == ra["step"]), None)
            s = None
            if rb and ra.get("seconds") and rb.get("seconds"):
                s = float(np.log(rb["seconds"] / ra["seconds"]) / np.log(b["n"] / a["n"]))
            slopes.setdefault(ra["step"], []).append(s)
    return {"pairs": pairs, "slopes": slopes}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10000, 100000, 300000])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spread", type=float, default=1.5, help="noise of the generated mixture")
    ap.add_argument("--mednist", default=None, help="path to mednist_64.npz (key 'images')")
    ap.add_argument("--out", default="benchmarks/results/communities/")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per step")
    ap.add_argument("--skip", nargs="*", default=[], help="steps to skip")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.work), args.k, args.seed)))
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "k": args.k, "seed": args.seed, "spread": args.spread,
        "machine": machine("scipy", "numba", "igraph", "leidenalg", "pynndescent"), "datasets": [],
    }
    # MedNIST (59k) runs before generated sizes above 100k, so that a long large-n run does
    # not hold back the real-data result
    jobs = [("generated", n) for n in sorted(args.sizes) if n <= 100000]
    if args.mednist:
        jobs.append(("mednist", None))
    jobs += [("generated", n) for n in sorted(args.sizes) if n > 100000]
    steps = [s for s in ["exact_knn", "approx_knn"] + COMMUNITY_STEPS if s not in args.skip]
    for name, n in jobs:
        with tempfile.TemporaryDirectory(prefix="graphret-bench-") as tmp:
            work = Path(tmp)
            labels = None
            if name == "generated":
                codes, labels = clustered_codes(n, seed=args.seed, spread=args.spread)
            else:
                codes, labels, _ = mednist_pixel_codes(args.mednist)
                n = codes.shape[0]
            np.save(work / "codes.npy", codes)
            ds = {"name": name, "n": int(n), "d": int(codes.shape[1]), "steps": []}
            del codes
            for step in steps:
                print(f"[{_dt.datetime.now():%H:%M:%S}] {name} n={n} {step} ...", flush=True)
                r = run_step(step, work, args.k, args.seed, args.timeout)
                print(f"    {r.get('status')} {fmt(r.get('seconds'), 2)} s "
                      f"Q={fmt(r.get('newman'), 4)} peak={fmt(r.get('peak_mb'), 0)} MiB", flush=True)
                if step == "exact_knn":
                    ds["graph"] = r.get("graph", {})
                    ds["graph_source"] = "exact" if r["status"] == "ok" else "approx"
                if step == "approx_knn" and ds.get("graph_source") == "approx":
                    ds["graph"] = r.get("graph", {})
                    if r["status"] != "ok":
                        ds["steps"].append(r)
                        break
                ds["steps"].append(r)
            if name == "mednist" and labels is not None:
                from sklearn.metrics import (
                    adjusted_rand_score,
                    normalized_mutual_info_score,
                )

                rows = []
                for r in ds["steps"]:
                    f = work / f"membership_{r['step']}.npy"
                    if r["status"] == "ok" and f.exists():
                        mem = np.load(f)
                        rows.append({"step": r["step"], "communities": r["communities"],
                                     "newman": r["newman"], "haq": r["haq"],
                                     "nmi": float(normalized_mutual_info_score(labels, mem)),
                                     "ari": float(adjusted_rand_score(labels, mem))})
                report["mednist_agreement"] = rows
            report["datasets"].append(ds)
        (out / "communities.json").write_text(json.dumps(report, indent=2))
    report["scaling"] = scaling(report)
    (out / "communities.json").write_text(json.dumps(report, indent=2))
    (out / "communities.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
