"""Encoding on Ray: the source read as Ray Data blocks of rows, encoded in an actor pool.

Each actor builds the encoder once from its saved form (the payload :meth:`Encoder.save`
writes, sent as bytes so a model trained on a GPU loads on a CPU worker) and holds the
:class:`ImageSet` (put in the object store once; a file source's reader opens the files, so
workers on other machines need the same paths, e.g. a shared file system); each block is
``encoder.encode(images, rows)`` for its rows.  Blocks hold :data:`BLOCK_ROWS` rows, a multiple
of the encoders' batch sizes (256, 2048), so an actor runs the same batches the plain build
does, with the driver's BLAS and torch thread counts (how a product is split among threads
changes its rounding): the codes are those of the plain build, given the same libraries and
CPU kind on the workers (and equal to float rounding on a GPU).  With GPUs in the cluster each actor takes one
(and torch encoders run on it: their device is ``auto``).
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np

from graphret.cluster.session import RaySession, import_ray
from graphret.data.imageset import ImageSet
from graphret.encoders import Encoded, Encoder, encoder_class

__all__ = ["encode_on_ray", "encoder_bytes", "BLOCK_ROWS"]

#: rows per Ray Data block (and per actor call)
BLOCK_ROWS = 2048
_SPACE = "space:"


def encoder_bytes(encoder: Encoder) -> bytes:
    """The fitted encoder as the bytes of its saved file (tensors on the CPU)."""
    import torch

    buffer = io.BytesIO()
    torch.save(encoder.payload(), buffer)
    return buffer.getvalue()


class _EncodeBlocks:
    """A Ray Data actor: the model, built once, and the images; one block of rows per call."""

    def __init__(self, images: list, model: bytes, blas_threads: int, torch_threads: int) -> None:
        import ray
        import torch

        torch.set_num_threads(torch_threads)
        self.blas_threads = blas_threads
        self.images: ImageSet = ray.get(images[0])
        payload = torch.load(io.BytesIO(model), map_location="cpu", weights_only=True)
        self.encoder = encoder_class(str(payload["encoder"])).from_state(payload["config"], payload["state"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["data"], np.int64)
        from threadpoolctl import threadpool_limits

        started = time.perf_counter()
        with threadpool_limits(self.blas_threads, user_api="blas"):
            encoded = self.encoder.encode(self.images, rows)
        out = {"row": rows, "seconds": np.full(len(rows), (time.perf_counter() - started) / max(len(rows), 1)),
               **{_SPACE + space: codes for space, codes in encoded.spaces.items()}}
        if encoded.predicted is not None and encoded.probabilities is not None:
            out["predicted"] = encoded.predicted
            out["probabilities"] = encoded.probabilities
        return out


def encode_on_ray(encoder: Encoder, images: ImageSet, session: RaySession, *, workers: int | None = None,
                  block_rows: int = BLOCK_ROWS) -> tuple[Encoded, dict[str, Any]]:
    """Codes of every item of ``images`` (as ``encoder.encode(images)``), computed on the Ray
    cluster of ``session`` by ``workers`` actors (default and most: one per GPU, else as many
    as fit with ``session.worker_cpus`` CPUs each; at most one per block); and what the
    manifest records of the run (actors, blocks, seconds to the first block back, the actors'
    own images/s)."""
    ray = import_ray()
    n = len(images)
    blocks = [np.arange(start, min(start + block_rows, n), dtype=np.int64) for start in range(0, n, block_rows)]
    use_gpu = session.gpus > 0
    slots = session.gpus if use_gpu else max(session.cpus // session.worker_cpus, 1)  # actors that fit at once
    workers = max(1, min(slots if workers is None else int(workers), slots, len(blocks)))
    dataset = ray.data.from_numpy(blocks).map_batches(
        _EncodeBlocks, batch_size=None, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"images": [ray.put(images)], "model": encoder_bytes(encoder),
                               "blas_threads": session.blas_threads, "torch_threads": session.torch_threads},
        **({"num_gpus": 1} if use_gpu else {"num_cpus": session.worker_cpus}))
    spaces: dict[str, np.ndarray] = {}
    predicted = probabilities = None
    done = 0
    actor_seconds = 0.0
    started = time.perf_counter()
    first: float | None = None
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        rows = batch["row"]
        if first is None:
            first = time.perf_counter()
        for name, values in batch.items():
            if name.startswith(_SPACE):
                space = spaces.setdefault(name[len(_SPACE):], np.empty((n, values.shape[1]), np.float32))
                space[rows] = values
        if "predicted" in batch:
            if predicted is None:
                predicted = np.empty(n, np.int64)
                probabilities = np.empty((n, batch["probabilities"].shape[1]), np.float32)
            predicted[rows] = batch["predicted"]
            probabilities[rows] = batch["probabilities"]
        done += len(rows)
        actor_seconds += float(batch["seconds"].sum())
    if done != n:  # pragma: no cover - Ray Data lost or repeated a block
        raise RuntimeError(f"Ray encoded {done} rows of {n}")
    finished = time.perf_counter()
    info = {"workers": workers, "blocks": len(blocks), "block_rows": int(block_rows), "gpu_per_actor": use_gpu,
            "seconds": round(finished - started, 3), "first_block_s": round(first - started, 3) if first else None,
            # the actors' own encoding rate: images over the seconds their encode calls took (one actor's)
            "actor_images_per_s": round(n / actor_seconds, 1) if actor_seconds > 0 else None}
    return Encoded(spaces=spaces, predicted=predicted, probabilities=probabilities), info
