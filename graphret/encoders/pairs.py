"""Image pairs for the Siamese encoder: from labels, or from a user's CSV of id pairs.

A pair set is three aligned arrays: row positions ``a`` and ``b`` into the ImageSet, and
``same`` (1 = similar, 0 = dissimilar).

* From labels (:func:`pairs_from_labels`): every anchor gets one partner, a positive (same
  class) or a negative (another class) with equal odds, drawn from a seeded generator; multi-label
  items count as "same" when their label sets (uncertain counted positive) are identical.
* From a CSV (:func:`read_pair_csv`): columns ``id_a,id_b,same`` (header required; ``same`` is
  1/0, true/false, yes/no, same/different, similar/dissimilar); ids are the ImageSet's ids.  No
  class labels are needed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.errors import InputError

_TRUE = {"1", "true", "yes", "y", "same", "similar", "t"}
_FALSE = {"0", "false", "no", "n", "different", "dissimilar", "f"}


@dataclass
class Pairs:
    """Aligned pairs of row positions with a same (1) / different (0) flag."""

    a: np.ndarray
    b: np.ndarray
    same: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    def subset(self, mask: np.ndarray) -> "Pairs":
        return Pairs(self.a[mask], self.b[mask], self.same[mask])

    def within(self, rows: np.ndarray) -> "Pairs":
        """The pairs whose both items are among ``rows``."""
        keep = np.isin(self.a, rows) & np.isin(self.b, rows)
        return self.subset(keep)


def label_keys(images: ImageSet, rows: np.ndarray) -> np.ndarray:
    """One int key per item: its class (multi-class) or its label set (multi-label; uncertain
    counted positive); -1 = no label."""
    if images.labels is None or images.task == "unlabelled":
        raise InputError(
            "Siamese pairs from labels need class labels, but the source has none; "
            "give a pair list with {pairs=PAIRS.csv} (columns id_a,id_b,same)"
        )
    labels = np.asarray(images.labels)[rows]
    if labels.ndim == 1:
        return labels.astype(np.int64)
    pos = labels != 0  # 1 and -1 (uncertain) count positive, as in Haq et al.'s retrieval
    known = ~(labels == -1).all(axis=1)  # an item with every label unknown has no label set
    _, keys = np.unique(pos, axis=0, return_inverse=True)
    return np.where(known, keys.reshape(-1), -1).astype(np.int64)


def pairs_from_labels(images: ImageSet, rows: np.ndarray, *, rng: np.random.Generator, positive_fraction: float = 0.5) -> Pairs:
    """One pair per labelled anchor in ``rows``: a same-class partner with probability
    ``positive_fraction``, else one of another class (both drawn uniformly)."""
    rows = np.asarray(rows, dtype=np.int64)
    keys = label_keys(images, rows)
    rows, keys = rows[keys >= 0], keys[keys >= 0]
    classes = np.unique(keys)
    if len(classes) < 2:
        raise InputError(
            "Siamese pairs from labels need at least two classes in the training split (no dissimilar pairs otherwise); "
            "add images of other classes or give a pair list with {pairs}"
        )
    members = {c: rows[keys == c] for c in classes}
    order = rng.permutation(len(rows))
    anchors, anchor_keys = rows[order], keys[order]
    want_same = rng.random(len(anchors)) < positive_fraction
    partners = np.empty(len(anchors), np.int64)
    same = np.empty(len(anchors), np.int8)
    for i, (k, s) in enumerate(zip(anchor_keys, want_same)):
        pool = members[k]
        if s and len(pool) > 1:
            j = pool[rng.integers(len(pool))]
            partners[i], same[i] = j, 1
        else:
            other = classes[classes != k][rng.integers(len(classes) - 1)]
            partners[i], same[i] = members[other][rng.integers(len(members[other]))], 0
    return Pairs(anchors, partners, same)


def parse_same(value: str, where: str) -> int:
    v = value.strip().lower()
    if v in _TRUE:
        return 1
    if v in _FALSE:
        return 0
    raise InputError(f"{where}: 'same' must be 1/0 (or same/different), got {value!r}; fix that row")


def read_pair_csv(path: str | Path, images: ImageSet) -> Pairs:
    """Read a pair list: a CSV with a header naming ``id_a``, ``id_b`` and ``same`` (the first
    three columns are taken when the header names differ)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such pair list: {path} (give a CSV with columns id_a,id_b,same)")
    position = {str(i): n for n, i in enumerate(images.ids)}
    a, b, same = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path} is empty; give a CSV with columns id_a,id_b,same")
        names = [h.strip().lower() for h in header]
        if {"id_a", "id_b", "same"} <= set(names):
            ia, ib, isame = names.index("id_a"), names.index("id_b"), names.index("same")
        elif len(names) >= 3:
            ia, ib, isame = 0, 1, 2
        else:
            raise InputError(f"{path} needs three columns id_a,id_b,same; it has {len(names)}")
        missing = []
        for line, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(ia, ib, isame):
                raise InputError(f"{path} line {line}: expected 3 columns id_a,id_b,same, got {len(row)}; fix that row")
            ida, idb = row[ia].strip(), row[ib].strip()
            if ida not in position or idb not in position:
                missing.append(ida if ida not in position else idb)
                continue
            a.append(position[ida])
            b.append(position[idb])
            same.append(parse_same(row[isame], f"{path} line {line}"))
    if missing:
        raise InputError(f"{path} names {len(missing)} ids not in the source (first: {missing[0]!r}); use the ids that `graphret` lists for the source")
    if not a:
        raise InputError(f"{path} holds no pairs; give rows id_a,id_b,same")
    pairs = Pairs(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(same, np.int8))
    if pairs.same.min() == pairs.same.max():
        kind = "similar" if pairs.same[0] else "dissimilar"
        raise InputError(f"{path} holds only {kind} pairs; the contrastive loss needs both similar and dissimilar pairs")
    return pairs
