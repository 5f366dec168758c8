"""A Ray session for one build: connect to ``address`` (``auto``, ``ray://host:10001``, or a
head node's ``host:6379``) or, with no address, start a local instance, and shut it down after.

Ray is imported here, on first use, so graphret works without the ``ray`` extra; a missing Ray
is one line naming the fix.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from graphret.errors import InputError

__all__ = ["RaySession", "driver_threads", "import_ray", "ray_session", "INSTALL_HINT"]

INSTALL_HINT = 'pip install "graphret[ray]"'


def import_ray() -> Any:
    """The ``ray`` module (with Ray Data), or an InputError naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data ships in the ray[data] extra)
    except ImportError as error:
        raise InputError(f"the ray engine needs Ray ({error.name or 'ray'} is not installed); run `{INSTALL_HINT}`",
                         param="engine") from None
    return ray


def driver_threads() -> tuple[int, int]:
    """This process's BLAS threads and torch's intra-op threads.  Workers compute with the same
    counts: a matrix product's rounding depends on how BLAS splits it among threads, so the
    same count is what makes their codes and kNN lists those of the plain build."""
    import torch
    from threadpoolctl import threadpool_info

    blas = [int(info["num_threads"]) for info in threadpool_info() if info.get("user_api") == "blas"]
    return max(blas, default=1), int(torch.get_num_threads())


@dataclass(frozen=True)
class RaySession:
    """The cluster a build runs on: its address (None: a local instance this build started),
    its CPUs and GPUs, the most CPUs of one node, the BLAS and torch threads each worker
    computes with (the driver's), and the seconds the cluster took to start or reach."""

    address: str | None
    cpus: int
    gpus: int
    node_cpus: int = 1
    blas_threads: int = 1
    torch_threads: int = 1
    start_seconds: float = 0.0

    @property
    def worker_cpus(self) -> int:
        """CPUs each kNN task and encoder actor reserves: its BLAS threads, at most a node's."""
        return max(1, min(self.blas_threads, self.node_cpus))

    def info(self) -> dict[str, Any]:
        """What the manifest records of the cluster."""
        return {"name": "ray", "address": self.address or "local", "cpus": self.cpus, "gpus": self.gpus,
                "blas_threads": self.blas_threads, "worker_cpus": self.worker_cpus,
                "start_seconds": round(self.start_seconds, 3)}


def _quiet_ray_data() -> None:
    """No progress bars or per-dataset log lines from Ray Data: the build logs its own steps."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.execution_options.verbose_progress = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[RaySession]:
    """Connect to the Ray cluster at ``address`` or start a local one (``num_cpus``: its CPUs,
    all of this machine's by default; ignored with an address); disconnect, or stop the local
    instance, on exit.  A Ray already initialised by the caller is used as it is and left running."""
    ray = import_ray()
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                   "log_to_driver": False, "configure_logging": True}
        try:
            if address:
                ray.init(address=address, **options)
            else:  # "local": a new instance, even where `ray start` left a cluster running on this machine
                ray.init(address="local", num_cpus=num_cpus, **options)
        except ConnectionError as error:
            raise InputError(f"cannot reach the Ray cluster at {address!r} ({error}); start it with `ray start --head` "
                             "or give its address, e.g. {address=auto} or {address=ray://host:10001}", param="address") from None
        started = True
    _quiet_ray_data()
    try:
        resources = ray.cluster_resources()
        nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        blas, torch_threads = driver_threads()
        yield RaySession(address=address, cpus=int(resources.get("CPU", 0)), gpus=int(resources.get("GPU", 0)),
                         node_cpus=int(max((node.get("CPU", 0) for node in nodes), default=1)),
                         blas_threads=blas, torch_threads=torch_threads, start_seconds=time.perf_counter() - t0)
    finally:
        if started:
            ray.shutdown()
