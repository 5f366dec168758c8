"""Training images as tensors: read once when they fit in memory (else per batch), per-channel
statistics and normalisation, and batched progress."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.training.device import torch


def check_input_shape(images: ImageSet, indices: np.ndarray, *, size: int, channels: int, what: str) -> None:
    """Warn once when the source's images differ from what the model takes (they are resized
    and converted)."""
    if len(indices) == 0:
        return
    first = np.asarray(images.image(int(indices[0])))
    h, w = first.shape[:2]
    c = 1 if first.ndim == 2 else first.shape[2]
    c = 3 if c >= 3 else 1
    if (h, w) != (size, size) or c != channels:
        warnings.warn(
            f"{what} takes {size}x{size}x{channels} images; the source's are {h}x{w}x{c}, "
            f"so they are resized and converted",
            stacklevel=3,
        )


class ImageBatches:
    """uint8 images of some items at a fixed size / channel count, read once (when small) or
    per batch; ``get(rows)`` returns a float tensor (b, C, H, W) in [0, 1]."""

    def __init__(self, images: ImageSet, indices: np.ndarray, *, size: int, channels: int, preload_bytes: int = 1 << 30, progress: bool = False) -> None:
        self.images = images
        self.indices = np.asarray(indices, dtype=np.int64)
        self.size = size
        self.channels = channels
        self.cache: np.ndarray | None = None
        if len(self.indices) * size * size * channels <= preload_bytes:
            parts = []
            for start in range(0, len(self.indices), 4096):
                parts.append(images.load(self.indices[start : start + 4096], size=size, channels=channels))
            self.cache = np.concatenate(parts) if parts else np.zeros((0, size, size, channels), np.uint8)

    def __len__(self) -> int:
        return len(self.indices)

    def uint8(self, rows: np.ndarray) -> np.ndarray:
        """(b, H, W, C) uint8 of the items at positions ``rows`` of ``indices``."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.cache is not None:
            return self.cache[rows]
        return self.images.load(self.indices[rows], size=self.size, channels=self.channels)

    def get(self, rows: np.ndarray, device=None):
        return to_tensor(self.uint8(rows), device)


def to_tensor(batch: np.ndarray, device=None):
    """uint8 (b, H, W, C) -> float32 tensor (b, C, H, W) in [0, 1]."""
    t = torch()
    x = t.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)
    return x.to(device) if device is not None else x


def channel_stats(batches: ImageBatches, max_items: int = 20000) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (up to ``max_items`` of) the images in [0,1]."""
    n = min(len(batches), max_items)
    rows = np.linspace(0, len(batches) - 1, n).astype(np.int64) if n else np.zeros(0, np.int64)
    total = np.zeros(batches.channels)
    square = np.zeros(batches.channels)
    count = 0
    for start in range(0, n, 4096):
        x = batches.uint8(rows[start : start + 4096]).astype(np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        square += (x**2).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    if count == 0:
        return [0.5] * batches.channels, [0.25] * batches.channels
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean**2, 1e-6))
    return [float(m) for m in mean], [float(s) for s in std]


class Normalise:
    """(x - mean) / std per channel, on a (b, C, H, W) tensor in [0, 1]."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean = list(mean)
        self.std = list(std)
        self._cache: dict[Any, Any] = {}

    def __call__(self, x):
        key = (x.device, x.dtype)
        if key not in self._cache:
            t = torch()
            m = t.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            s = t.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            self._cache[key] = (m, s)
        m, s = self._cache[key]
        return (x - m) / s


def progress_batches(n: int, batch_size: int, *, progress: bool, desc: str):
    """Start offsets of the batches of n items, with a tqdm bar when ``progress``."""
    starts = range(0, n, batch_size)
    if progress and n > batch_size:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
    return starts
