"""Benchmark: `build-graph --engine ray` against the plain build (graphret issue 17, part 3).

On MedNIST (``mednist/mednist_64.npz``; ``--n`` items, a seeded subset when smaller than the
58,954 of the file; the source's seeded 70/30 split, archive = train), for each encoder:

1. the encoder is fitted once on the train split and saved (``pixels``: 32x32 grey + PCA 128;
   ``cnn``: the default small CNN classifier, one epoch, one thread), so every build below
   encodes with the same model (``model=`` file), as `build-graph --model` does;
2. the plain build (``engine="local"``) and Ray builds with 1 and 2 encoder actors
   (``engine="ray"``, ``workers=W``, no address: each starts a local Ray instance with this
   machine's CPUs and stops it after), every step timed by the build itself (the manifest's
   ``build.seconds``);
3. equivalence: each Ray store against the plain one (:func:`graphret.evaluation.equivalence.
   store_differences`: largest code difference, the same edge pairs, largest weight difference,
   the same CNM and Leiden memberships);
4. encoding throughput (images/s over the encode step: for Ray, the Ray Data pipeline from the
   first block to the last code back in the driver, actor start-up included) and the overhead
   of the Ray build against the plain build (the whole build call's seconds, and Ray's own start-up).

Ray workers compute with the build process's BLAS and torch thread counts (the product's
rounding depends on them) and reserve that many CPUs, so on 2 cores with the default 2 BLAS
threads one actor fits; ``OMP_NUM_THREADS=1`` gives one-thread workers, two of which fit (the
1-and-2-actor throughput run).  Thumbnails are off (``thumbnail_size=0``) in every build: they
are made in the driver either way.  The machine is shared (2 cores, other jobs running), so seconds carry that noise; each
figure is from one run.

Usage::

    python benchmarks/bench_ray.py --workers 1 --name ray_default_threads
    OMP_NUM_THREADS=1 python benchmarks/bench_ray.py --workers 1 2 --name ray_one_thread
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import graphret
from graphret.data.imageset import ImageSet
from graphret.data.sources import open_source
from graphret.encoders import make_encoder
from graphret.encoders.training import train_encoder, training_indices
from graphret.evaluation.equivalence import store_differences
from shared_data import MEDNIST


def subset(images: ImageSet, n: int, seed: int) -> ImageSet:
    """A seeded subset of ``n`` items (in file order), with their ids, labels and splits."""
    if n >= len(images):
        return images
    rows = np.sort(np.random.default_rng(seed).choice(len(images), size=n, replace=False))
    assert images.images is not None
    return ImageSet(ids=[images.ids[i] for i in rows], paths=[images.paths[i] for i in rows], splits=images.splits[rows],
                    labels=None if images.labels is None else np.asarray(images.labels)[rows], class_names=images.class_names,
                    task=images.task, source=f"{images.source} (seeded subset of {n})", images=np.asarray(images.images[rows]),
                    split_origin=images.split_origin)


def fit(images: ImageSet, name: str, path: Path, seed: int) -> Path:
    if name == "pixels":
        train, _ = training_indices(images)
        make_encoder("pixels").fit(images, train, seed=seed).save(path)
    else:
        train_encoder(images, "cnn", seed=seed, backbone="small", epochs=1, threads=1, progress=False).save(path)
    return path


def build(images: ImageSet, out: Path, model: Path, **options) -> dict:
    t0 = time.perf_counter()
    # exact kNN: the step Ray shards (auto would pick faiss above 20,000 codes, which runs in the build process)
    graphret.build(images, out, model=str(model), thumbnail_size=0, overwrite=True, knn="exact", **options)
    wall = time.perf_counter() - t0
    build_info = graphret.open(out).manifest["build"]
    return {"wall": round(wall, 2), "seconds": build_info["seconds"], "engine": build_info["engine"],
            "driver_peak_rss_mib": build_info["peak_rss_mib"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=58954, help="items (a seeded subset of MedNIST's 58,954)")
    parser.add_argument("--encoders", nargs="+", default=["pixels", "cnn"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_ray"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray"))
    parser.add_argument("--name", default="ray", help="results file name (NAME.json, NAME.md)")
    parser.add_argument("--render", action="store_true", help="only write NAME.md again from NAME.json")
    args = parser.parse_args()
    if args.render:
        write_markdown(json.loads((args.out / f"{args.name}.json").read_text()), args.out / f"{args.name}.md")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    source = MEDNIST
    images = subset(open_source(str(source), seed=args.seed), args.n, args.seed)
    import ray

    from graphret.cluster.session import driver_threads

    blas_threads, torch_threads = driver_threads()
    results = {"data": images.source, "items": len(images), "archive": int(len(images.indices_of(["train"]))),
               "cpus": os.cpu_count(), "blas_threads": blas_threads, "torch_threads": torch_threads, "ray": ray.__version__, "machine": platform.machine(),
               "python": platform.python_version(), "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]), "runs": {}}
    for name in args.encoders:
        t0 = time.perf_counter()
        model = fit(images, name, args.work / f"{name}.pt", args.seed)
        print(f"{name}: fitted in {time.perf_counter() - t0:.1f} s", flush=True)
        runs = {"local": build(images, args.work / f"{name}-local", model)}
        print(f"{name} local: {runs['local']['seconds']}", flush=True)
        for workers in args.workers:
            key = f"ray-{workers}"
            runs[key] = build(images, args.work / f"{name}-{key}", model, engine="ray", workers=workers)
            runs[key]["equivalence"] = store_differences(args.work / f"{name}-local", args.work / f"{name}-{key}")
            print(f"{name} {key}: {runs[key]['seconds']} {runs[key]['equivalence']}", flush=True)
        for run in runs.values():
            run["encode_images_per_s"] = round(len(images) / max(run["seconds"]["encode"], 1e-9), 1)
        results["runs"][name] = runs
        (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, args.out / f"{args.name}.md")


def write_markdown(results: dict, path: Path) -> None:
    lines = [f"# The Ray engine against the plain build: {results['data']}", "",
             f"{results['items']} items, archive {results['archive']} (the graph's items); {results['cpus']} CPU cores "
             f"(shared with other jobs); BLAS threads {results['blas_threads']}, torch threads {results['torch_threads']} "
             "in the build process and in every Ray worker (each worker reserves that many CPUs); "
             f"Ray {results['ray']}, a local instance started by each Ray build.", "",
             f"Command: `python benchmarks/{results['command']}`", "",
             "images/s: over the whole encode step (for Ray: actor start-up and model load included); "
             "per actor: images over the seconds the actors' encode calls took (one actor's own rate); "
             "first block: seconds until the first encoded block was back in the driver; Ray overhead: Ray's start-up "
             "plus the encode and kNN steps' seconds minus the plain build's (the steps Ray changes); build s: the whole "
             "`graphret.build` call, Ray start-up included (the other steps run in the build process either way, so "
             "their difference is the shared machine's noise).", "",
             "| encoder | build | encode s | images/s | per actor images/s | first block s | kNN s | Ray start s | "
             "Ray overhead s | build s | max code diff | same edges | max weight diff | same CNM / Leiden |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for name, runs in results["runs"].items():
        plain = runs["local"]["seconds"]
        for key, run in runs.items():
            s = run["seconds"]
            eq = run.get("equivalence")
            actors = 0 if key == "local" else run["engine"]["encode"]["workers"]
            workers = "" if key == "local" else f" ({actors} actor{'s' if actors > 1 else ''}, {run['engine']['knn']['shards']} kNN shards)"
            start = run["engine"].get("start_seconds", s.get("engine", 0.0))
            overhead = start + s["encode"] - plain["encode"] + s["knn"] - plain["knn"]
            lines.append("| " + " | ".join([
                name, ("plain" if key == "local" else "ray") + workers, f"{s['encode']:.2f}", f"{run['encode_images_per_s']:.0f}",
                "" if key == "local" else f"{run['engine']['encode']['actor_images_per_s']:.0f}",
                "" if key == "local" else f"{run['engine']['encode']['first_block_s']:.2f}",
                f"{s['knn']:.2f}", f"{start:.2f}", "" if key == "local" else f"{overhead:+.2f}", f"{run['wall']:.2f}",
                "" if eq is None else f"{eq['max_code_diff']['default']:.1e}",
                "" if eq is None else str(eq["same_edges"]),
                "" if eq is None else f"{eq.get('max_weight_diff', float('nan')):.1e}",
                "" if eq is None else " / ".join(str(eq["same_communities"].get(m)) for m in ("cnm", "leiden")),
            ]) + " |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
