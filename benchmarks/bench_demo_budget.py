"""Demo build time and quality for candidate default encoders (issue 14, item 6).

Each candidate is built in a fresh process (``build-graph`` on the embedded demo set through
:func:`graphret.build`), then benchmarked with :func:`graphret.evaluation.run_bench`
(flat and region modes, K = 10, exact label-set match).  Printed per candidate: wall seconds of
the build, the build's own step timings and peak RSS, the epochs trained, P@10 and mAP@10, and
the load average before and after (these machines are shared: compare runs made side by side).

    python benchmarks/bench_demo_budget.py 'resnet18:time_limit=180' 'small:work=60' ...

A candidate is ``BACKBONE[:key=value,...]`` with cnn options (image_size, epochs, work,
time_limit, batch_size, lr).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time, resource
t0 = time.perf_counter()
import graphret
options = json.loads(sys.argv[1]); out = sys.argv[2]
manifest = graphret.build(None, out, overwrite=True, encoder="cnn", **options).manifest
wall = time.perf_counter() - t0
from graphret.store import open_store
from graphret.evaluation import run_bench
res = run_bench(open_store(out), k=10, modes="flat,region", n_single=20)
rows = [{k: v for k, v in r.items() if k in ("mode", "P@10", "mAP@10", "MRR", "ACG@10")} for r in res.rows]
hist = manifest["encoder"]["config"].get("history") or {}
print(json.dumps({"wall_s": round(wall, 1), "build": manifest["build"], "epochs": len(hist.get("epochs", [])),
                  "stopped": hist.get("stopped"), "rows": rows}))
"""


def parse(spec: str) -> dict:
    backbone, _, rest = spec.partition(":")
    options: dict = {"backbone": backbone}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        options[key] = float(value) if key in ("work", "time_limit", "lr") else int(value)
    return options


def main(specs: list[str]) -> None:
    for spec in specs:
        options = parse(spec)
        with tempfile.TemporaryDirectory() as tmp:
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(options), os.path.join(tmp, "store")],
                                 capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            total = time.perf_counter() - t0
            if run.returncode != 0:
                print(json.dumps({"candidate": spec, "error": run.stderr.strip().splitlines()[-1:]}), flush=True)
                continue
            result = json.loads(run.stdout.strip().splitlines()[-1])
            result.update(candidate=spec, process_s=round(total, 1), load_before=round(load0, 2), load_after=round(os.getloadavg()[0], 2))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", metavar="BACKBONE[:key=value,...]",
                        help="candidate default encoders, e.g. 'small:work=60' 'resnet18:time_limit=180' (cnn options: "
                             "image_size, epochs, work, time_limit, batch_size, lr)")
    main(parser.parse_args().candidates)
