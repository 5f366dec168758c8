"""Pretrained initialisation, fine-tuned (issue 23): flat retrieval on the shared real sets for
raw pixels, the small CNN from scratch, frozen ImageNet EfficientNet-Lite0 and the fine-tuned
EfficientNet-Lite0 (the default of a labelled build).

Every encoder is fitted on the train split (val for early stopping) and encodes the train split
as the archive and the test split as the queries; exact flat cosine search scores Acc@1 and P@10
(P@50 too), and for the NIH chest X-rays (multi-label, split by patient) P@50 under the exact
label-set rule and the classifier's mean AUROC over the findings.  Build seconds = fit + encode,
on this machine as it was (say how busy it was: the figures in the note name the load).

Sets (``--sets``): breast, pneumonia, retina, blood (MedMNIST-style, 28 px), mednist (64 px npz),
mednist-jpeg (the 1,200-file JPEG folder at its own size, seeded 70/30 split), nih (the 1,000
NIH PNGs, patient split).  ``--max-train N`` / ``--max-test N`` take seeded stratified subsets
(bounded runs on a shared machine; the output says so).

    python benchmarks/bench_pretrained.py --sets breast,mednist-jpeg --encoders pixels,small,frozen,default
    python benchmarks/bench_pretrained.py --sets blood --max-train 3000 --max-test 1000
    python benchmarks/bench_pretrained.py --sets retina --encoders finetuned@128,finetuned@224

A row ``NAME@SIZE`` runs encoder NAME at SIZE px input (images upsampled or reduced to it);
``NAME@SIZE/work=W`` also with a work budget of W megapixels instead of the default build's.
A model you bring is a row too: ``--model LABEL=SPEC`` names it (SPEC: an ``--encoder`` value such
as ``onnx:FILE``, then ``;option=value`` pairs, lists comma-separated), ``--encoders LABEL`` runs it:

    python benchmarks/bench_pretrained.py --sets breast --encoders byo-resnet50 \
        --model 'byo-resnet50=onnx:resnet50-caffe.onnx;mean=0.4823,0.4580,0.4076;std=0.0039216,0.0039216,0.0039216'

Writes ``benchmarks/results/pretrained/pretrained.json`` (rows merged by set and encoder) and
``pretrained.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphret.data.imageset import ImageSet  # noqa: E402
from graphret.metrics import label_aurocs, mean_auroc, mean_auroc_spread  # noqa: E402
from graphret.metrics.retrieval import accuracy_at_k, precision_at_k, relevance  # noqa: E402

from shared_data import DATA, NIH_CSV  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "pretrained"
SETS = ("breast", "pneumonia", "retina", "blood", "mednist", "mednist-jpeg", "nih")
NPZ = {"breast": "medmnist/breastmnist.npz", "pneumonia": "medmnist/pneumoniamnist.npz",
       "retina": "medmnist/retinamnist.npz", "blood": "bloodcells/pbc_blood_28.npz", "mednist": "mednist/mednist_64.npz"}
from graphret.api.build import DEFAULT_TRAINING_OPTIONS  # noqa: E402
from graphret.encoders.cnn import default_backbone  # noqa: E402

#: What each row runs: make_encoder's name and options, with the default build's work budget.
#: "finetuned" and "small" are the two backbones a default labelled build chooses between
#: (default_backbone: by image size; the "default" column of the table says which), "frozen"
#: is ImageNet EfficientNet-Lite0 at 224 px without training (a default unlabelled build
#: uses it at the source's size within 64-224 px).
BUDGET = {"work": DEFAULT_TRAINING_OPTIONS["work"]}
ENCODERS = {
    "pixels": ("pixels", {}),
    "small": ("cnn", {"backbone": "small", **BUDGET}),
    "frozen": ("frozen", {"backbone": "efficientnet_lite0"}),
    "finetuned": ("cnn", {"backbone": "efficientnet_lite0", **BUDGET}),
}
DEFAULT_ROW = {"small": "small", "efficientnet_lite0": "finetuned"}
#: Mahbod et al. 2024's best Acc@1 at 224 px (GUIDE.md section 7), for the MedMNIST sets.
MAHBOD_224 = {"breast": 0.872, "pneumonia": 0.936, "retina": 0.540, "blood": 0.968}


def subset(images: ImageSet, keep: np.ndarray) -> ImageSet:
    """The items at ``keep`` (sorted) as a new in-memory ImageSet."""
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    arrays = np.stack([np.asarray(images.image(int(i))) for i in keep])
    labels = np.asarray(images.labels)[keep]
    return ImageSet(ids=[images.ids[i] for i in keep], paths=[images.ids[i] for i in keep], splits=np.asarray(images.splits)[keep],
                    labels=labels, class_names=images.class_names, task=images.task, source=images.source, images=arrays,
                    split_origin=images.split_origin)


def bounded(images: ImageSet, split: str, most: int | None, seed: int) -> np.ndarray:
    """A seeded stratified sample of at most ``most`` items of ``split`` (all when None)."""
    rows = images.indices_of([split])
    if most is None or len(rows) <= most:
        return rows
    rng = np.random.default_rng([seed, len(split)])
    labels = np.asarray(images.labels)[rows].reshape(len(rows), -1)[:, 0]
    picked = []
    for value in np.unique(labels):
        members = rows[labels == value]
        picked.append(rng.permutation(members)[: max(1, round(most * len(members) / len(rows)))])
    return np.sort(np.concatenate(picked))[:most]


def load(key: str, args) -> tuple[ImageSet, str]:
    from graphret.data import open_source

    if key == "mednist-jpeg":
        images = open_source(str(DATA / "mednist" / "jpeg_sample"), seed=0)
    elif key == "nih":
        images = open_source(str(NIH_CSV), seed=0)
    else:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_encoders import SETS as ENC_SETS, load_set

        ENC_SETS.setdefault("mednist", ("MedNIST", NPZ["mednist"]))
        images = load_set(key)
    note = images.split_origin or ""
    if args.max_train or args.max_test:
        keep = np.concatenate([bounded(images, "train", args.max_train, args.seed), bounded(images, "val", args.max_train and args.max_train // 9, args.seed),
                               bounded(images, "test", args.max_test, args.seed)])
        images = subset(images, keep)
        note += f"; subset: at most {args.max_train} train, {args.max_test} test (seeded, stratified)"
    return images, note


def model_spec(spec: str) -> tuple[str, dict]:
    """make_encoder's name and options of a ``--model`` SPEC: ``KIND:REF;option=value;...``
    (a value with commas is a list of floats; a number is a float or int)."""
    name, *pairs = spec.split(";")
    options: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if "," in value:
            options[key] = [float(v) for v in value.split(",")]
        else:
            options[key] = int(value) if value.isdigit() else float(value) if value.replace(".", "", 1).isdigit() else value
    return name, options


def encoder_row(row: str, models: dict[str, str] | None = None) -> tuple[str, dict]:
    """make_encoder's name and options of a row: a key of ENCODERS, with ``@SIZE`` for another
    input size (``finetuned@224``: the fine-tuned network on images upsampled to 224 px) and
    ``/work=W`` for another work budget in megapixels; or a ``--model`` label."""
    if models and row in models:
        return model_spec(models[row])
    row, _, work = row.partition("/work=")
    key, _, size = row.partition("@")
    name, options = ENCODERS[key]
    return name, {**options, **({"image_size": int(size)} if size else {}), **({"work": float(work)} if work else {})}


def run(key: str, row: str, images: ImageSet, args) -> dict:
    from graphret.encoders import make_encoder
    from graphret.encoders.training import training_indices

    name, options = encoder_row(row, args.models)
    torch_options = {} if name == "pixels" else {"threads": args.threads, "progress": args.progress}
    encoder = make_encoder(name, **options, **torch_options)
    train, validation = training_indices(images)
    test = images.indices_of(["test"])
    started = time.perf_counter()
    encoder.fit(images, train, seed=args.seed, validation=validation)
    fitted = time.perf_counter()
    archive = encoder.encode(images, train)
    queries = encoder.encode(images, test)
    done = time.perf_counter()
    a, q = archive.default, queries.default
    scores = q @ a.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :50]
    labels = np.asarray(images.labels)
    rel = relevance(labels[test], labels[train][top], mode="same")
    out = {"set": key, "encoder": row, "description": encoder.description, "n_train": int(len(train)), "n_test": int(len(test)),
           "acc1": float(rel[:, 0].mean()) if images.task == "multilabel" else float(accuracy_at_k(labels[test], labels[train][top], 1)), "p10": float(precision_at_k(rel, 10)), "p50": float(precision_at_k(rel, 50)),
           "fit_s": round(fitted - started, 1), "encode_s": round(done - fitted, 1), "build_s": round(done - started, 1),
           "image_size": getattr(encoder, "image_size", None) or getattr(getattr(encoder, "prep", None), "image_size", None)}
    history = getattr(encoder, "history", None)
    if history is not None:
        out.update(epochs=len(history.epochs), stopped=history.stopped)
    if row in args.models:
        out["model"] = args.models[row]
    if images.task == "multilabel" and queries.probabilities is not None:
        y = labels[test]
        out["mean_auroc"] = mean_auroc(queries.probabilities, y)
        sd, low, high = mean_auroc_spread(queries.probabilities, y, seed=args.seed)
        out["mean_auroc_spread"] = {"sd": round(sd, 4), "ci95": [round(low, 4), round(high, 4)], "draws": 1000}
        names = list(images.class_names) or [str(j) for j in range(y.shape[1])]
        out["label_auroc"] = {n: (None if v is None else round(v, 4)) for n, v in zip(names, label_aurocs(queries.probabilities, y))}
        out["label_test_positives"] = {n: int((y[:, j] == 1).sum()) for j, n in enumerate(names)}
    return out


def markdown(rows: list[dict], meta: dict) -> str:
    lines = ["# Pretrained initialisation, fine-tuned: flat retrieval (test split vs train archive)", "",
             f"Machine: {meta['machine']}; threads {meta['threads']}; {meta['date']}. Build = fit + encode seconds.", "",
             "| set | encoder | n train / test | size | Acc@1 | P@10 | P@50 | AUROC | build s | epochs |", "|---|---|---|---|---|---|---|---|---|---|"]
    # "**": the row a default build (no --encoder, no --backbone) gives on that set
    order = {k: i for i, k in enumerate(SETS)}
    enc_order = {k: i for i, k in enumerate(ENCODERS)}

    def encoder_key(name: str) -> tuple[int, int, str]:
        key, _, size = name.split(" ")[0].partition("/")[0].partition("@")
        return enc_order.get(key, 99), int(size or 0), name

    for r in sorted(rows, key=lambda r: (order.get(r["set"], 99), encoder_key(r["encoder"]))):
        auc = f"{r['mean_auroc']:.3f}" if r.get("mean_auroc") is not None else ""
        if r.get("mean_auroc_spread"):
            auc += f" (sd {r['mean_auroc_spread']['sd']:.3f})"
        mark = " **(default)**" if r.get("default_build") == r["encoder"] else ""
        lines.append(f"| {r['set']} | {r['encoder']}{mark} | {r['n_train']} / {r['n_test']} | {r.get('image_size') or ''} | {r['acc1']:.3f} | {r['p10']:.3f} | "
                     f"{r['p50']:.3f} | {auc} | {r['build_s']} | {r.get('epochs', '')} |")
    per_label = [r for r in rows if r.get("label_auroc")]
    if per_label:  # each label's AUROC, with its positives among the test queries
        names = list(per_label[0]["label_auroc"])
        positives = per_label[0]["label_test_positives"]
        lines += ["", "Per-label AUROC over the test queries (sd: the mean's spread over 1,000 bootstrap resamples of them):", "",
                  "| set | encoder | " + " | ".join(f"{n} ({positives[n]})" for n in names) + " |", "|---|---|" + "---|" * len(names)]
        for r in per_label:
            lines.append(f"| {r['set']} | {r['encoder']} | " + " | ".join("" if r["label_auroc"].get(n) is None else f"{r['label_auroc'][n]:.2f}" for n in names) + " |")
    notes = sorted({f"{r['set']}: {r['note']}" for r in rows if r.get("note")})
    lines += ["", "Splits and subsets:", *[f"- {n}" for n in notes], "",
              "Mahbod et al.'s best Acc@1 at 224 px: " + ", ".join(f"{k} {v:.3f}" for k, v in MAHBOD_224.items()), ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="breast,nih,retina,mednist-jpeg")
    ap.add_argument("--encoders", default=",".join(ENCODERS))
    ap.add_argument("--max-train", type=int, default=None, help="at most this many training items (seeded, stratified)")
    ap.add_argument("--max-test", type=int, default=None, help="at most this many test items")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=DEFAULT_TRAINING_OPTIONS["threads"], help="torch threads [the default build's]")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=SPEC",
                    help="a model you bring as a row: LABEL=KIND:REF[;option=value...], e.g. byo=onnx:m.onnx;mean=0.5;std=0.25")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    args.models = dict(m.split("=", 1) for m in args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pretrained.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    meta = {"machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", "threads": args.threads,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    for key in args.sets.split(","):
        images, note = load(key, args)
        for row in args.encoders.split(","):
            result = run(key, row, images, args)
            result["note"] = note
            result["default_build"] = DEFAULT_ROW[default_backbone(images)]
            print(json.dumps({k: v for k, v in result.items() if k != "description"}), flush=True)
            rows = [r for r in rows if (r["set"], r["encoder"]) != (key, row)] + [result]
            path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
            (out / "pretrained.md").write_text(markdown(rows, meta))


if __name__ == "__main__":
    main()
