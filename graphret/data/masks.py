"""Segmentation masks of abnormal regions, attached to an :class:`ImageSet`.

A decomposing encoder (:mod:`graphret.encoders.decompose`) learns best from masks that say
where each image's abnormality is.  Masks are optional and may cover only some items: an item
without one is trained from its image-level label alone.

``ImageSet.masks`` holds a :class:`Masks`: per item a uint8 (H, W) map whose pixel values
encode one or more *channels* (``Masks.names``), in one of three encodings:

* ``"binary"``: any non-zero pixel is abnormal (one channel, named ``abnormal`` by default);
* ``"labels"``: pixel value v in 1..C marks channel ``names[v - 1]`` (0 is normal), as in a
  label map where regions do not overlap (BraTS-style tumour sub-regions);
* ``"bits"``: bit c (value ``1 << c``) marks channel ``names[c]``, so that regions may overlap
  (the demo set's findings; at most 8 channels).

Masks come from the source itself (the demo set knows where it paints each finding), from a
folder of mask images named after the items (:func:`attach_mask_folder`), or from a metadata
column of mask file paths, e.g. a CSV manifest's ``mask`` column (:func:`attach_mask_column`).
A mask image need not have its item's size: :meth:`Masks.load` resizes both alike (stretched to
a square, as :func:`graphret.data.transforms.conform` does for images) into soft channel maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from graphret.errors import InputError

ENCODINGS = ("binary", "labels", "bits")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".npy")


@dataclass
class Masks:
    """Per-item masks of N items: ``array`` (uint8 (N, H, W)) or ``read(i)`` (uint8 (H, W), or
    None where item i has no mask); ``known`` (bool (N,)) says which items have one."""

    names: list[str]
    encoding: str = "binary"
    array: np.ndarray | None = None
    read: Callable[[int], np.ndarray | None] | None = None
    known: np.ndarray | None = None
    source: str = ""
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise InputError(f"unknown mask encoding {self.encoding!r}; use {{encoding=binary}}, labels or bits", param="encoding")
        if (self.array is None) == (self.read is None):
            raise ValueError("give exactly one of array or read")
        if not self.names:
            raise InputError("masks need at least one channel name; pass {names=abnormal}", param="names")
        if self.encoding == "binary" and len(self.names) != 1:
            raise InputError(f"binary masks have one channel, got names {self.names}; use {{encoding=labels}} or bits for more", param="encoding")
        if self.encoding == "bits" and len(self.names) > 8:
            raise InputError(f"bit masks hold at most 8 channels in uint8, got {len(self.names)}; use {{encoding=labels}}", param="encoding")
        if self.array is not None:
            self.array = np.asarray(self.array)
            if self.array.ndim != 3 or self.array.dtype != np.uint8:
                raise ValueError("a mask array must be uint8 of shape (N, H, W)")
            if self.known is None:
                self.known = np.ones(len(self.array), bool)
        if self.known is not None:
            self.known = np.asarray(self.known, dtype=bool)

    def __len__(self) -> int:
        if self.array is not None:
            return len(self.array)
        return len(self.known) if self.known is not None else 0

    @property
    def channels(self) -> int:
        return len(self.names)

    def has(self, i: int) -> bool:
        """True when item i has a mask."""
        return bool(self.known[i]) if self.known is not None else self.get(i) is not None

    def get(self, i: int) -> np.ndarray | None:
        """Item i's encoded mask, uint8 (H, W), or None when it has none."""
        if self.array is not None:
            return self.array[i] if self.known is None or self.known[i] else None
        if self.known is not None and not self.known[i]:
            return None
        if i not in self._cache:
            got = self.read(int(i))  # type: ignore[misc]
            if got is None:
                return None
            self._cache[i] = _as_uint8_mask(got, what=f"mask of item {i}")
        return self._cache[i]

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        """An encoded (H, W) mask as bool channels (C, H, W)."""
        m = np.asarray(encoded)
        if self.encoding == "binary":
            return (m != 0)[None]
        if self.encoding == "labels":
            return np.stack([m == v for v in range(1, self.channels + 1)])
        return np.stack([(m >> c) & 1 for c in range(self.channels)]).astype(bool)

    def load(self, indices: Sequence[int] | np.ndarray, *, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(channel maps uint8 (n, C, size, size), 0..255 = the fraction of each pixel covered,
        resized with a box filter; known bool (n,)).  Items without a mask get zeros and
        ``known`` False."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.zeros((len(indices), self.channels, size, size), np.uint8)
        known = np.zeros(len(indices), bool)
        for n, i in enumerate(indices):
            m = self.get(int(i))
            if m is None:
                continue
            known[n] = True
            for c, channel in enumerate(self.decode(m)):
                a = channel.astype(np.uint8) * 255
                if a.shape != (size, size):
                    a = np.asarray(Image.fromarray(a, mode="L").resize((size, size), Image.BOX))
                out[n, c] = a
        return out, known

    def subset(self, indices: np.ndarray) -> "Masks":
        """The masks of the items at ``indices`` (in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        known = None if self.known is None else self.known[indices]
        if self.array is not None:
            return replace(self, array=self.array[indices], known=known, _cache={})
        parent = self
        return replace(self, read=lambda i: parent.get(int(indices[i])), known=known, _cache={})


def _as_uint8_mask(a: np.ndarray, *, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3:  # a colour or grey+alpha mask image: any non-zero channel counts
        a = a.max(axis=2) if a.shape[2] in (1, 3) else a[:, :, 0]
    if a.ndim != 2:
        raise InputError(f"the {what} has {a.ndim} dimensions; a mask must be a single-channel (H, W) image")
    if a.dtype == bool:
        return a.astype(np.uint8)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and (a.min() < 0 or a.max() > 255 or not np.all(a == np.round(a))):
            raise InputError(f"the {what} holds non-integer values; give 0/1, label or bit values")
        if a.min() < 0 or a.max() > 255:
            raise InputError(f"the {what} holds values outside 0..255; give 0/1, label or bit values")
        a = a.astype(np.uint8)
    return a


def read_mask_file(path: str | Path) -> np.ndarray:
    """A mask image (PNG, BMP, TIFF) or ``.npy`` array as uint8 (H, W)."""
    p = Path(path)
    if p.suffix.lower() == ".npy":
        return _as_uint8_mask(np.load(p, allow_pickle=False), what=f"mask {p}")
    try:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L") if im.mode not in ("L", "P", "I", "I;16", "1") else im)
    except OSError as error:
        raise InputError(f"mask {p} is not a readable image ({type(error).__name__}); replace or remove it") from None
    return _as_uint8_mask(a, what=f"mask {p}")


def _default_names(encoding: str, names: Sequence[str] | None, images) -> list[str]:
    if names:
        return [str(n) for n in names]
    if encoding == "binary":
        return ["abnormal"]
    raise InputError(f"{encoding} masks need their channel names; pass {{names=...}} (one per label value or bit)", param="names")


def attach_masks(images, masks: Masks):
    """``images`` with ``masks`` attached (a copy of the ImageSet; pixels are shared)."""
    if len(masks) != len(images):
        raise InputError(f"{len(masks)} masks for {len(images)} items; give one per item (None where unknown)")
    return replace(images, masks=masks)


def attach_mask_folder(
    images,
    folder: str | Path,
    *,
    encoding: str = "binary",
    names: Sequence[str] | None = None,
    required: bool = False,
):
    """Attach the masks in ``folder``: item i's mask is the file named after its id (``<id>.png``,
    or another mask extension; ids with folders map to sub-folders) or, failing that, after its
    image file's name.  Items without a mask file are trained from their labels alone, unless
    ``required``.  Returns a new ImageSet."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"no such mask folder: {root}; check {{folder}}", param="folder")
    names = _default_names(encoding, names, images)
    files: list[Path | None] = []
    for item_id, path in zip(images.ids, images.paths):
        found = None
        stems = [str(item_id)]
        stem = Path(str(path).split("#")[0]).stem
        if stem and stem not in stems:
            stems.append(stem)
        for s in stems:
            for ext in MASK_EXTENSIONS:
                candidate = root / f"{s}{ext}"
                if candidate.is_file():
                    found = candidate
                    break
            if found is not None:
                break
        files.append(found)
    known = np.array([f is not None for f in files], bool)
    if not known.any():
        raise InputError(f"no mask in {root} matches an item id (e.g. {root / (str(images.ids[0]) + '.png')}); name mask files after the items' ids")
    if required and not known.all():
        missing = images.ids[int(np.flatnonzero(~known)[0])]
        raise InputError(f"{int((~known).sum())} items have no mask in {root} (e.g. {missing}); add them or pass {{required=False}}", param="required")
    masks = Masks(names=names, encoding=encoding, read=lambda i: read_mask_file(files[i]) if files[i] is not None else None,
                  known=known, source=f"folder:{root}")
    return attach_masks(images, masks)


def attach_mask_column(
    images,
    column: str,
    *,
    root: str | Path | None = None,
    encoding: str = "binary",
    names: Sequence[str] | None = None,
):
    """Attach masks named by the metadata column ``column`` (e.g. a CSV manifest's ``mask``
    column): each value is a mask file path, absolute or relative to ``root``; a blank value
    means no mask for that item.  Returns a new ImageSet."""
    if column not in images.metadata:
        have = ", ".join(sorted(images.metadata)) or "none"
        raise InputError(f"no metadata column {column!r} (columns: {have}); pass {{column=NAME}} naming the mask paths", param="column")
    base = Path(root).expanduser() if root is not None else Path(".")
    names = _default_names(encoding, names, images)
    files: list[Path | None] = []
    for value in np.asarray(images.metadata[column]).astype(str):
        v = value.strip()
        if v.lower() in ("", "nan", "none", "null"):
            files.append(None)
            continue
        p = Path(v).expanduser()
        p = p if p.is_absolute() else base / p
        if not p.is_file():
            raise InputError(f"mask file {p} (column {column!r}) does not exist; fix the path or pass {{root=FOLDER}}", param="root")
        files.append(p)
    known = np.array([f is not None for f in files], bool)
    masks = Masks(names=names, encoding=encoding, read=lambda i: read_mask_file(files[i]) if files[i] is not None else None,
                  known=known, source=f"column:{column}")
    return attach_masks(images, masks)


__all__ = ["ENCODINGS", "Masks", "attach_mask_column", "attach_mask_folder", "attach_masks", "read_mask_file"]
