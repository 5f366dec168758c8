"""The default build on a labelled image folder at >= 224 px (issue 23, item 1): wall time and
flat retrieval quality of ``graphret build-graph FOLDER`` with its default encoder, beside
``--backbone small``, frozen ImageNet EfficientNet-Lite0 and raw pixels.

Nothing in ``../shared`` is above 64 px, so the folder is **made**: a seeded stratified sample of
a shared set (MedNIST 64 px, or the PBC blood cells at 28 px), each image **upsampled** (PIL
bicubic) to ``--size`` px and written as PNG into ``<class>/`` sub-folders under a temporary
folder (never the repository).  The content is real; the resolution is not the images' own: a
real 224 px photograph holds more detail than an upsampled 64 px one, so the quality figures
say little about real-resolution folders, while the cost (decoding, resizing and every network
pass at 224 px) is that of a real folder of this size.

Each build runs in a fresh process, ``graphret build-graph FOLDER -o STORE [options]`` (the
default seeded 70/30 split), timed end to end with the load average before and after; the
store is then benched flat (test split against the train archive, K = 10).

    python benchmarks/bench_real_size.py --source mednist --n 5000 --builds default,small,frozen,pixels
    python benchmarks/bench_real_size.py --source blood --n 2000 --builds default

Writes ``benchmarks/results/real_size/real_size.json`` (rows merged by source, n, size, build
and the code's commit) and ``real_size.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, load_average, log, utc_stamp
from shared_data import DATA

OUT = ROOT / "benchmarks" / "results" / "real_size"
SOURCES = {"mednist": DATA / "mednist" / "mednist_64.npz", "blood": DATA / "bloodcells" / "pbc_blood_28.npz"}
#: build name -> the build-graph options it adds to the default command line
BUILDS = {
    "default": [],
    "small": ["--backbone", "small"],
    "frozen": ["--encoder", "frozen", "--backbone", "efficientnet_lite0"],
    "pixels": ["--encoder", "pixels"],
}
BENCH = r"""
import json, sys
from graphret.store import open_store
from graphret.evaluation import run_bench
store = open_store(sys.argv[1])
res = run_bench(store, k=10, modes="flat", n_single=0)
row = [r for r in res.rows if r["mode"] == "flat"][0]
enc = store.manifest["encoder"]
hist = (enc.get("config") or {}).get("history") or {}
print(json.dumps({"p10": row.get("P@10"), "acc1": row.get("Acc@1"), "description": enc.get("description"),
                  "image_size": (enc.get("config") or {}).get("image_size"), "epochs": len(hist.get("epochs", [])),
                  "steps": store.manifest.get("build")}))
"""


def row_key(row: dict) -> tuple:
    """Rows of the results file are merged by source, size, build and code version."""
    return row["source"], row["images"], row["size"], row["build"], row.get("code")


def make_folder(source: str, n: int, size: int, seed: int, dest: Path) -> dict:
    """Write a seeded stratified sample of ``n`` images of ``source``, upsampled to ``size`` px,
    as ``dest/<class>/<file>.png``; returns what was written."""
    import numpy as np
    from PIL import Image

    data = np.load(SOURCES[source], allow_pickle=True)
    images, labels, names = data["images"], np.asarray(data["labels"]).reshape(-1), [str(c) for c in data["class_names"]]
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(rng.permutation(members)[: round(n * len(members) / len(labels))])
    rows = np.sort(np.concatenate(picked))[:n]
    for c in names:
        (dest / c).mkdir(parents=True, exist_ok=True)
    for i in rows:
        picture = Image.fromarray(images[i]).resize((size, size), Image.BICUBIC)
        picture.save(dest / names[int(labels[i])] / f"{source}_{i:06d}.png")
    return {"images": int(len(rows)), "classes": len(names), "from_px": int(images.shape[1]), "size": size}


def build(folder: Path, name: str, store: Path) -> dict:
    """Run one build in a fresh process; its wall seconds, load averages and flat quality."""
    load0 = load_average()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", "from graphret.cli.main import run; run()", "build-graph", str(folder), "-o", str(store), *BUILDS[name]],
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    load1 = load_average()
    if run.returncode != 0:
        return {"build": name, "error": run.stderr.strip().splitlines()[-1:]}
    bench = subprocess.run([sys.executable, "-c", BENCH, str(store)], capture_output=True, text=True, cwd=ROOT, check=True)
    out = json.loads(bench.stdout.strip().splitlines()[-1])
    return {"build": name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_before": load0, "load_after": load1, **out}


def code_version() -> str:
    """The commit the build ran (with "+changes" when the worktree's code differs from it)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results"],
                           capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return head + ("+changes" if dirty else "")


def markdown(rows: list[dict]) -> str:
    lines = ["# The default build on a labelled folder at 224 px (upsampled content)", "",
             "Each folder is a seeded stratified sample of a shared set **upsampled** to the size shown (PIL bicubic, "
             "PNG): real content, not real resolution. One build per fresh process, `graphret build-graph FOLDER` "
             "(seeded 70/30 split) with the options of the row; wall = the whole command; flat P@10 / Acc@1 of "
             "the test split against the train archive. Load = 1-minute load average before / after the build "
             "(2 shared cores: wall seconds are pessimistic when it is above 2); CPU s = the build process's user + "
             "system seconds (one torch thread: what the wall would be on a quiet core); peak GB = the build's peak resident memory.", "",
             "| source | images | from px -> size | build | encoder | input px | epochs | wall s (fit / encode) | CPU s | peak GB | load | P@10 | Acc@1 | code | when |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['source']} | {r['images']} | | {r['build']} | error: {r['error']} | | | | | | | | | {r.get('code', '')} | {r['when']} |")
            continue
        steps = (r.get("steps") or {}).get("seconds", {})
        lines.append(f"| {r['source']} | {r['images']} | {r['from_px']} -> {r['size']} | {r['build']} | {r['description']} | "
                     f"{r.get('image_size') or ''} | {r.get('epochs') or ''} | {r['wall_s']} ({steps.get('fit_encoder', 0):.0f} / {steps.get('encode', 0):.0f}) | {r.get('cpu_s', '')} | "
                     f"{(r.get('steps') or {}).get('peak_rss_mib', 0) / 1024:.1f} | {r['load_before'][0]} / {r['load_after'][0]} | "
                     f"{r['p10']:.3f} | {r['acc1']:.3f} | {r.get('code', '')} | {r['when']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=sorted(SOURCES), default="mednist")
    ap.add_argument("--n", type=int, default=5000, help="images in the folder (seeded, stratified)")
    ap.add_argument("--size", type=int, default=224, help="the size the images are upsampled to")
    ap.add_argument("--builds", default="default,small,frozen,pixels", help=f"comma list of {', '.join(BUILDS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "real_size.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    with tempfile.TemporaryDirectory(prefix="graphret-real-size-") as tmp:
        folder = Path(tmp) / "folder"
        made = make_folder(args.source, args.n, args.size, args.seed, folder)
        log(f"wrote {made['images']} {args.source} images upsampled {made['from_px']} -> {args.size} px under {folder}")
        for name in args.builds.split(","):
            result = {"source": args.source, **made, **build(folder, name, Path(tmp) / f"store-{name}"), "when": utc_stamp(),
                      "code": code_version()}
            print(json.dumps({k: v for k, v in result.items() if k != "steps"}), flush=True)
            rows = [r for r in rows if row_key(r) != row_key(result)] + [result]
            path.write_text(json.dumps({"rows": rows}, indent=1))
            (out / "real_size.md").write_text(markdown(rows))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
