"""Seeded train/test splits for sources that have none of their own.

Sources without official splits (a folder of images, a plain npz, a CSV without a split column,
the demo set) get a seeded 70/30 split, stratified by class when labels are given, recorded
as ``split_origin = "seeded 70/30 (seed S)"``.  With ``split=False`` every item is in split
``"all"`` and ``split_origin`` is ``"none"``.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError


def split_origin_text(*, seed: int, test_fraction: float = 0.3) -> str:
    """The ``split_origin`` recorded for a seeded split, e.g. ``"seeded 70/30 (seed 0)"``."""
    test = int(round(test_fraction * 100))
    return f"seeded {100 - test}/{test} (seed {seed})"


def seeded_split(
    n: int,
    *,
    seed: int,
    test_fraction: float = 0.3,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Return an object array of n strings, ``"train"`` or ``"test"``.

    The same (n, seed, test_fraction, labels) always give the same split.  With ``labels``
    (int array of shape (n,); -1 = unlabelled, which forms its own stratum) the split is
    stratified: each class puts ``round(test_fraction * size)`` of its items in test.
    Multi-label (n, C) labels are stratified by their first positive label.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be between 0 and 1, got {test_fraction} (use e.g. 0.3)")
    if int(seed) < 0:
        raise InputError(f"seed must be a non-negative whole number, got {seed}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    out = np.full(n, "train", dtype=object)
    if n == 0:
        return out
    if labels is None:
        strata = np.zeros(n, np.int64)
    else:
        lab = np.asarray(labels)
        if len(lab) != n:
            raise ValueError("labels must have one entry per item")
        if lab.ndim == 2:
            positive = lab == 1
            strata = np.where(positive.any(axis=1), positive.argmax(axis=1), -1).astype(np.int64)
        else:
            strata = lab.astype(np.int64)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        n_test = int(round(test_fraction * len(members)))
        if n_test:
            chosen = rng.permutation(members)[:n_test]
            out[chosen] = "test"
    return out


def assign_splits(
    n: int,
    *,
    split: bool,
    seed: int,
    labels: np.ndarray | None = None,
    source_splits: np.ndarray | None = None,
    test_fraction: float = 0.3,
) -> tuple[np.ndarray, str]:
    """Splits and ``split_origin`` for a source: the source's own splits when it has them,
    else a seeded stratified split; everything ``"all"`` when ``split`` is False."""
    if not split:
        return np.full(n, "all", dtype=object), "none"
    if source_splits is not None:
        return np.asarray(source_splits, dtype=object), "source"
    splits = seeded_split(n, seed=seed, test_fraction=test_fraction, labels=labels)
    return splits, split_origin_text(seed=seed, test_fraction=test_fraction)


def archive_splits(splits) -> list[str]:
    """The splits that form the default archive, the one archive rule: train + val when the
    items have a train split, every item (``["all"]``) otherwise.  Items added to a store later
    join it whatever their split (the store applies that part)."""
    present = set(np.asarray(splits).astype(str))
    if present <= {"all"} or "train" not in present:
        return ["all"]
    return [s for s in ("train", "val") if s in present]
