"""Images in a NumPy ``.npz`` file: the MedMNIST official layout or a plain layout.

*MedMNIST official layout*: ``{train,val,test}_images`` uint8 (N, H, W) or (N, H, W, 3) and
``{split}_labels`` of shape (N, 1) or (N,) (multi-class) or (N, C) with 0/1 values, C > 1
(multi-label).  The file's splits are kept.  Ids are ``train-000123``, paths
``breastmnist.npz#train_images[123]``.  Class names of known MedMNIST files come from the
official INFO table (:data:`KNOWN_CLASS_NAMES`, and ``graphret/data/medmnist.json``),
otherwise ``"0" .. "C-1"``.

*Plain layout*: ``images`` and optional ``labels`` (same shapes as above), ``class_names``,
``filenames`` and ``splits``.  Without ``splits`` the set gets a seeded stratified 70/30
split.  Ids are the stored filenames without extension (made unique) or ``img-000123``.

Files are opened with ``allow_pickle=False``.  Members stored uncompressed (``np.savez``) are
memory-mapped; compressed members (``np.savez_compressed``) are decompressed into memory.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np

from graphret.data._common import (
    existing_file,
    make_unique,
    normalise_split,
    strip_extension,
)
from graphret.data.imageset import ImageSet
from graphret.data.split import assign_splits
from graphret.errors import InputError

OFFICIAL_SPLITS = ("train", "val", "test")

# Official MedMNIST INFO label names (medmnist/info.py), without commas inside a name.
KNOWN_CLASS_NAMES: dict[str, list[str]] = {
    "breastmnist": ["malignant", "normal+benign"],
    "pneumoniamnist": ["normal", "pneumonia"],
    "retinamnist": ["0", "1", "2", "3", "4"],
    "bloodmnist": [
        "basophil", "eosinophil", "erythroblast", "immature granulocytes",
        "lymphocyte", "monocyte", "neutrophil", "platelet",
    ],
    "chestmnist": [
        "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule",
        "pneumonia", "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis",
        "pleural", "hernia",
    ],
}


def known_class_names(path: Path, n_classes: int) -> list[str] | None:
    """Class names for a known MedMNIST file name (``breastmnist.npz``, ``bloodmnist_64.npz``),
    when the table's class count matches; else None."""
    stem = re.sub(r"_(64|128|224)$", "", path.stem.lower())
    names = KNOWN_CLASS_NAMES.get(stem)
    if names is None:
        from graphret.data.fetch import medmnist_table

        entry = medmnist_table().get(stem)
        names = entry.get("class_names") if entry else None
    if names is not None and len(names) == n_classes:
        return list(names)
    return None


def _member_memmap(path: Path, key: str) -> np.ndarray | None:
    """``key`` of an npz memory-mapped when it is stored uncompressed, else None."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(f"{key}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                return None
            with open(path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(30)
                if local[:4] != b"PK\x03\x04":
                    return None
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
                f.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    return None
                if dtype.hasobject:
                    return None
                offset = f.tell()
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                         order="F" if fortran else "C")
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None


def _images(z: np.lib.npyio.NpzFile, path: Path, key: str) -> np.ndarray:
    """The ``key`` array as uint8 (N, H, W) or (N, H, W, 3), checked."""
    arr = _member_memmap(path, key)
    if arr is None:
        arr = z[key]
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[-1] == 3)):
        raise InputError(
            f"{path}: {key} has shape {arr.shape}; expected (N, H, W) or (N, H, W, 3) images "
            "(3-D volumes are not supported)"
        )
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    a = np.asarray(arr)
    if a.dtype.kind in "iu" and a.size and a.min() >= 0 and a.max() <= 255:
        return a.astype(np.uint8)
    if a.dtype.kind not in "iuf":
        raise InputError(f"{path}: {key} has dtype {a.dtype}; expected numeric images (uint8)")
    from graphret.data.transforms import finite_range, span_to_255, to_uint8

    if a.dtype.kind == "f" and a.size:
        blank = np.flatnonzero(~np.isfinite(a).reshape(len(a), -1).any(axis=1))
        if len(blank):
            raise InputError(f"{path}: {key}[{int(blank[0])}] has no finite pixel values (all NaN or infinite; "
                             f"{len(blank)} such images); fix or drop those images")
        lo, hi = finite_range(a)
        if lo >= 0.0 and hi <= 1.0:  # intensities in 0..1: NaN as 0, inf as 1
            return np.round(span_to_255(a, 0.0, 1.0)).astype(np.uint8)

    return np.stack([to_uint8(im) for im in a]) if len(a) else a.astype(np.uint8)


def _label_kind(labels: np.ndarray, path: Path, key: str) -> str:
    """"multiclass" for (N,) or (N, 1); "multilabel" for (N, C > 1) with 0/1(/-1) values."""
    if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1):
        if labels.dtype.kind not in "iub" and not (
            labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0)
        ):
            raise InputError(f"{path}: {key} has dtype {labels.dtype}; expected integer class indices")
        return "multiclass"
    if labels.ndim == 2:
        values = np.unique(labels)
        if not np.isin(values, [-1, 0, 1]).all():
            raise InputError(
                f"{path}: {key} has shape {labels.shape} but values {values[:6].tolist()}; "
                "multi-label columns must hold 0/1 (or -1 unknown)"
            )
        return "multilabel"
    raise InputError(f"{path}: {key} has shape {labels.shape}; expected (N,), (N, 1) or (N, C)")


def _as_labels(labels: np.ndarray, kind: str) -> np.ndarray:
    if kind == "multiclass":
        return labels.reshape(len(labels)).astype(np.int64)
    return labels.astype(np.int8)


def _class_names(path: Path, labels: np.ndarray | None, kind: str, given: list[str] | None) -> list[str]:
    if labels is None:
        return []
    if kind == "multilabel":
        n_classes = labels.shape[1]
    else:
        n_classes = int(labels.max()) + 1 if labels.size else 0
        if labels.size and int(labels.min()) < -1:
            raise InputError(f"{path}: class labels must be 0.. (or -1 for none), found {int(labels.min())}; fix the labels")
        if given is None and n_classes > max(len(labels), 1):
            raise InputError(f"{path}: labels go up to {n_classes - 1} for {len(labels)} items; class labels must be indices "
                             "0..C-1 (renumber them, or store class_names beside them)")
    if given is not None:
        if len(given) < n_classes:
            raise InputError(
                f"{path}: labels go up to {n_classes - 1} but class_names has {len(given)} "
                "names (fix class_names or the labels)"
            )
        return given
    names = known_class_names(path, n_classes)
    if names is None and kind == "multiclass":
        stem = re.sub(r"_(64|128|224)$", "", path.stem.lower())
        table = KNOWN_CLASS_NAMES.get(stem)
        if table is not None and n_classes <= len(table):
            names = list(table)  # a split may lack the highest class
    return names if names is not None else [str(c) for c in range(n_classes)]


def _open(path: Path) -> np.lib.npyio.NpzFile:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"cannot read {path} as an npz file ({e}); check that it is a NumPy .npz") from e
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InputError(f"{path} holds a single array, not an npz archive (save with np.savez)")
    for key in z.files:  # numpy reads members lazily and refuses object arrays with a bare ValueError
        if _holds_objects(z, key):
            z.close()
            raise InputError(f"{path}: {key} is an array of Python objects, which graphret does not unpickle; "
                             "save it with a numeric or string dtype (e.g. np.stack(images), np.array(names, dtype=str))")
    return z


def _holds_objects(z: np.lib.npyio.NpzFile, key: str) -> bool:
    """Does member ``key`` hold Python objects (read from its header only)?"""
    try:
        with z.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            return header(f)[2].hasobject
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return False  # not a plain .npy member: reading it reports what is wrong


def is_official_layout(keys: list[str]) -> bool:
    """True when the keys follow MedMNIST's ``{train,val,test}_images`` layout."""
    return any(f"{s}_images" in keys for s in OFFICIAL_SPLITS)


def load_npz(path: str | Path, *, seed: int = 0, split: bool = True) -> ImageSet:
    """Open an npz file of either layout (detected from its keys) as an :class:`ImageSet`."""
    path = existing_file(path, what="npz file")
    with _open(path) as z:
        keys = list(z.files)
        if is_official_layout(keys):
            return _load_official(z, path, keys, seed=seed, split=split)
        if "images" in keys:
            return _load_plain(z, path, keys, seed=seed, split=split)
    raise InputError(
        f"{path} has no images: its keys are {', '.join(keys) or '(none)'} "
        "(expected train_images/val_images/test_images or images)"
    )


def _load_official(z, path: Path, keys: list[str], *, seed: int, split: bool) -> ImageSet:
    images, labels, splits, ids, paths = [], [], [], [], []
    kinds = set()
    present = [s for s in OFFICIAL_SPLITS if f"{s}_images" in keys]
    have_labels = [s for s in present if f"{s}_labels" in keys]
    for s in present:
        imgs = _images(z, path, f"{s}_images")
        n = len(imgs)
        images.append(imgs)
        if have_labels:
            if f"{s}_labels" not in keys:
                raise InputError(f"{path} has {s}_images but no {s}_labels (add them or remove the split)")
            lab = z[f"{s}_labels"]
            if len(lab) != n:
                raise InputError(
                    f"{path}: {s}_labels has {len(lab)} entries but {s}_images has {n} "
                    "(labels and images must match)"
                )
            kinds.add(_label_kind(lab, path, f"{s}_labels"))
            labels.append(lab)
        width = max(6, len(str(n - 1)))
        ids += [f"{s}-{i:0{width}d}" for i in range(n)]
        paths += [f"{path}#{s}_images[{i}]" for i in range(n)]
        splits += [s] * n
    shapes = {im.shape[1:] for im in images}
    if len(shapes) > 1:
        raise InputError(f"{path}: the splits' images differ in shape {sorted(shapes)} (resave them alike)")
    all_images = images[0] if len(images) == 1 else np.concatenate(images)
    if len(kinds) > 1:
        raise InputError(f"{path}: some splits have multi-class and some multi-label labels")
    kind = kinds.pop() if kinds else "unlabelled"
    lab_all = None
    if labels:
        if kind == "multilabel" and len({lab.shape[1] for lab in labels}) > 1:
            raise InputError(f"{path}: the splits' multi-label labels differ in width")
        lab_all = np.concatenate([_as_labels(lab, kind) for lab in labels])
    names = _class_names(path, lab_all, kind, None)
    split_arr, origin = assign_splits(
        len(ids), split=split, seed=seed, source_splits=np.array(splits, dtype=object)
    )
    return ImageSet(
        ids=ids, paths=paths, splits=split_arr, labels=lab_all, class_names=names,
        task=kind, source=f"npz:{path}", images=all_images, split_origin=origin,
    )


def _load_plain(z, path: Path, keys: list[str], *, seed: int, split: bool) -> ImageSet:
    images = _images(z, path, "images")
    n = len(images)
    lab = None
    kind = "unlabelled"
    if "labels" in keys:
        raw = z["labels"]
        if len(raw) != n:
            raise InputError(
                f"{path}: labels has {len(raw)} entries but images has {n} (labels and images must match)"
            )
        kind = _label_kind(raw, path, "labels")
        lab = _as_labels(raw, kind)
    given = None
    if "class_names" in keys:
        given = [str(x) for x in z["class_names"].reshape(-1)]
    names = _class_names(path, lab, kind, given)
    if "filenames" in keys:
        files = [str(x) for x in z["filenames"].reshape(-1)]
        if len(files) != n:
            raise InputError(f"{path}: filenames has {len(files)} entries but images has {n}")
        files = [f.replace("\\", "/") for f in files]
        ids = make_unique(strip_extension(f) for f in files)
        paths = files
    else:
        width = max(6, len(str(n - 1)))
        ids = [f"img-{i:0{width}d}" for i in range(n)]
        paths = [f"{path}#images[{i}]" for i in range(n)]
    source_splits = None
    for key in ("splits", "split"):
        if key in keys:
            raw_splits = [str(x) for x in z[key].reshape(-1)]
            if len(raw_splits) != n:
                raise InputError(f"{path}: {key} has {len(raw_splits)} entries but images has {n}")
            norm = [normalise_split(s) for s in raw_splits]
            bad = sorted({s for s, v in zip(raw_splits, norm) if v is None})
            if bad:
                raise InputError(f"{path}: unknown split names {bad[:5]} in {key} (use train, val or test)")
            source_splits = np.array(norm, dtype=object)
            break
    split_arr, origin = assign_splits(
        n, split=split, seed=seed, labels=lab, source_splits=source_splits
    )
    return ImageSet(
        ids=ids, paths=paths, splits=split_arr, labels=lab, class_names=names, task=kind,
        source=f"npz:{path}", images=images, split_origin=origin,
    )
