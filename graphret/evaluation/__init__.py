"""The retrieval benchmark as a library (``graphret bench``).

::

    from graphret.store import open_store
    from graphret.evaluation import run_bench, write_report

    result = run_bench(open_store("store"), split="test", k=50, modes="region,probe,class,flat")
    result.table()                       # pandas DataFrame, one row per mode
    result.tidy()                        # one row per (mode, metric, k, value)
    write_report(result, "bench-out")    # bench.json, bench.md, PNG plots
"""

from graphret.evaluation.bench import (
    DEFAULT_MODES,
    DUPLICATE_POLICIES,
    MODES,
    RELEVANCE_RULES,
    BenchConfig,
    BenchResult,
    exact_duplicates,
    parse_modes,
    run_bench,
)
from graphret.evaluation.report import (
    markdown_table,
    text_table,
    to_json,
    write_plots,
    write_report,
)

__all__ = [
    "BenchConfig",
    "DEFAULT_MODES",
    "DUPLICATE_POLICIES",
    "MODES",
    "RELEVANCE_RULES",
    "BenchResult",
    "exact_duplicates",
    "markdown_table",
    "parse_modes",
    "run_bench",
    "text_table",
    "to_json",
    "write_plots",
    "write_report",
]
