"""The one interface every data source yields: images, stable ids, paths, splits and labels.

An :class:`ImageSet` is a table of N items.  Images are read on demand through a reader
function (a folder of JPEGs is never held in memory whole), or come from an in-memory uint8
array (npz sources, the demo set).

Labels follow one convention for every source:

* ``task == "multiclass"``: ``labels`` is int64 of shape (N,), a class index into
  ``class_names``, or -1 where the item has no label.
* ``task == "multilabel"``: ``labels`` is int8 of shape (N, C): 1 positive, 0 negative,
  -1 uncertain or unknown (masked out of training losses; the CheXpert policy decides what
  becomes -1, see :mod:`graphret.data.csv_manifest`).
* ``task == "unlabelled"``: ``labels`` is None and ``class_names`` is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

Task = Literal["multiclass", "multilabel", "unlabelled"]
SPLITS = ("train", "val", "test", "all")


@dataclass
class ImageSet:
    """N labelled images from one source.

    ``read(i)`` returns item i as uint8, (H, W) grey or (H, W, 3) colour; sizes may differ
    between items.  ``images`` may hold all images as one uint8 array instead of ``read``.
    """

    ids: list[str]
    paths: list[str]
    splits: np.ndarray  # str array of shape (N,), values from SPLITS
    labels: np.ndarray | None
    class_names: list[str]
    task: Task
    source: str  # human description, e.g. "npz:/data/breastmnist.npz"
    images: np.ndarray | None = None
    read: Callable[[int], np.ndarray] | None = None
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count of skipped files
    split_origin: str = "source"  # "source", "seeded 70/30 (seed S)" or "none"
    # Extra per-item columns (str or numeric arrays of shape (N,)), e.g. the demo set's
    # "anatomy"; stored as item columns and usable in metadata filters.
    metadata: dict[str, np.ndarray] = field(default_factory=dict)
    # Optional per-item segmentation masks of abnormal regions (a graphret.data.masks.Masks,
    # None when the source has none); see graphret.data.masks.
    masks: Any = None
    # The group of each item (str array of shape (N,)): a patient, a hashed DICOM PatientID, a
    # NIfTI volume file; items of one group never straddle a seeded split.  None: no groups.
    groups: np.ndarray | None = None
    # Where the groups came from, e.g. "column 'Patient ID'", "DICOM PatientID (hashed)".
    group_by: str = ""
    # How a folder's layout was read, e.g. "wrapper folder 'X' / split folders / class folders".
    layout: str = ""

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.paths) != n or len(self.splits) != n:
            raise ValueError("ids, paths and splits must have one entry per item")
        if self.labels is not None and len(self.labels) != n:
            raise ValueError("labels must have one entry per item")
        if (self.images is None) == (self.read is None):
            raise ValueError("give exactly one of images or read")
        self.splits = np.asarray(self.splits, dtype=object)
        for name, column in self.metadata.items():
            if len(column) != n:
                raise ValueError(f"metadata column {name!r} must have one entry per item")
        if self.masks is not None and len(self.masks) != n:
            raise ValueError("masks must have one entry per item")
        if self.groups is not None:
            if len(self.groups) != n:
                raise ValueError("groups must have one entry per item")
            self.groups = np.asarray(self.groups).astype(str).astype(object)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    def image(self, i: int) -> np.ndarray:
        """Item i as uint8, (H, W) or (H, W, 3)."""
        if self.images is not None:
            return self.images[i]
        assert self.read is not None
        return self.read(i)

    def load(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        size: int | None = None,
        channels: int | None = None,
    ) -> np.ndarray:
        """Items as one uint8 array (n, H, W, C), resized to size x size and converted to C
        channels (1 grey, 3 colour) when asked; without size all items must share one shape."""
        from graphret.data.transforms import conform

        out = [conform(self.image(int(i)), size=size, channels=channels) for i in indices]
        if not out:
            h = size or 1
            return np.zeros((0, h, h, channels or 1), np.uint8)
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ValueError(f"images differ in shape {sorted(shapes)[:3]}; pass size=")
        return np.stack(out)

    def batches(
        self,
        indices: Sequence[int] | np.ndarray,
        *,
        batch_size: int,
        size: int | None = None,
        channels: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield uint8 batches (b, H, W, C) of the given items, in order, with bounded memory."""
        indices = np.asarray(indices)
        for start in range(0, len(indices), batch_size):
            yield self.load(indices[start : start + batch_size], size=size, channels=channels)

    def indices_of(self, splits: Sequence[str]) -> np.ndarray:
        """Row positions of the items whose split is one of ``splits``."""
        return np.flatnonzero(np.isin(self.splits.astype(str), list(splits)))

    def label_names(self, i: int) -> str | list[str] | None:
        """Item i's label as the JSON output shows it: the class name, the list of positive
        labels (multi-label), or None."""
        if self.labels is None:
            return None
        if self.task == "multilabel":
            return [self.class_names[c] for c in np.flatnonzero(self.labels[i] == 1)]
        c = int(self.labels[i])
        return self.class_names[c] if c >= 0 else None
