"""Small PNG thumbnails of stored items, so a store stays viewable when its sources move.

The optional ``thumbnails`` table holds one row per item that has one: ``row`` (the item's row
in the items table, int64) and ``png`` (the PNG bytes of the image scaled to fit a square of
``size`` pixels, grey or RGB).  Builds write it for every item, adds for the new items only,
each as fragments like the other tables; stores written before it existed have no such table
(readers fall back to :class:`~graphret.store.pixels.ItemImages`), and an add to such a store
writes thumbnails of the new items alone.  Rows that a build could not read (a corrupt file)
have no thumbnail.
"""

from __future__ import annotations

import struct
import zlib
from typing import Callable

import numpy as np
import pyarrow as pa

from graphret.errors import GraphretError

__all__ = ["THUMBNAILS_SCHEMA", "DEFAULT_THUMBNAIL_SIZE", "encode_png", "thumbnail_png", "thumbnails_table"]

#: side, in pixels, of the square a stored thumbnail fits in (``thumbnail_size`` of a build)
DEFAULT_THUMBNAIL_SIZE = 64

THUMBNAILS_SCHEMA = pa.schema([pa.field("row", pa.int64(), nullable=False), pa.field("png", pa.binary(), nullable=False)])


def encode_png(array: np.ndarray, level: int = 6) -> bytes:
    """uint8 (H, W) grey or (H, W, 3) RGB as an 8-bit PNG (no filter, zlib ``level``): the
    plain format every browser and Pillow read, written directly because Pillow's encoder costs
    about twice as much per small image and a build writes one per item."""
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    raw = np.zeros((height, 1 + width * channels), np.uint8)  # each scanline: filter byte 0, then pixels
    raw[:, 1:] = array.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    """Grey (H, W) or RGB (H, W, 3) uint8 (other types scaled by their own range; alpha dropped)."""
    array = np.asarray(pixels)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3) or 0 in array.shape:
        raise ValueError(f"cannot make a thumbnail of an array of shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.nan_to_num(array.astype(np.float64))
        low, high = float(array.min()), float(array.max())
        array = np.zeros(array.shape, np.uint8) if high <= low else ((array - low) * (255.0 / (high - low))).astype(np.uint8)
    return np.ascontiguousarray(array)


def thumbnail_png(pixels: np.ndarray, size: int = DEFAULT_THUMBNAIL_SIZE) -> bytes:
    """``pixels`` (uint8 (H, W) grey or (H, W, 3) colour) scaled down to fit ``size`` x ``size``
    (never up) and encoded as PNG."""
    array = _as_uint8(pixels)
    if max(array.shape[:2]) > size:
        from PIL import Image

        image = Image.fromarray(array)
        image.thumbnail((int(size), int(size)), Image.Resampling.LANCZOS)
        array = np.asarray(image)
    return encode_png(array)


def thumbnails_table(n: int, read: Callable[[int], np.ndarray], *, first_row: int = 0,
                     size: int = DEFAULT_THUMBNAIL_SIZE) -> pa.Table:
    """The thumbnails of ``n`` items read by ``read(i)`` (i = 0..n-1), stored at rows
    ``first_row + i``; an item whose pixels cannot be read is left out."""
    rows: list[int] = []
    pngs: list[bytes] = []
    for i in range(n):
        try:
            pixels = read(i)
        except (GraphretError, OSError, ValueError):
            continue
        rows.append(first_row + i)
        pngs.append(thumbnail_png(pixels, size))
    return pa.table({"row": pa.array(rows, pa.int64()), "png": pa.array(pngs, pa.binary())}, schema=THUMBNAILS_SCHEMA)
