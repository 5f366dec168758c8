"""Conform images to a shape: channel conversion and resizing (PIL, antialiased)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def span_to_255(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values mapped linearly from ``lo..hi`` onto 0..255 and clipped (float, the input's float
    type); NaN and -inf read as ``lo``, +inf as ``hi`` (a missing voxel, a saturated one), so
    non-finite pixels never overflow; all 0 when ``hi <= lo``."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if not hi > lo:
        return np.zeros(x.shape, x.dtype)
    return np.clip((np.nan_to_num(x, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / (hi - lo)), 0.0, 255.0)


def finite_range(x: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values of ``x``, or None when it has none."""
    finite = np.asarray(x)[np.isfinite(x)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale any numeric image to uint8: uint8 kept, 16-bit and float rescaled by the range of
    their finite values (:func:`span_to_255`)."""
    if image.dtype == np.uint8:
        return image
    a = image.astype(np.float32)
    lo, hi = finite_range(a) or (0.0, 0.0)
    return np.round(span_to_255(a, lo, hi)).astype(np.uint8)


def conform(image: np.ndarray, *, size: int | None = None, channels: int | None = None) -> np.ndarray:
    """Return image as uint8 (H, W, C): C = ``channels`` (grey by ITU-R 601-2 luma, or grey
    repeated to colour), resized to size x size when ``size`` is given."""
    a = to_uint8(np.asarray(image))
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"image has {a.ndim} dimensions; expected (H, W) or (H, W, C)")
    if a.shape[2] == 4:  # drop alpha
        a = a[:, :, :3]
    if a.shape[2] == 2:  # grey + alpha
        a = a[:, :, :1]
    if channels == 1 and a.shape[2] == 3:
        grey = a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        a = np.clip(np.round(grey), 0, 255).astype(np.uint8)[:, :, None]
    elif channels == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if size is not None and a.shape[:2] != (size, size):
        mode = "L" if a.shape[2] == 1 else "RGB"
        pil = Image.fromarray(a[:, :, 0] if mode == "L" else a, mode=mode)
        pil = pil.resize((size, size), Image.BILINEAR, reducing_gap=None)
        a = np.asarray(pil)
        if a.ndim == 2:
            a = a[:, :, None]
    return np.ascontiguousarray(a)
