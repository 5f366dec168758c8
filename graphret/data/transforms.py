"""Conform images to a shape: channel conversion and resizing (PIL, antialiased)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale any numeric image to uint8: uint8 kept, 16-bit and float rescaled by their range."""
    if image.dtype == np.uint8:
        return image
    a = image.astype(np.float32)
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


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
