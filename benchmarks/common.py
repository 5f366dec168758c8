"""What the benchmark scripts share: the repository on the import path, BLAS on one thread,
progress lines, timing, recall against exact top-K, the machine a run came from, and the
process's memory counters.  (The scripts run as ``python benchmarks/NAME.py``, so this folder is
on their import path; ``shared_data`` says where the real data sets are.)  numpy is imported
inside the functions, so that a script can call :func:`one_thread` before numpy loads BLAS."""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the repository: graphret as checked out, wherever the script runs from

from graphret.evaluation.machine import cpu_model  # noqa: E402

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ROOT", "one_thread", "log", "utc_stamp", "load_average", "timed", "recall", "exact_topk", "machine", "vm_mib", "reset_peak"]

T = TypeVar("T")


def one_thread() -> None:
    """BLAS and OpenMP on one thread unless the environment says otherwise (the machine is
    shared: one thread each gives timings that compare); call it before numpy is imported."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def log(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{_dt.datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def utc_stamp() -> str:
    """Now, as a results file dates its run: "YYYY-MM-DD HH:MM UTC"."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def load_average(digits: int = 1) -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: how busy the shared cores were."""
    return [round(x, digits) for x in os.getloadavg()]


def timed(fn: Callable[[], T], *, digits: int | None = None) -> tuple[T, float]:
    """(what ``fn()`` returns, its wall seconds, rounded to ``digits`` when given)."""
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    return out, seconds if digits is None else round(seconds, digits)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Recall@K: the mean share of each query's exact top-K (``truth``, (q, K)) among its
    results (``found``, (q, k))."""
    import numpy as np

    hits = [len(np.intersect1d(a, b)) for a, b in zip(found, truth)]
    return float(np.mean(hits) / truth.shape[1])


def exact_topk(archive: np.ndarray, queries: np.ndarray, k: int, *, exclude: np.ndarray | None = None,
               block: int = 1024) -> np.ndarray:
    """Each query's exact cosine top-k archive rows (unit codes), (q, k), best first (ties in
    row order), a block of queries at a time; ``exclude``: one archive row per query never
    returned (the query itself), or None."""
    import numpy as np

    out = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), block):
        s = queries[start : start + block] @ archive.T
        if exclude is not None:
            s[np.arange(len(s)), exclude[start : start + block]] = -np.inf
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
        out[start : start + len(s)] = np.take_along_axis(part, order, axis=1)
    return out


def machine(*packages: str, **extra: Any) -> dict[str, Any]:
    """What a run came from: UTC date, CPU model, cores, memory, load average at the start,
    Python, numpy, the platform, the versions of ``packages`` (imported by name) and ``extra``."""
    import numpy as np

    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        memory = None
    out: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "cores": os.cpu_count(), "memory_gib": memory,
        "load_average_at_start": os.getloadavg(), "python": platform.python_version(), "numpy": np.__version__,
        "platform": platform.platform(),
    }
    for name in packages:
        module = importlib.import_module(name)
        out[name] = getattr(module, "__version__", None) or str(getattr(module, "version", "?"))
    out.update(extra)
    return out


def vm_mib(field: str) -> float:
    """A memory counter of this process from /proc/self/status in MiB (``VmHWM``: peak
    resident, ``VmRSS``: resident now)."""
    with open("/proc/self/status") as status:
        return next(float(line.split()[1]) / 1024.0 for line in status if line.startswith(field + ":"))


def reset_peak() -> bool:
    """Start a new peak-resident-memory count (``VmHWM``) for this process by writing 5 to
    /proc/self/clear_refs (Linux >= 4.0); False where that is refused.  Benchmarks only: a
    library must not reset its caller's counters (``graphret.api.build.STEP_PEAK_RESET`` takes
    this to time each build step's own peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False
