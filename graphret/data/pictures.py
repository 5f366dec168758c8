"""One picture file (PNG, JPEG, TIFF, BMP, any image Pillow opens): decoded to uint8, checked
cheaply, and the problem a corrupt one is; :class:`FileReader`, an ImageSet's reader over such
files.  Below both the class-folder scanner (:mod:`graphret.data.folder`) and the medical
readers (:mod:`graphret.data.medical`), which read plain pictures through it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from graphret.data.problems import Problem, UnreadableFile
from graphret.data.transforms import to_uint8
from graphret.errors import InputError

__all__ = ["IMAGE_EXTENSIONS", "SKIP_CORRUPT", "is_image_name", "pil_to_array", "decode_image", "verify_image",
           "corrupt_problem", "corrupt_error", "FileReader"]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp"})
SKIP_CORRUPT = "corrupt images"


def is_image_name(name: str) -> bool:
    """True for a file name with an image extension (case-insensitive)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def pil_to_array(im: Image.Image) -> np.ndarray:
    """A PIL image as uint8 (H, W) grey or (H, W, 3) colour.

    Bilevel and grey+alpha become grey; palette images become grey when the palette is grey,
    else RGB; RGBA/CMYK/YCbCr/LAB/HSV become RGB (alpha dropped); 16-bit, 32-bit and float
    images are rescaled by their own range to 0..255.
    """
    mode = im.mode
    if mode in ("P", "PA"):
        rgb = np.asarray(im.convert("RGB"))
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return np.ascontiguousarray(rgb[..., 0])
        return rgb
    if mode == "1":
        return np.asarray(im.convert("L"))
    if mode == "L":
        return np.asarray(im)
    if mode in ("LA", "La"):
        return np.asarray(im.getchannel(0))
    if mode.startswith("I") or mode == "F":
        return to_uint8(np.asarray(im))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def decode_image(path: str | Path) -> np.ndarray:
    """Read one image file fully (first frame, EXIF orientation applied) as uint8."""
    with Image.open(path) as im:
        im.load()
        if im.format == "JPEG":
            im = ImageOps.exif_transpose(im)
        return pil_to_array(im)


def verify_image(path: str | Path) -> str | None:
    """Decode ``path`` cheaply to check it; return None when good, else the reason."""
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                # Decode at 1/8 scale: all entropy-coded data is still read, so truncation
                # and corrupt data are caught at a fraction of the cost.
                im.draft(None, (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
        return None
    except Exception as e:  # PIL raises many kinds for bad data
        return f"{type(e).__name__}: {e}".strip()


def corrupt_problem(path: str | Path, reason: str) -> Problem:
    """What is wrong with a corrupt image file."""
    return Problem(SKIP_CORRUPT, f"corrupt image: {path} ({reason})", "remove or replace it")


def corrupt_error(path: str | Path, reason: str) -> UnreadableFile:
    """The error for a corrupt image under ``on_corrupt="error"`` (the line ends with
    ``{on_corrupt=skip}``)."""
    return corrupt_problem(path, reason).error()


class FileReader:
    """``ImageSet.read`` for image files: item i decoded from ``paths[i]``.  A plain class
    (not a closure) so that an ImageSet can be pickled into worker processes."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __call__(self, i: int) -> np.ndarray:
        path = self.paths[i]
        try:
            return decode_image(path)
        except FileNotFoundError as e:
            raise InputError(f"image file vanished: {path} (it was there when the source was opened)") from e
        except Exception as e:  # found only now, when skipping is past: the fix alone
            raise corrupt_problem(path, f"{type(e).__name__}: {e}").error(skippable=False) from e
