"""Frozen encoding speed on the CPU against onnxruntime (issue 23, item 3).

For ResNet-50 (graphret's frozen encoder, ``--encoder frozen --backbone resnet50``) and
EfficientNet-Lite0 (timm's ``efficientnet_lite0`` through ``--encoder timm:efficientnet_lite0
--weights FILE``) at 224 px, images/s of:

* **onnxruntime**: the same network exported to ONNX, run by an onnxruntime session on a
  ready float32 batch (the bar: model only, no image handling);
* **graphret, torch engine**: ``encoder.encode`` end to end (uint8 images in memory ->
  normalised batch -> network -> L2-normalised codes) on graphret's torch engine: batch norms
  folded into the convolutions, channels-last, ``torch.inference_mode``;
* **graphret, default**: ``encoder.encode`` as a build runs it (the onnxruntime engine for
  64 images or more where onnxruntime is installed);
* **torch eager (before)**: the network as graphret ran it before this change (NCHW,
  ``no_grad``, batch norms unfolded), model only.

Every engine runs with the same batch (32) and the same thread count (set deliberately:
``torch.set_num_threads`` and onnxruntime's intra-op threads; inter-op 1), in rounds that take
each engine in turn, so the ratios (onnxruntime / graphret) compare like with like on a
shared, noisy machine.  Random weights (speed does not depend on them).

    python benchmarks/bench_encode_speed.py                    # threads 1 and 2, 2 rounds
    python benchmarks/bench_encode_speed.py --threads 2 --rounds 3 --images 96

Results: benchmarks/results/encode_speed/encode_speed.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from graphret.data.imageset import ImageSet

SIZE, BATCH = 224, 32
RESULTS = Path(__file__).resolve().parent / "results" / "encode_speed"
NETWORKS = ("resnet50", "efficientnet_lite0")


def images_in_memory(n: int, seed: int = 0) -> ImageSet:
    """n random colour images at 224 px (no resizing: what is timed is the encoding)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)
    return ImageSet(ids=[f"img-{i}" for i in range(n)], paths=[f"mem#{i}" for i in range(n)], splits=np.array(["all"] * n, dtype=object),
                    labels=None, class_names=None, task="none", source="random images", images=pixels)


def make_encoder(network: str, folder: Path, threads: int):
    """graphret's encoder for the network, with random weights written to a file."""
    torch.manual_seed(0)
    if network == "resnet50":
        import torchvision

        from graphret.encoders.frozen import FrozenEncoder

        weights = folder / "resnet50.pth"
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
        return FrozenEncoder(backbone="resnet50", weights=str(weights), image_size=SIZE, threads=threads, progress=False).load_weights()
    import timm

    from graphret.encoders import make_encoder as make

    weights = folder / "efficientnet_lite0.pth"
    torch.save(timm.create_model("efficientnet_lite0", pretrained=False).state_dict(), weights)
    return make("timm:efficientnet_lite0", weights=str(weights), image_size=SIZE, threads=threads, progress=False).open()


def onnx_session(module, threads: int):
    import onnxruntime as ort

    from graphret.encoders.inference import _flat_outputs

    example = torch.zeros(1, 3, SIZE, SIZE)
    with torch.inference_mode():
        sample = module.eval()(example)
    names = sorted(sample) if isinstance(sample, dict) else None
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_flat_outputs(module, names), (example,), buffer, input_names=["image"], output_names=names or ["output"],
                          dynamic_axes={"image": {0: "n"}}, dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])


def timed(fn, n_images: int) -> float:
    t0 = time.perf_counter()
    fn()
    return n_images / (time.perf_counter() - t0)


def run_network(network: str, threads: int, rounds: int, n_images: int, folder: Path) -> dict:
    torch.set_num_threads(threads)
    encoder = make_encoder(network, folder, threads)
    module = encoder.net  # the torch module graphret runs
    session = onnx_session(module, threads)
    images = images_in_memory(n_images)
    rng = np.random.default_rng(1)
    batch = rng.standard_normal((BATCH, 3, SIZE, SIZE)).astype(np.float32)
    batches = max(1, n_images // BATCH)

    def onnxruntime_only():
        for _ in range(batches):
            session.run(None, {"image": batch})

    def eager_before():
        x = torch.from_numpy(batch)
        with torch.no_grad():
            for _ in range(batches):
                module(x)

    def graphret(engine: str):
        def go():
            encoder.engine = engine
            encoder.encode(images, np.arange(n_images), batch_size=BATCH)
        return go

    engines = {"onnxruntime": onnxruntime_only, "graphret_torch": graphret("torch"), "graphret_default": graphret("auto"),
               "torch_eager_before": eager_before}
    counts = {"onnxruntime": batches * BATCH, "torch_eager_before": batches * BATCH}
    session.run(None, {"image": batch[:1]})  # warm-up: first-call allocations; graphret's engines are built here
    with torch.no_grad():
        module(torch.from_numpy(batch[:1]))
    graphret("torch")()
    graphret("auto")()
    speeds: dict[str, list[float]] = {name: [] for name in engines}
    ratios: dict[str, list[float]] = {"graphret_torch": [], "graphret_default": [], "torch_eager_before": []}
    for _ in range(rounds):
        this = {name: timed(fn, counts.get(name, n_images)) for name, fn in engines.items()}
        for name, value in this.items():
            speeds[name].append(round(value, 2))
        for name in ratios:
            ratios[name].append(round(this["onnxruntime"] / this[name], 3))
    return {"network": network, "threads": threads, "batch": BATCH, "images": n_images, "rounds": rounds,
            "images_per_s": {k: round(statistics.median(v), 2) for k, v in speeds.items()}, "images_per_s_each_round": speeds,
            "ratio_onnxruntime_over": {k: round(statistics.median(v), 3) for k, v in ratios.items()}, "ratios_each_round": ratios}


def write(rows: list[dict], meta: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "encode_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = ["# Frozen encoding speed on the CPU against onnxruntime", "",
             f"Written by `benchmarks/bench_encode_speed.py` on {meta['date']}: {meta['machine']}, {meta['cpus']} CPUs "
             f"(load average {meta['load_before']} before the run: the machine is shared), torch {meta['torch']}, onnxruntime {meta['onnxruntime']}.",
             f"224 px, batch {BATCH}, random weights; images/s, the median of the rounds; ratio = onnxruntime / graphret "
             "(the goal: <= 1.2), the median of each round's ratio (engines timed in turn within a round).", "",
             "| network | threads | onnxruntime (model only) | graphret default (end to end) | ratio | graphret torch engine (end to end) | ratio | torch eager before (model only) | ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, q = r["images_per_s"], r["ratio_onnxruntime_over"]
        lines.append(f"| {r['network']} | {r['threads']} | {s['onnxruntime']:.1f} | {s['graphret_default']:.1f} | {q['graphret_default']:.2f} | "
                     f"{s['graphret_torch']:.1f} | {q['graphret_torch']:.2f} | {s['torch_eager_before']:.1f} | {q['torch_eager_before']:.2f} |")
    lines += ["", "graphret default: the onnxruntime engine (`graphret.encoders.inference`, the network exported once in memory) for 64 images "
              "or more where onnxruntime is installed (`graphret[byo]`); the torch engine otherwise and for a query's few images "
              "(batch norms folded into the convolutions, channels-last, inference mode).", ""]
    (RESULTS / "encode_speed.md").write_text("\n".join(lines))


def main() -> None:
    import onnxruntime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default=",".join(NETWORKS), help="comma list of " + ", ".join(NETWORKS))
    parser.add_argument("--threads", default="1,2", help="comma list of thread counts [1,2]")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every engine in turn [2]")
    parser.add_argument("--images", type=int, default=64, help="images per timing (a multiple of 32; >= 64 for the onnxruntime engine) [64]")
    args = parser.parse_args()
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "load_before": round(os.getloadavg()[0], 1), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for network in [n.strip() for n in args.networks.split(",") if n.strip()]:
            for threads in [int(t) for t in args.threads.split(",")]:
                rows.append(run_network(network, threads, args.rounds, args.images, Path(tmp)))
                print(json.dumps({k: rows[-1][k] for k in ("network", "threads", "images_per_s", "ratio_onnxruntime_over")}), flush=True)
    write(rows, meta)


if __name__ == "__main__":
    main()
