"""Where a cold build's numba compile time goes (issue 23: the demo builds in <= 60 s after an
install): the demo build (``small:work=60``) in a fresh process with an empty numba cache
(``NUMBA_CACHE_DIR`` in a new temporary folder), recording numba's compile events
(``numba.core.event``, kind ``numba:compile``; compiled in the build's own process, not ahead
in others): for each function and type signature, the
seconds (wall and this process's CPU) spent compiling it, its callees' compiles taken out, and
which graph step's entry kernel it was compiled under.

    python benchmarks/bench_kernel_compile.py --out benchmarks/results/demo-budget
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, load_average, utc_stamp

CHILD = r"""
import json, sys, time, tempfile, os
t0 = time.perf_counter()
from numba.core import event
stack, records = [], []
class Listener(event.Listener):
    def on_start(self, ev):
        stack.append([time.perf_counter(), time.process_time(), 0.0, 0.0])
    def on_end(self, ev):
        wall0, cpu0, child_wall, child_cpu = stack.pop()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if stack:
            stack[-1][2] += wall; stack[-1][3] += cpu
        func = getattr(ev.data["dispatcher"], "py_func", None)
        records.append({"function": f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', '?')}",
                        "signature": str(ev.data.get("args")), "wall_s": wall - child_wall, "cpu_s": cpu - child_cpu,
                        "total_wall_s": wall, "depth": len(stack), "at_s": wall0 - t0})
event.register("numba:compile", Listener())
import graphret
import graphret.api.ahead as ahead
ahead.cold_groups = lambda config, n: []  # compile here, as before graphret.api.ahead: the events are this process's
manifest = graphret.build(None, os.path.join(tempfile.mkdtemp(), "store"), overwrite=True, encoder="cnn",
                          backbone="small", work=60.0).manifest
print(json.dumps({"steps": manifest["build"]["seconds"], "records": records, "wall_s": time.perf_counter() - t0,
                  "cpu_s": time.process_time()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    load0 = load_average()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("NUMBA_NUM_THREADS", "1")
        run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, cwd=ROOT)
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    out = json.loads(run.stdout.strip().splitlines()[-1])
    records = out["records"]
    tops = [r for r in records if r["depth"] == 0]
    by_function: dict[str, dict] = {}
    for r in records:
        top = next((t for t in tops if t["at_s"] <= r["at_s"] <= t["at_s"] + t["total_wall_s"]), r)
        row = by_function.setdefault(r["function"], {"function": r["function"], "signatures": set(), "compiles": 0,
                                                     "wall_s": 0.0, "cpu_s": 0.0, "under": top["function"].rsplit(".", 2)[-2:]})
        row["signatures"].add(r["signature"])
        row["compiles"] += 1
        row["wall_s"] += r["wall_s"]
        row["cpu_s"] += r["cpu_s"]
    rows = sorted(({**row, "signatures": len(row["signatures"]), "under": ".".join(row["under"]), "wall_s": round(row["wall_s"], 2),
                    "cpu_s": round(row["cpu_s"], 2)} for row in by_function.values()), key=lambda row: -row["cpu_s"])
    result = {"date": utc_stamp(), "load": [load0, load_average()], "steps": out["steps"], "build_wall_s": round(out["wall_s"], 1),
              "build_cpu_s": round(out["cpu_s"], 1), "compiles": len(records),
              "compile_wall_s": round(sum(r["wall_s"] for r in records), 1), "compile_cpu_s": round(sum(r["cpu_s"] for r in records), 1),
              "entry_kernels": [{"function": t["function"], "wall_s": round(t["total_wall_s"], 2)} for t in tops], "functions": rows,
              "command": "python benchmarks/bench_kernel_compile.py " + " ".join(sys.argv[1:])}
    print(json.dumps({k: v for k, v in result.items() if k != "functions"}, indent=1))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "kernel_compile.json").write_text(json.dumps(result, indent=1) + "\n")
        lines = [f"# Where a cold demo build's numba compile time goes ({result['date']})", "",
                 f"Load average {result['load'][0]} -> {result['load'][1]}; build {result['build_wall_s']} s wall, "
                 f"{result['build_cpu_s']} s CPU, of which compiling {result['compile_wall_s']} s wall, {result['compile_cpu_s']} s CPU "
                 f"({result['compiles']} compiles). Steps: {result['steps']}. Command: `{result['command']}`.", "",
                 "Entry kernels (compiled with their callees): " + ", ".join(f"{t['function']} {t['wall_s']} s" for t in result["entry_kernels"]), "",
                 "| function | compiled under | signatures | compiles | own CPU s | own wall s |", "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {r['function']} | {r['under']} | {r['signatures']} | {r['compiles']} | {r['cpu_s']} | {r['wall_s']} |"
                  for r in rows if r["cpu_s"] >= 0.1]
        (args.out / "kernel_compile.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
