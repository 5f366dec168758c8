"""Where the decomposing encoder's detector errs on the demo set (issue 24): what limits exact-set retrieval.

The abnormal code is the finding-set code, so an image is retrieved with the right finding set only
when the detector decides its *whole* set right.  For a saved demo model (``bench_decompose.py
--save-models DIR`` writes ``DIR/decompose-demo.pt``) this reports, on the test split:

* per finding, the misses and false findings by anatomy (decided = image-level logit above the
  decision logit calibrated on the held-out split, as the codes decide);
* which finding a missed one was taken for (a false finding on the same image);
* how many findings each image gets wrong, and the share decided exactly right on the test split
  and on the training split (without augmentation): a model that gets the training images no
  more right than the test images is limited by what it learned, not by over-fitting;
* the logit margin of the misses (how far below its decision logit a missed finding stayed).

    python benchmarks/decompose_errors.py --model DIR/decompose-demo.pt [--name default-seed0]

Results: benchmarks/results/decompose/errors.md (one section per --name, replaced on a rerun) and errors.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "decompose"


def decided(enc, images, rows: np.ndarray) -> np.ndarray:
    """The findings the codes decide on: image-level logit above the decision logit."""
    return enc.image_logits(images, rows) > np.asarray(enc.net.spec.shifts)[None, :]


def analyse(enc, images) -> dict:
    """The error tables of one model on the demo's test split (see the module docstring)."""
    from graphret.data.demo import ANATOMIES

    train, test = images.indices_of(["train"]), images.indices_of(["test"])
    names = list(images.class_names)
    truth = np.asarray(images.labels)[test] == 1
    anatomy = np.asarray(images.metadata["anatomy"])[test]
    logits = enc.image_logits(images, test)
    shifts = np.asarray(enc.net.spec.shifts)
    got = logits > shifts[None, :]
    missed, false = truth & ~got, ~truth & got
    per_finding = {}
    for c, name in enumerate(names):
        per_finding[name] = {
            "positives": int(truth[:, c].sum()), "missed": int(missed[:, c].sum()), "false": int(false[:, c].sum()),
            "by_anatomy": {a: {"positives": int(truth[anatomy == a, c].sum()), "missed": int(missed[anatomy == a, c].sum()),
                               "false": int(false[anatomy == a, c].sum())} for a in ANATOMIES},
            "taken_for": {names[k]: int((missed[:, c] & false[:, k]).sum()) for k in range(len(names)) if k != c and (missed[:, c] & false[:, k]).any()},
            "missed_margin_median": float(np.median(logits[missed[:, c], c] - shifts[c])) if missed[:, c].any() else None,
        }
    train_truth = np.asarray(images.labels)[train] == 1
    return {
        "per_finding": per_finding,
        "wrong_findings_per_image": np.bincount((got != truth).sum(axis=1), minlength=len(names) + 1).tolist(),
        "exact_set_test": float((got == truth).all(axis=1).mean()),
        "exact_set_train": float((decided(enc, images, train) == train_truth).all(axis=1).mean()),
        "images_test": int(len(test)), "images_train": int(len(train)),
    }


def section(name: str, model: str, r: dict) -> str:
    lines = [f"## {name}", "", f"Model: `{model}`. Test split: {r['images_test']} images.", "",
             "| finding | positives | missed | false | missed by anatomy (head / chest / abdomen / hand) | false by anatomy | missed ones taken for | missed: median logit margin |",
             "|---|---|---|---|---|---|---|---|"]
    for f, v in r["per_finding"].items():
        by = v["by_anatomy"]
        missed = " / ".join(f"{by[a]['missed']} of {by[a]['positives']}" for a in by)
        false = " / ".join(str(by[a]["false"]) for a in by)
        taken = ", ".join(f"{k} {n}" for k, n in v["taken_for"].items()) or "-"
        margin = "-" if v["missed_margin_median"] is None else f"{v['missed_margin_median']:.2f}"
        lines.append(f"| {f} | {v['positives']} | {v['missed']} | {v['false']} | {missed} | {false} | {taken} | {margin} |")
    counts = r["wrong_findings_per_image"]
    lines += ["", f"Images by number of findings decided wrong (0, 1, 2, ...): {', '.join(map(str, counts))}.",
              f"Whole finding set decided right: test split {r['exact_set_test']:.3f}, training split (no augmentation, "
              f"{r['images_train']} images) {r['exact_set_train']:.3f}.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a demo model saved by bench_decompose.py --save-models (decompose-demo.pt)")
    ap.add_argument("--name", default="default build, seed 0", help="the section's title in errors.md")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from graphret.data.demo import load_demo
    from graphret.encoders import load_encoder

    enc = load_encoder(args.model, expect="decompose")
    enc.train_cfg = dataclasses.replace(enc.train_cfg, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = analyse(enc, load_demo(seed=0))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "errors.json"
    runs = json.loads(path.read_text()) if path.exists() else {}
    runs[args.name] = {"model": args.model, **r}
    path.write_text(json.dumps(runs, indent=1))
    header = "# Where the demo detector errs (benchmarks/decompose_errors.py)\n\n" + __doc__.split("\n\n")[1] + "\n\n"
    (out / "errors.md").write_text(header + "\n".join(section(k, v["model"], v) for k, v in runs.items()))
    print((out / "errors.md").read_text())


if __name__ == "__main__":
    main()
