"""Loose image files (query images, a folder of them) as an unlabelled ImageSet.

A path is an image file (PNG, JPEG, TIFF, BMP, or any picture Pillow opens), a DICOM file
(``.dcm``, or the DICM prefix: one item per frame), a NIfTI volume (``.nii``, ``.nii.gz``: one
item per slice), or a folder whose such files (recursive, sorted) are taken.  DICOM and NIfTI
files are read by the data layer's readers (:mod:`graphret.data.medical`) with ``medical``'s
options (default: the file's window, every frame).  Every file is checked before any is
encoded; a file that yields no image is one :class:`~graphret.data.problems.UnreadableFile`
error naming it, what is wrong and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from graphret.data._common import existing_file
from graphret.data.dicom_files import is_dicom_path
from graphret.data.imageset import ImageSet
from graphret.data.medical import MedicalOptions, expand_files, file_kind
from graphret.data.nifti import is_nifti_path
from graphret.data.pictures import (
    SKIP_CORRUPT,
    corrupt_problem,
    is_image_name,
    verify_image,
)
from graphret.data.problems import Problem, UnreadableFile
from graphret.errors import InputError

KINDS_TEXT = "PNG, JPEG, TIFF, BMP, DICOM or NIfTI"


def is_query_file(path: Path) -> bool:
    """A file a folder of query images contributes: an image, DICOM or NIfTI file by name, or
    an extensionless file with the DICM prefix; hidden files never."""
    return not path.name.startswith(".") and (is_image_name(path.name) or is_nifti_path(path) or is_dicom_path(path))


def _collect(paths: Sequence[str | Path]) -> list[Path]:
    """The files named by ``paths`` (folders expanded, recursive and sorted)."""
    files: list[Path] = []
    for given in paths:
        p = Path(given).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_query_file(f))
            if not found:
                raise InputError(f"no image files ({KINDS_TEXT}) in folder {p}; give image files or another folder")
            files.extend(found)
        else:
            files.append(existing_file(p, what="image file"))
    return files


def _check_picture(path: Path) -> None:
    """A plain picture must decode; else one query error (a file that is no picture at all
    is told apart from a corrupt one)."""
    reason = verify_image(path)
    if reason is None:
        return
    if is_image_name(path.name):
        raise corrupt_problem(path, reason).query_error()
    raise Problem(SKIP_CORRUPT, f"{path} is not an image file graphret reads ({KINDS_TEXT}; {reason})",
                  "give an image file").query_error()


def image_files(paths: Sequence[str | Path], medical: MedicalOptions | None = None) -> ImageSet:
    """Each path an image, DICOM or NIfTI file, or a folder of them (see the module
    docstring), as an unlabelled ImageSet: one item per picture, DICOM frame or NIfTI slice,
    its id the file's path (with ``#f<frame>`` / ``#s<slice>`` for one of many)."""
    files = _collect(paths)
    for f in files:
        if file_kind(f) == "image":
            _check_picture(f)
    names = [str(f) for f in files]
    try:
        expanded = expand_files(names, medical, on_corrupt="error")
    except UnreadableFile as error:
        raise error.problem.query_error() from None
    ids = [names[pos] + suffix for pos, suffix in zip(expanded.source_pos, expanded.suffix)]
    return ImageSet(
        ids=ids,
        paths=list(expanded.paths),
        splits=np.array(["all"] * len(ids), dtype=object),
        labels=None,
        class_names=[],
        task="unlabelled",
        source="image files",
        read=expanded.reader,
        split_origin="none",
        metadata=expanded.metadata,
    )
