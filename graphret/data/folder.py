"""A folder of images where each sub-folder is a class.

Layout::

    root/<class>/**/<image>            # nested folders belong to the top class folder
    root/<split>/<class>/**/<image>    # optional split level: train/val/test in any case
                                       # ("Train", "TEST", "validation" ...)
    root/<image>                       # no sub-folders at all: an unlabelled set

and the same under wrapper folders (``Dataset Name/Train/<class>/...``) or with split folders
inside class folders; :mod:`graphret.data.layout` finds the levels and ``ImageSet.layout``
says what was understood.

PNG, JPEG, TIFF and BMP files are read (extensions in any case), and DICOM files (``.dcm``, or
no extension with the DICM prefix: one item per frame) and NIfTI volumes (one item per slice)
through :mod:`graphret.data.medical`; other files (CSV, text, hidden files) are skipped and
counted in ``ImageSet.skipped``.  Every image is decoded once
at scan time (JPEGs in reduced-size draft mode, which still reads all of the compressed data)
so that a corrupt or truncated file is found before any work starts: it is skipped and
counted with ``on_corrupt="skip"`` or raises :class:`~graphret.errors.InputError` naming the
file with ``on_corrupt="error"``.  Images are then read lazily through ``ImageSet.read`` as
uint8 grey (H, W) or colour (H, W, 3).  Ids are the relative paths without extension, in
sorted order, so they are stable across runs.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from graphret.data._common import (
    check_on_corrupt,
    existing_dir,
    make_unique,
    strip_extension,
)
from graphret.data.imageset import ImageSet
from graphret.data.pictures import (
    SKIP_CORRUPT,
    FileReader,
    corrupt_error,
    is_image_name,
    verify_image,
)
from graphret.data.split import assign_splits
from graphret.errors import InputError

if TYPE_CHECKING:
    from graphret.data.medical import MedicalOptions

SKIP_NON_IMAGE = "non-image files"
SKIP_HIDDEN = "hidden files"
SKIP_OUTSIDE = "images outside class folders"


def _walk(root: Path) -> tuple[list[str], Counter]:
    """Relative posix paths of all non-hidden files, sorted, and skip counts."""
    skipped: Counter = Counter()
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        rel_dir = os.path.relpath(dirpath, root)
        for name in filenames:
            if name.startswith("."):
                skipped[SKIP_HIDDEN] += 1
                continue
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            files.append(rel.replace(os.sep, "/"))
    files.sort()
    return files, skipped


def _unique_ids(rels: list[str]) -> list[str]:
    stems = [strip_extension(r) for r in rels]
    counts = Counter(stems)
    return make_unique(r if counts[s] > 1 else s for r, s in zip(rels, stems))


def _is_candidate(root: Path, rel: str) -> bool:
    """An image file, a NIfTI volume or a DICOM file (by extension, or an extensionless file
    with the DICM prefix)."""
    from graphret.data.dicom_files import is_dicom_path
    from graphret.data.nifti import is_nifti_path

    return is_image_name(rel) or is_nifti_path(rel) or is_dicom_path(root / rel)


def _item_id(rel: str, kind: str) -> str:
    if kind == "nifti":
        from graphret.data.nifti import strip_nifti_suffix

        return strip_nifti_suffix(rel)
    return rel


def load_folder(
    root: str | Path,
    *,
    seed: int = 0,
    split: bool = True,
    on_corrupt: str = "skip",
    medical: "MedicalOptions | None" = None,
) -> ImageSet:
    """Scan a class-per-sub-folder tree of images, DICOM files and NIfTI volumes into an
    :class:`ImageSet` read lazily.  ``medical`` sets how DICOM frames and NIfTI slices become
    items (:class:`graphret.data.medical.MedicalOptions`)."""
    from graphret.data.layout import check_classes, read_layout
    from graphret.data.medical import (
        MedicalOptions,
        expand_files,
        file_kind,
        item_groups,
    )

    check_on_corrupt(on_corrupt)
    options = medical or MedicalOptions()
    options.checked()  # validate before any file is read
    root = existing_dir(root).resolve()
    files, skipped = _walk(root)
    candidates = [f for f in files if _is_candidate(root, f)]
    layout = read_layout(candidates)  # the layout is judged on image files only
    labelled = layout.class_depth is not None

    rels: list[str] = []
    classes: list[str | None] = []
    folder_splits: list[str] = []
    is_candidate = set(candidates)
    for rel in files:
        if rel not in is_candidate:
            skipped[SKIP_NON_IMAGE] += 1
            continue
        placed = layout.place(rel.split("/"))
        if placed is None:
            skipped[SKIP_OUTSIDE] += 1
            continue
        if is_image_name(rel):
            reason = verify_image(root / rel)
            if reason is not None:
                if on_corrupt == "error":
                    raise corrupt_error(root / rel, reason)
                skipped[SKIP_CORRUPT] += 1
                continue
        cls, folder_split = placed
        rels.append(rel)
        classes.append(cls)
        folder_splits.append(folder_split or "")
    if labelled:
        check_classes(layout, rels, {c for c in classes if c is not None}, str(root))

    expanded = expand_files([str(root / r) for r in rels], options, on_corrupt=on_corrupt, pass_over_no_pixels=True)
    skipped.update(expanded.skipped)
    pos = expanded.source_pos
    if len(pos) == 0:
        n_other = sum(skipped.values())
        detail = ", ".join(f"{v} {k}" for k, v in sorted(skipped.items())) or "the folder is empty"
        raise InputError(
            f"no images in {root}: found no readable PNG, JPEG, TIFF, BMP, DICOM or NIfTI files "
            f"({detail}; {n_other} files skipped); give a folder of class sub-folders of images"
        )
    kinds = expanded.kinds
    item_rels = [rels[i] for i in pos]
    item_classes = [classes[i] for i in pos]

    if labelled:
        class_names = sorted({c for c in item_classes if c is not None})
        index = {c: i for i, c in enumerate(class_names)}
        labels: np.ndarray | None = np.array([index[c] for c in item_classes], dtype=np.int64)
        task = "multiclass"
    else:
        class_names, labels, task = [], None, "unlabelled"

    base_ids = _unique_ids([_item_id(r, k) for r, k in zip(item_rels, kinds)]) if not expanded.medical else None
    if base_ids is None:
        # one id per file (made unique over files), then the frame / slice suffix
        file_ids = dict(zip(rels, _unique_ids([_item_id(r, file_kind(r)) for r in rels])))
        ids = make_unique(file_ids[r] + sfx for r, sfx in zip(item_rels, expanded.suffix))
    else:
        ids = base_ids
    groups = item_groups(expanded, ids)
    paths = [str(root / r) for r in item_rels]
    splits, origin = assign_splits(
        len(ids),
        split=split,
        seed=seed,
        labels=labels,
        source_splits=np.array([folder_splits[i] for i in pos], dtype=object) if layout.split_depth is not None else None,
        groups=groups,
        group_by=expanded.group_by,
    )

    return ImageSet(
        ids=ids,
        paths=paths,
        splits=splits,
        labels=labels,
        class_names=class_names,
        task=task,
        source=f"folder:{root}",
        read=expanded.reader if expanded.medical else FileReader(paths),
        skipped=dict(sorted(skipped.items())),
        split_origin=origin,
        metadata=expanded.metadata,
        groups=groups,
        group_by=expanded.group_by,
        layout=layout.description,
    )
