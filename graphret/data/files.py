"""Loose image files (query images, a folder of them) as an unlabelled ImageSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphret.data._common import existing_file
from graphret.data.folder import (
    corrupt_error,
    decode_image,
    is_image_name,
    verify_image,
)
from graphret.data.imageset import ImageSet
from graphret.errors import InputError


def image_files(paths: list[str | Path]) -> ImageSet:
    """Each path an image file, or a folder whose image files (recursive, sorted) are taken.
    Every image is checked to decode; a bad one is an InputError naming it."""
    files: list[Path] = []
    for given in paths:
        p = Path(given).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_image_name(f.name) and not f.name.startswith("."))
            if not found:
                raise InputError(f"no image files (PNG, JPEG, TIFF, BMP) in folder {p}; give image files or another folder")
            files.extend(found)
        else:
            files.append(existing_file(p, what="image file"))
    for f in files:
        reason = verify_image(f)
        if reason is not None:
            raise corrupt_error(f, reason)
    names = [str(f) for f in files]
    return ImageSet(
        ids=names,
        paths=names,
        splits=np.array(["all"] * len(files), dtype=object),
        labels=None,
        class_names=[],
        task="unlabelled",
        source="image files",
        read=lambda i: decode_image(files[i]),
        split_origin="none",
    )
