"""Encoding on Ray: the source read as Ray Data blocks of rows, encoded in an actor pool.

Each actor builds the encoder once from its saved form (the payload :meth:`Encoder.save`
writes, sent as bytes so a model trained on a GPU loads on a CPU worker) and holds the
:class:`ImageSet` (put in the object store once; a file source's reader opens the files, so
workers on other machines need the same paths, e.g. a shared file system); each block is
``encoder.encode(images, rows)`` for its rows.  Blocks hold :data:`BLOCK_ROWS` rows, a multiple
of the encoders' batch sizes (256, 2048), so an actor runs the same batches the plain build
does and the codes are equal to float rounding.  With GPUs in the cluster each actor takes one
(and torch encoders run on it: their device is ``auto``).
"""

from __future__ import annotations

import io
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

    def __init__(self, images: list, model: bytes) -> None:
        import ray
        import torch

        self.images: ImageSet = ray.get(images[0])
        payload = torch.load(io.BytesIO(model), map_location="cpu", weights_only=True)
        self.encoder = encoder_class(str(payload["encoder"])).from_state(payload["config"], payload["state"])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = np.asarray(batch["data"], np.int64)
        encoded = self.encoder.encode(self.images, rows)
        out = {"row": rows, **{_SPACE + space: codes for space, codes in encoded.spaces.items()}}
        if encoded.predicted is not None and encoded.probabilities is not None:
            out["predicted"] = encoded.predicted
            out["probabilities"] = encoded.probabilities
        return out


def encode_on_ray(encoder: Encoder, images: ImageSet, session: RaySession, *, workers: int | None = None,
                  block_rows: int = BLOCK_ROWS) -> tuple[Encoded, dict[str, Any]]:
    """Codes of every item of ``images`` (as ``encoder.encode(images)``), computed on the Ray
    cluster of ``session`` by ``workers`` actors (default: one per GPU, else one per CPU, at
    most one per block); and what the manifest records of the run."""
    ray = import_ray()
    n = len(images)
    blocks = [np.arange(start, min(start + block_rows, n), dtype=np.int64) for start in range(0, n, block_rows)]
    use_gpu = session.gpus > 0
    if workers is None:
        workers = session.gpus if use_gpu else max(session.cpus, 1)
    workers = max(1, min(int(workers), len(blocks)))
    dataset = ray.data.from_numpy(blocks).map_batches(
        _EncodeBlocks, batch_size=None, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
        fn_constructor_kwargs={"images": [ray.put(images)], "model": encoder_bytes(encoder)},
        **({"num_gpus": 1} if use_gpu else {"num_cpus": 1}))
    spaces: dict[str, np.ndarray] = {}
    predicted = probabilities = None
    done = 0
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        rows = batch["row"]
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
    if done != n:  # pragma: no cover - Ray Data lost or repeated a block
        raise RuntimeError(f"Ray encoded {done} rows of {n}")
    info = {"workers": workers, "blocks": len(blocks), "block_rows": int(block_rows), "gpu_per_actor": use_gpu}
    return Encoded(spaces=spaces, predicted=predicted, probabilities=probabilities), info
