"""Where a fresh `graphret query` process spends its time (run by bench_output.py).

Runs the real command as the ``graphret`` console script does (``graphret.cli.main.run``)
with the arguments given, its steps wrapped in
timers, and prints one JSON line: seconds spent importing the command, importing numba and
preparing its target (what loading any compiled kernel costs first: the search would pay it),
opening the store, building the searcher, reading the queries, searching (loading the
kernels and laying out the archive included), rendering the output and writing the file, and
the script's whole time (the process's start is the caller's wall time minus this).

Usage: python benchmarks/cli_phases.py query STORE --split test --k 50 --mode region --format json -o FILE
"""

from __future__ import annotations

import resource
import time


def cpu() -> float:
    """This process's CPU seconds (user + system)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


START, START_CPU = time.perf_counter(), cpu()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)  # wall seconds per step
CPU: dict[str, float] = defaultdict(float)  # CPU seconds per step


def timed_call(owner, name: str, phase: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its time to ``SPENT[phase]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start, start_cpu = time.perf_counter(), cpu()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[phase] += time.perf_counter() - start
            CPU[phase] += cpu() - start_cpu

    setattr(owner, name, wrapper)


def timed_parts(owner, name: str) -> None:
    """Replace ``owner.name`` (a function returning parts to write, which may be made as they
    are asked for) by a wrapper adding the time its call and each part's making take to
    ``SPENT["render"]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start, start_cpu = time.perf_counter(), cpu()
        parts = iter(inner(*args, **kwargs))
        SPENT["render"] += time.perf_counter() - start
        CPU["render"] += cpu() - start_cpu

        def made():
            while True:
                start, start_cpu = time.perf_counter(), cpu()
                part = next(parts, None)
                SPENT["render"] += time.perf_counter() - start
                CPU["render"] += cpu() - start_cpu
                if part is None:
                    return
                yield part

        return made()

    setattr(owner, name, wrapper)


def timed_write(owner, name: str) -> None:
    """Replace ``owner.name`` (the file writer) by a wrapper adding its time, less the parts'
    making within it, to ``SPENT["write"]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start, start_cpu = time.perf_counter(), cpu()
        made, made_cpu = SPENT["render"], CPU["render"]
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT["write"] += time.perf_counter() - start - (SPENT["render"] - made)
            CPU["write"] += cpu() - start_cpu - (CPU["render"] - made_cpu)

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the graphret command line, from its command name on")
    arguments = parser.parse_args().arguments
    mark, mark_cpu = time.perf_counter(), cpu()
    from graphret.cli import main as console
    from graphret.cli import query as command  # the command's own imports

    SPENT["imports"], CPU["imports"] = time.perf_counter() - mark, cpu() - mark_cpu
    mark, mark_cpu = time.perf_counter(), cpu()
    import numba  # noqa: F401
    from numba.core.registry import cpu_target

    cpu_target.target_context.refresh()  # what the first compiled kernel's load runs first
    SPENT["numba"], CPU["numba"] = time.perf_counter() - mark, cpu() - mark_cpu

    import graphret.query.output
    import graphret.store.read
    from graphret.query.searcher import Searcher

    timed_call(graphret.store.read, "open_store", "open store")
    timed_call(Searcher, "__init__", "searcher")
    timed_call(Searcher, "queries", "queries")
    timed_call(Searcher, "_run", "search")
    timed_parts(graphret.query.output, "render_parts")
    timed_write(command, "atomic_write_bytes")
    end = console._end

    def report_then_end(status: int) -> None:  # the console script may end the process itself
        report()
        end(status)

    console._end = report_then_end
    sys.argv = ["graphret", *arguments]
    try:
        console.run()  # as the `graphret` console script runs it
    except SystemExit as stop:
        if stop.code:
            raise
    report()


REPORTED = []


def report() -> None:
    """Print the steps' seconds (once)."""
    if not REPORTED:
        REPORTED.append(True)
        SPENT["script"], CPU["script"] = time.perf_counter() - START, cpu() - START_CPU
        print(json.dumps({"wall": {name: round(seconds, 4) for name, seconds in SPENT.items()},
                          "cpu": {name: round(seconds, 4) for name, seconds in CPU.items()}}), flush=True)


if __name__ == "__main__":
    main()
