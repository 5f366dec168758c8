"""Variants of the decomposing encoder on the demo set (issue 24), beside the default build, over seeds.

A change of the default build must beat it on more than one seed: the spread between seeds
(about +-0.02 in exact-set accuracy) is as large as the effects measured.  Two steps:

* ``--train DIR [--option KEY=VALUE ...] [--seed S]``: fit the demo's decomposing encoder with
  those options (one thread, timed as bench_decompose.py times the default build) and save it as
  ``DIR/decompose-demo.pt`` with its training times in ``DIR/decompose-demo.json`` (what
  ``bench_decompose.py --load-models DIR`` reads); then measure it with
  ``bench_decompose.py --parts demo --load-models DIR --out DIR/out``.
* ``--cpu-ratio [--option KEY=VALUE ...]``: the CPU cost of the default build against the build
  with those options, as short fits (4 epochs: 2 warm-up, 2 quantised; no null space) of the
  demo interleaved in one process, twice each: the ratio of their summed CPU seconds, with the
  load average (timings on the shared machine are only comparable within one run).
* ``--encode-ratio MODEL``: the CPU cost of encoding the demo's 2,000 images with the saved model
  ``MODEL`` (``shift_average`` on: 8 test-time views of the detector) against the same weights with
  it off (2 views), interleaved in one process, twice each.
* ``--collect NAME=DIR ...``: one row per measured model (its ``DIR/out/decompose.json``): training
  CPU seconds and epochs, the share of test images whose whole finding set is decided right,
  the issue's retrieval figures and the per-finding AUC / Dice; written to
  benchmarks/results/decompose/variants.md and variants.json (rows replaced by name).

    python benchmarks/decompose_variants.py --train /tmp/v/ctx-s1 --option seg_context=2 --option select_epoch=exact_set --seed 1
    python benchmarks/bench_decompose.py --parts demo --load-models /tmp/v/ctx-s1 --out /tmp/v/ctx-s1/out
    python benchmarks/decompose_variants.py --collect "seg_context 2 + exact_set, seed 1=/tmp/v/ctx-s1"
    python benchmarks/decompose_variants.py --cpu-ratio --option seg_context=0 --option select_epoch=loss
    python benchmarks/decompose_variants.py --encode-ratio /tmp/v/ctx-s1/decompose-demo.pt
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "results" / "decompose"


def _value(text: str):
    """An option's value: JSON when it parses (numbers, true / false), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def train(folder: Path, options: dict, seed: int) -> None:
    """Fit and save one demo model with ``options`` (see the module docstring)."""
    import torch

    from graphret.data.demo import load_demo
    from graphret.encoders.decompose import DecomposingEncoder

    torch.set_num_threads(1)
    d = load_demo(seed=0)
    enc = DecomposingEncoder(threads=1, **options)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enc.fit(d, d.indices_of(["train"]), seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    folder.mkdir(parents=True, exist_ok=True)
    enc.save(folder / "decompose-demo.pt")
    (folder / "decompose-demo.json").write_text(json.dumps({"train_wall_s": wall, "train_cpu_s": cpu, "options": options, "seed": seed}))


def cpu_ratio(options: dict, reps: int = 2) -> dict:
    """CPU seconds of short demo fits, the default build and the one with ``options`` interleaved."""
    import os

    import torch

    from graphret.data.demo import load_demo
    from graphret.encoders.decompose import DecomposingEncoder

    torch.set_num_threads(1)
    d = load_demo(seed=0)
    train = d.indices_of(["train"])
    load = os.getloadavg()
    cpu: dict[str, list[float]] = {"default": [], "options": []}
    for _ in range(reps):
        for key, opts in (("options", options), ("default", {})):
            enc = DecomposingEncoder(threads=1, epochs=4, vq_warmup=0.5, null_directions=0, **opts)
            c0 = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                enc.fit(d, train, seed=0)
            cpu[key].append(time.process_time() - c0)
    return {"options": options, "cpu_s": cpu, "ratio_default_over_options": sum(cpu["default"]) / sum(cpu["options"]),
            "load_average": [list(load), list(os.getloadavg())]}


def encode_ratio(model: str, reps: int = 2) -> dict:
    """CPU seconds of encoding the demo's 2,000 images with ``model``'s weights, ``shift_average``
    on and off (its decision logits as saved: the codes are not compared, only the cost), interleaved."""
    import os

    import torch

    from graphret.data.demo import load_demo
    from graphret.encoders import load_encoder
    from graphret.encoders.decompose import DecomposingEncoder

    torch.set_num_threads(1)
    d = load_demo(seed=0)
    saved = load_encoder(model, expect="decompose")
    config, state = saved.config(), saved.state()
    encoders = {key: DecomposingEncoder.from_state({**config, "shift_average": key == "on"}, state) for key in ("on", "off")}
    load = os.getloadavg()
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(reps):
        for key, enc in encoders.items():
            c0 = time.process_time()
            enc.encode(d)
            cpu[key].append(time.process_time() - c0)
    return {"model": model, "images": len(d), "cpu_s": cpu, "ratio_on_over_off": sum(cpu["on"]) / sum(cpu["off"]),
            "load_average": [list(load), list(os.getloadavg())]}


def row(name: str, folder: Path) -> dict:
    """The figures of one measured model (``folder/out/decompose.json`` from bench_decompose.py)."""
    rows = json.loads((folder / "out" / "decompose.json").read_text())["rows"]
    by = {(r["part"], r.get("space")): r for r in rows}
    ab, no, heads, comp = by[("demo", "abnormal")], by[("demo", "normal")], by[("demo-heads", None)], by[("composite", None)]
    meta = json.loads((folder / "decompose-demo.json").read_text())
    return {"name": name, "folder": str(folder), "options": meta.get("options", meta.get("opts")), "seed": meta.get("seed"),
            "train_cpu_s": ab["train_cpu_s"], "epochs_run": ab.get("epochs_run"), "exact_set_accuracy": heads["exact_set_accuracy"],
            "abnormal_p10_findings": ab["p10_findings"], "abnormal_p10_anatomy": ab["p10_anatomy"],
            "normal_p10_anatomy": no["p10_anatomy"], "normal_p10_findings": no["p10_findings"],
            "composite_findings_of_B": comp["share_findings_of_B"], "composite_anatomy_of_A": comp["share_anatomy_of_A"],
            "composite_both": comp["share_both"], "findings": heads["findings"], "auc": heads["auc"], "dice": heads["dice"],
            "accuracy": heads["accuracy"]}


def write(rows: list[dict], out: Path, cpu: list[dict] | None = None, encode: list[dict] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "variants.json").write_text(json.dumps({"rows": rows, "cpu": cpu or [], "encode": encode or []}, indent=1))
    lines = ["# Decomposing-encoder variants on the demo set (issue 24)", "",
             "Made by benchmarks/decompose_variants.py (see its docstring for the commands); each model measured by "
             "`bench_decompose.py --parts demo --load-models DIR` (test split as queries, train split as the archive, K 10; "
             "composite: the bench's 300 seeded pairs). Goals: abnormal findings P@10 >= 0.80, composite B's findings >= 0.70, "
             "normal anatomy >= 0.95, normal findings <= 0.204, abnormal anatomy <= 0.35, AUC >= 0.95 and Dice >= 0.6 per finding, "
             "<= 600 CPU s. CPU seconds were measured on the shared 2-core machine (load average 6-16).", "",
             "| model | CPU s | epochs run | exact set | abnormal P@10 findings / anatomy | normal P@10 anatomy / findings "
             "| composite B's findings / A's anatomy / both | nodule AUC | lowest AUC | lowest Dice |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['train_cpu_s']:.0f} | {r['epochs_run']} | {r['exact_set_accuracy']:.3f} "
                     f"| {r['abnormal_p10_findings']:.3f} / {r['abnormal_p10_anatomy']:.3f} | {r['normal_p10_anatomy']:.3f} / {r['normal_p10_findings']:.3f} "
                     f"| {r['composite_findings_of_B']:.3f} / {r['composite_anatomy_of_A']:.3f} / {r['composite_both']:.3f} "
                     f"| {r['auc'][0]:.3f} | {min(r['auc']):.3f} | {min(r['dice']):.3f} |")
    if cpu:
        lines += ["", "CPU of the default build against other options (`--cpu-ratio`: short fits interleaved in one process):", ""]
        for c in cpu:
            shown = ", ".join(f"{k}={v}" for k, v in c["options"].items())
            lines.append(f"* against {shown}: default / other = {c['ratio_default_over_options']:.3f} (CPU s default "
                         f"{' + '.join(f'{v:.1f}' for v in c['cpu_s']['default'])}, other {' + '.join(f'{v:.1f}' for v in c['cpu_s']['options'])}; "
                         f"load average {c['load_average'][0][0]:.1f} at the start, {c['load_average'][1][0]:.1f} at the end).")
    if encode:
        lines += ["", "Encoding cost of shift_average (`--encode-ratio`: the same weights, encoding the demo's images, interleaved in one process):", ""]
        for e in encode:
            lines.append(f"* {e['model']}, {e['images']} images: on / off = {e['ratio_on_over_off']:.2f} (CPU s on "
                         f"{' + '.join(f'{v:.1f}' for v in e['cpu_s']['on'])}, off {' + '.join(f'{v:.1f}' for v in e['cpu_s']['off'])}; "
                         f"load average {e['load_average'][0][0]:.1f} at the start, {e['load_average'][1][0]:.1f} at the end).")
    (out / "variants.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", default=None, help="folder to save one trained demo model in")
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE: a DecomposingEncoder option of --train (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="the fit's seed (--train)")
    ap.add_argument("--collect", nargs="*", default=[], help="NAME=DIR of models measured by bench_decompose.py --out DIR/out")
    ap.add_argument("--cpu-ratio", action="store_true", help="time short fits of the default build against --option's")
    ap.add_argument("--encode-ratio", default=None, metavar="MODEL", help="time encoding with a saved model's weights, shift_average on and off")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    bad = [o for o in args.option if "=" not in o]
    if bad:
        raise SystemExit(f"--option takes KEY=VALUE, got {bad[0]!r}; e.g. --option seg_context=2")
    options = {k: _value(v) for k, v in (o.split("=", 1) for o in args.option)}
    if args.train:
        train(Path(args.train), options, args.seed)
    out = Path(args.out)
    path = out / "variants.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    rows, cpu, encode = saved.get("rows", []), saved.get("cpu", []), saved.get("encode", [])
    if args.cpu_ratio:
        cpu = [c for c in cpu if c["options"] != options] + [cpu_ratio(options)]
        write(rows, out, cpu, encode)
    if args.encode_ratio:
        if not Path(args.encode_ratio).is_file():
            raise SystemExit(f"--encode-ratio takes a saved demo model (DIR/decompose-demo.pt), got {args.encode_ratio!r}")
        encode = [e for e in encode if e["model"] != args.encode_ratio] + [encode_ratio(args.encode_ratio)]
        write(rows, out, cpu, encode)
    if args.collect:
        for item in args.collect:
            name, sep, folder = item.rpartition("=")
            if not sep or not (Path(folder) / "out" / "decompose.json").exists():
                raise SystemExit(f"--collect takes NAME=DIR with DIR/out/decompose.json (bench_decompose.py --load-models DIR --out DIR/out), got {item!r}")
            rows = [r for r in rows if r["name"] != name] + [row(name, Path(folder))]
        write(rows, out, cpu, encode)
    if args.cpu_ratio or args.collect or args.encode_ratio:
        print((out / "variants.md").read_text())


if __name__ == "__main__":
    main()
