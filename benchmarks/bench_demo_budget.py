"""Demo build time and quality for candidate default encoders (issue 14, item 6), with numba's
kernel cache cold or warm (issue 23: the demo builds in <= 60 s, also right after an install).

Each candidate is built in a fresh process (``build-graph`` on the embedded demo set through
:func:`graphret.build`), then benchmarked with :func:`graphret.evaluation.run_bench`
(flat and region modes, K = 10, exact label-set match).  Printed per run (one JSON line): wall
seconds of the build, its CPU seconds (the build process and the processes it waited for, e.g.
those compiling kernels ahead), the build's own step timings and peak RSS, the epochs trained,
P@10 and mAP@10, and the load average before and after (these machines are shared: compare runs
made side by side).

    python benchmarks/bench_demo_budget.py 'resnet18:time_limit=180' 'small:work=60' ...
    python benchmarks/bench_demo_budget.py 'small:work=60' --cache both --rounds 2 \\
        --code old=/tmp/main-export --code new=. --out benchmarks/results/demo-budget/cold.jsonl

A candidate is ``BACKBONE[:key=value,...]`` with cnn options (image_size, epochs, work,
time_limit, batch_size, lr).  ``--cache cold`` gives each build an empty numba cache
(``NUMBA_CACHE_DIR`` in a new temporary folder: what a fresh install pays); ``both`` builds cold
then warm (the same folder again); ``warm`` (default) uses numba's usual cache.  ``--code
LABEL=DIR`` runs the graphret checked out at DIR (e.g. a ``git archive`` of another commit);
several are interleaved round by round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, utc_stamp

CHILD = r"""
import json, sys, time, resource
def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
t0 = time.perf_counter()
import graphret
options = json.loads(sys.argv[1]); out = sys.argv[2]
manifest = graphret.build(None, out, overwrite=True, encoder="cnn", **options).manifest
wall, cpu_s = time.perf_counter() - t0, cpu()
from graphret.store import open_store
from graphret.evaluation import run_bench
res = run_bench(open_store(out), k=10, modes="flat,region", n_single=20)
rows = [{k: v for k, v in r.items() if k in ("mode", "P@10", "mAP@10", "MRR", "ACG@10")} for r in res.rows]
hist = manifest["encoder"]["config"].get("history") or {}
print(json.dumps({"wall_s": round(wall, 1), "cpu_s": round(cpu_s, 1), "build": manifest["build"],
                  "epochs": len(hist.get("epochs", [])), "stopped": hist.get("stopped"), "rows": rows,
                  "graphret": graphret.__file__}))
"""


def parse(spec: str) -> dict:
    backbone, _, rest = spec.partition(":")
    options: dict = {"backbone": backbone}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        options[key] = float(value) if key in ("work", "time_limit", "lr") else int(value)
    return options


def run_one(spec: str, code: Path, cache_dir: str | None) -> dict:
    """One build of candidate ``spec`` in a fresh process with the graphret at ``code``
    (numba's cache at ``cache_dir`` when given)."""
    env = dict(os.environ, PYTHONPATH=str(code))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an install runs: .pyc files written and read
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    with tempfile.TemporaryDirectory() as tmp:
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", CHILD, json.dumps(parse(spec)), os.path.join(tmp, "store")],
                             capture_output=True, text=True, cwd=code, env=env)
        total = time.perf_counter() - t0
        if run.returncode != 0:
            return {"candidate": spec, "error": run.stderr.strip().splitlines()[-1:]}
        result = json.loads(run.stdout.strip().splitlines()[-1])
        result.update(candidate=spec, process_s=round(total, 1), load_before=round(load0, 2),
                      load_after=round(os.getloadavg()[0], 2), utc=utc_stamp())
        return result


def main(specs: list[str], *, codes: dict[str, Path], cache: str, rounds: int, out: Path | None) -> None:
    for _ in range(rounds):
        for spec in specs:
            for label, code in codes.items():
                if cache == "warm":
                    runs = [("warm", None)]
                else:
                    folder = tempfile.mkdtemp(prefix="numba-cold-")
                    runs = [("cold", folder)] + ([("warm", folder)] if cache == "both" else [])
                for kind, folder in runs:
                    result = {"code": label, "cache": kind, **run_one(spec, code, folder)}
                    line = json.dumps(result)
                    print(line, flush=True)
                    if out is not None:
                        with open(out, "a") as f:
                            f.write(line + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("candidates", nargs="+", metavar="BACKBONE[:key=value,...]",
                        help="candidate default encoders, e.g. 'small:work=60' 'resnet18:time_limit=180' (cnn options: "
                             "image_size, epochs, work, time_limit, batch_size, lr)")
    parser.add_argument("--cache", choices=("warm", "cold", "both"), default="warm",
                        help="numba's kernel cache: as it is (warm), empty (cold), or cold then warm")
    parser.add_argument("--code", action="append", default=[], metavar="LABEL=DIR",
                        help="build with the graphret at DIR (repeat to interleave; default: this checkout)")
    parser.add_argument("--rounds", type=int, default=1, help="times each candidate and code is built (interleaved)")
    parser.add_argument("--out", type=Path, help="append each run's JSON line to this file")
    args = parser.parse_args()
    codes = {}
    for item in args.code:
        label, sep, folder = item.partition("=")
        if not sep or not (Path(folder) / "graphret" / "__init__.py").is_file():
            parser.error(f"--code {item!r}: give LABEL=DIR with DIR a checkout holding graphret/")
        codes[label] = Path(folder).resolve()
    main(args.candidates, codes=codes or {"this": ROOT}, cache=args.cache, rounds=args.rounds, out=args.out)
