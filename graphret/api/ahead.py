"""The graph steps' numba kernels compiled ahead, in other processes, while a build encodes.

numba compiles a kernel on its first call and keeps it on disk (``cache=True``), so the first
build after an install (a fresh checkout, CI) compiles the kNN, CNM and walk-list kernels one
after another once its encoder is trained: ~30 s of a 50-60 s demo build on a quiet machine
(benchmarks/results/demo-budget).  A thread cannot overlap that with the training (numba's
compiler holds the GIL).  So, when numba's cache lacks them, :func:`compiled_ahead` starts two
processes (:mod:`graphret.api.warmup`) that run the graph steps on at most :data:`SAMPLE_ROWS`
generated codes taking the build's code paths (kNN method, walk effort, community layout), hence
the same kernels with the same types: one builds the kNN graph and the communities, the other
the walk lists (over a kNN graph computed with numpy).  The build waits for them before its own graph steps, which then load the kernels
from the cache.  The two compile disjoint kernels, and the build compiles none while they run,
so no two processes write one kernel's cache index at once.  A process that fails or outlasts
:data:`WAIT_S` is logged and ended; the build then compiles what is missing itself, as before.
It is off unless ``GRAPHRET_COMPILE_AHEAD=1`` (:data:`SWITCH`): on 2 cores the encoder trains on
both, so the processes slow its training about as much as they save (quiet machine, demo cold:
44.6 / 48.3 s with them against 44.5 / 44.4 s without, +33-40 CPU s); it pays where cores are
idle during the training (more cores than the training's threads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from graphret.api.config import BuildConfig
from graphret.graph import layout
from graphret.graph.build import resolve_method
from graphret.graph.search_graph import walk_effort
from graphret.kernels.jit import Kernel
from graphret.params import flat_options

__all__ = ["compiled_ahead", "CompileAhead", "cold_groups", "sample_rows", "GROUPS", "SAMPLE_ROWS", "SAMPLE_DIM", "WAIT_S", "SWITCH"]

Log = Callable[[str], None]

#: the graph steps each process runs; a process starts only when one of its steps' kernels is
#: missing from numba's cache (:func:`cold_groups`)
GROUPS: tuple[tuple[str, ...], ...] = (("knn", "communities"), ("walk",))
#: most generated codes a process builds over (:func:`sample_rows`)
SAMPLE_ROWS = 2_000
#: dimension of the generated codes (a kernel's types do not depend on it)
SAMPLE_DIM = 8
#: longest wait (seconds) for the processes once the build reaches its graph steps
WAIT_S = 600.0
#: the environment variable that turns compiling ahead off ("0"): on 2 cores already busy with other
#: jobs (load 3-5) the two processes slowed the encoder's training about as much as they saved
#: (benchmarks/results/demo-budget); on idle ones the demo built cold in 32 s against 55 s
SWITCH = "GRAPHRET_COMPILE_AHEAD"


def _step_kernels(config: BuildConfig, n: int) -> dict[str, list[Kernel]]:
    """The kernels whose presence in the cache says that a graph step has been compiled for
    this configuration and archive size (the entry kernels of the paths the build takes)."""
    out: dict[str, list[Kernel]] = {"knn": [], "communities": [], "walk": []}
    if resolve_method(config.graph.knn, n) == "exact":
        from graphret.graph.topk import _topk_rows_kernel

        out["knn"].append(_topk_rows_kernel)
    if "cnm" in config.communities.methods:
        from graphret.communities.cnm import _cnm_kernel

        out["communities"].append(_cnm_kernel)
    if config.graph.walk:
        from graphret.graph import search_graph as sg

        effort = walk_effort(n, passes=config.graph.walk_passes, expand=config.graph.walk_expand,
                             local_passes=config.graph.walk_local, candidates=config.graph.walk_candidates)
        out["walk"] += [sg._forward_kernel, sg._merge_kernel] + ([sg._refine_kernel] if effort.passes else [])
    return out


def cold_groups(config: BuildConfig, n: int) -> list[tuple[str, ...]]:
    """The :data:`GROUPS` with a step whose kernels numba's cache lacks (for ``n`` archive
    items under ``config``)."""
    kernels = _step_kernels(config, n)
    return [group for group in GROUPS if any(kernel.cache_missing() for step in group for kernel in kernels[step])]


def sample_rows(config: BuildConfig, n: int) -> int | None:
    """How many generated codes take the build's code paths for ``n`` archive items: at most
    :data:`SAMPLE_ROWS`, when the kNN method, the walk effort and the community layout come out
    the same for that many as for ``n``; None when they do not (a large archive, whose build
    dwarfs the compile: nothing is compiled ahead)."""
    m = min(n, SAMPLE_ROWS)
    g = config.graph

    def paths(rows: int) -> tuple:
        return (resolve_method(g.knn, rows), walk_effort(rows, passes=g.walk_passes, expand=g.walk_expand,
                                                         local_passes=g.walk_local, candidates=g.walk_candidates), layout.pays(rows))

    return m if paths(m) == paths(n) else None


def _options(config: BuildConfig) -> dict[str, Any]:
    """The flat options of the config's graph, communities and seed (all a process needs)."""
    flat = config.flat()
    return {name: flat[name] for name, (path, _) in flat_options(BuildConfig).items()
            if path[0] in ("graph", "communities", "seed")}


@dataclass
class CompileAhead:
    """The processes compiling the graph steps' kernels (:func:`compiled_ahead`)."""

    log: Log
    processes: list[tuple[tuple[str, ...], subprocess.Popen, Path]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def wait(self, timeout: float = WAIT_S) -> bool:
        """Wait (at most ``timeout`` seconds in all) for every process; True when all
        succeeded.  A failed or late one is logged (and ended): the build compiles instead."""
        if not self.processes:
            return True
        if any(p.poll() is None for _, p, _ in self.processes):
            self.log("waiting for the graph kernels compiling in other processes")
        deadline = time.perf_counter() + timeout
        ok = True
        for group, process, output in self.processes:
            try:
                code = process.wait(timeout=max(deadline - time.perf_counter(), 0.0))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                self.log(f"compiling the {'+'.join(group)} kernels ahead took over {timeout:.0f} s; compiling them here")
                ok = False
                continue
            if code != 0:
                lines = output.read_text(errors="replace").strip().splitlines() if output.exists() else []
                self.log(f"compiling the {'+'.join(group)} kernels ahead failed (exit {code}: "
                         f"{lines[-1] if lines else 'no message'}); compiling them here")
                ok = False
        if ok:
            self.log(f"graph kernels compiled ahead in {time.perf_counter() - self.started:.1f} s")
        self.close()
        return ok

    def close(self) -> None:
        """End any process still running and remove their output files."""
        for _, process, output in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            output.unlink(missing_ok=True)
        self.processes = []


@contextmanager
def compiled_ahead(config: BuildConfig, n: int, log: Log) -> Iterator[CompileAhead]:
    """Start the processes that compile the graph steps' kernels for ``n`` archive items when
    numba's cache lacks them (none otherwise); call ``wait()`` on what this yields before the
    graph steps.  The processes are ended on leaving the block."""
    ahead = CompileAhead(log)
    try:
        rows = sample_rows(config, n) if os.environ.get(SWITCH) == "1" else None
        groups = cold_groups(config, n) if rows is not None else []
        if groups:
            log(f"compiling the graph kernels ({', '.join('+'.join(g) for g in groups)}) in {len(groups)} other "
                f"process{'es' if len(groups) > 1 else ''} while the encoder runs (numba's cache lacks them)")
            env = dict(os.environ)
            root = str(Path(__file__).resolve().parents[2])  # this graphret, whatever the child's sys.path
            env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
            for group in groups:
                fd, name = tempfile.mkstemp(prefix="graphret-ahead-", suffix=".log")
                request = json.dumps({"steps": list(group), "rows": rows, "options": _options(config)})
                with os.fdopen(fd, "w") as out:
                    process = subprocess.Popen([sys.executable, "-m", "graphret.api.warmup", request], env=env,
                                               stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
                ahead.processes.append((group, process, Path(name)))
        yield ahead
    finally:
        ahead.close()
