"""Where a fresh `graphret query` process spends its time (run by bench_output.py).

Runs the real command (``graphret.cli.main``) with the arguments given, its steps wrapped in
timers, and prints one JSON line: seconds spent importing the command, importing numba and
preparing its target (what loading any compiled kernel costs first: the search would pay it),
opening the store, building the searcher, reading the queries, searching (loading the
kernels and laying out the archive included), rendering the output and writing the file, and
the script's whole time (the process's start is the caller's wall time minus this).

Usage: python benchmarks/cli_phases.py query STORE --split test --k 50 --mode region --format json -o FILE
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from collections import defaultdict  # noqa: E402

SPENT: dict[str, float] = defaultdict(float)


def timed_call(owner, name: str, phase: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its time to ``SPENT[phase]``."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the graphret command line, from its command name on")
    arguments = parser.parse_args().arguments
    mark = time.perf_counter()
    from graphret.cli import query as command  # noqa: F401 - the command's own imports
    from graphret.cli.main import main as graphret_main

    SPENT["imports"] = time.perf_counter() - mark
    mark = time.perf_counter()
    import numba  # noqa: F401
    from numba.core.registry import cpu_target

    cpu_target.target_context.refresh()  # what the first compiled kernel's load runs first
    SPENT["numba"] = time.perf_counter() - mark

    import graphret.query.output
    import graphret.store.read
    from graphret.query.searcher import Searcher

    timed_call(graphret.store.read, "open_store", "open store")
    timed_call(Searcher, "__init__", "searcher")
    timed_call(Searcher, "queries", "queries")
    timed_call(Searcher, "_run", "search")
    timed_call(graphret.query.output, "render_parts", "render")
    timed_call(command, "atomic_write_bytes", "write")
    sys.argv = ["graphret", *arguments]
    try:
        graphret_main()
    except SystemExit as end:
        if end.code:
            raise
    SPENT["script"] = time.perf_counter() - START
    print(json.dumps({name: round(seconds, 4) for name, seconds in SPENT.items()}))


if __name__ == "__main__":
    main()
