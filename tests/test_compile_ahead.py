"""The graph steps' kernels compiled ahead in other processes when numba's cache is cold
(graphret.api.ahead; issue 23: the demo builds in <= 60 s right after an install)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from graphret.api import ahead as ahead_mod
from graphret.api.ahead import CompileAhead, compiled_ahead, sample_rows
from graphret.api.config import BuildConfig
from tests.synthetic import blob_images

REPO = Path(__file__).resolve().parents[1]

# In a fresh process with an empty numba cache: the kNN step is cold; a process compiles it
# while this one waits; then this process's kNN graph (other codes, another size) compiles nothing.
SCRIPT = r"""
import json, numpy as np
from numba.core import event
from graphret.api.ahead import cold_groups, compiled_ahead
from graphret.api.config import BuildConfig
from tests.synthetic import blob_images
from graphret.graph.build import knn_graph_with_stats
config = BuildConfig.from_options(communities=(), walk=False, knn="exact")
before = cold_groups(config, 300)
lines = []
with compiled_ahead(config, 300, lines.append) as ahead:
    started = len(ahead.processes)
    ok = ahead.wait()
after = cold_groups(config, 300)
compiled = []
class Listener(event.Listener):
    def on_start(self, ev): compiled.append(ev.data["dispatcher"].py_func.__qualname__)
    def on_end(self, ev): pass
event.register("numba:compile", Listener())
codes = np.random.default_rng(5).standard_normal((257, 12)).astype(np.float32)
codes /= np.linalg.norm(codes, axis=1, keepdims=True)
graph, stats = knn_graph_with_stats(codes, 7, method="exact")
print(json.dumps({"before": before, "started": started, "ok": ok, "after": after, "compiled": compiled,
                  "edges": stats["edges"], "lines": lines}))
"""


def test_a_cold_knn_step_compiles_in_another_process_and_the_build_then_compiles_nothing(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1",
               GRAPHRET_COMPILE_AHEAD="1")
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["before"] == [["knn", "communities"]]
    assert out["started"] == 1 and out["ok"] is True
    assert out["after"] == []
    assert out["compiled"] == []  # loaded from the cache the other process wrote
    assert out["edges"] > 0
    assert "graph kernels compiled ahead" in out["lines"][-1]


def test_a_warm_cache_or_the_switch_off_or_unset_starts_no_process(monkeypatch):
    monkeypatch.setenv("GRAPHRET_COMPILE_AHEAD", "1")
    monkeypatch.setattr(ahead_mod, "cold_groups", lambda config, n: [])
    with compiled_ahead(BuildConfig(), 500, print) as ahead:
        assert ahead.processes == []
        assert ahead.wait() is True
    monkeypatch.setattr(ahead_mod, "cold_groups", lambda config, n: [("walk",)])
    monkeypatch.setenv("GRAPHRET_COMPILE_AHEAD", "0")  # turned off
    with compiled_ahead(BuildConfig(), 500, print) as ahead:
        assert ahead.processes == []
    monkeypatch.delenv("GRAPHRET_COMPILE_AHEAD")  # off unless asked for
    with compiled_ahead(BuildConfig(), 500, print) as ahead:
        assert ahead.processes == []


def test_a_failing_process_is_logged_and_the_build_compiles_the_kernels_itself(tmp_path, monkeypatch):
    import graphret

    monkeypatch.setenv("GRAPHRET_COMPILE_AHEAD", "1")
    monkeypatch.setattr(ahead_mod, "cold_groups", lambda config, n: [("walk",)])
    monkeypatch.setattr(ahead_mod.sys, "executable", "/bin/false")  # the process exits 1 at once
    lines: list[str] = []
    store = graphret.build(blob_images(n_per_class=20, n_classes=3, seed=4), str(tmp_path / "store"), k=5,
                           encoder="pixels", image_size=16, dim=12, log=lines.append)
    assert any("compiling the walk kernels ahead failed (exit 1" in line and "compiling them here" in line for line in lines)
    assert store.manifest["counts"]["items"] == 60
    assert store.manifest["walk"]["edges"] > 0  # the build compiled (or loaded) the walk kernels itself
    assert "compile_wait" in store.manifest["build"]["seconds"]


def test_a_process_outlasting_the_wait_is_ended_and_logged(tmp_path):
    lines: list[str] = []
    ahead = CompileAhead(lines.append)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ahead.processes.append((("knn", "communities"), sleeper, tmp_path / "log"))
    assert ahead.wait(timeout=0.2) is False
    assert sleeper.poll() is not None  # ended, not left running
    assert "took over 0 s; compiling them here" in lines[-1]
    assert ahead.processes == []


def test_generated_codes_take_the_builds_code_paths():
    config = BuildConfig()  # knn auto: exact up to 20,000 codes; full walk lists up to 100,000
    assert sample_rows(config, 1_400) == 1_400
    assert sample_rows(config, 15_000) == 2_000
    assert sample_rows(config, 30_000) is None  # faiss for the archive, exact for 2,000: nothing compiled ahead
    assert sample_rows(BuildConfig.from_options(knn="exact"), 60_000) is None  # community layout above 50,000
    assert sample_rows(BuildConfig.from_options(knn="exact"), 40_000) == 2_000
