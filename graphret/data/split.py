"""Seeded train/test splits for sources that have none of their own.

Sources without official splits (a folder of images, a plain npz, a CSV without a split column,
the demo set) get a seeded 70/30 split, stratified by class when labels are given, recorded
as ``split_origin = "seeded 70/30 (seed S)"``.  With ``split=False`` every item is in split
``"all"`` and ``split_origin`` is ``"none"``.

With ``groups`` (one group per item: a patient, a DICOM PatientID, a NIfTI volume) the split is
drawn over whole groups, so that no group has items in both train and test (a patient-level
split): groups are stratified by their most common class, shuffled with the seed, and put in
test until each stratum's test share reaches the fraction.  The origin then reads
``"seeded 70/30 by group (GROUP_BY; seed S)"``.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError


def split_origin_text(*, seed: int, test_fraction: float = 0.3, group_by: str | None = None) -> str:
    """The ``split_origin`` recorded for a seeded split, e.g. ``"seeded 70/30 (seed 0)"``, or
    ``"seeded 70/30 by group (column 'Patient ID'; seed 0)"`` for a group split."""
    test = int(round(test_fraction * 100))
    if group_by:
        return f"seeded {100 - test}/{test} by group ({group_by}; seed {seed})"
    return f"seeded {100 - test}/{test} (seed {seed})"


def _strata(n: int, labels: np.ndarray | None) -> np.ndarray:
    """One stratum per item: the class (multi-class), the first positive label (multi-label,
    -1 for none), or 0 for all when there are no labels."""
    if labels is None:
        return np.zeros(n, np.int64)
    lab = np.asarray(labels)
    if len(lab) != n:
        raise ValueError("labels must have one entry per item")
    if lab.ndim == 2:
        positive = lab == 1
        return np.where(positive.any(axis=1), positive.argmax(axis=1), -1).astype(np.int64)
    return lab.astype(np.int64)


def group_split(
    groups: np.ndarray,
    *,
    seed: int,
    test_fraction: float = 0.3,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """``"train"`` / ``"test"`` per item with every group wholly on one side.

    Each group's stratum is its items' most common stratum (ties: the smallest); within each
    stratum the groups are shuffled with the seed and taken into test, one after another,
    while that keeps the stratum's test items nearest to ``round(test_fraction * items)``.
    The same (groups, seed, test_fraction, labels) always give the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be between 0 and 1, got {test_fraction} (use e.g. 0.3)")
    if int(seed) < 0:
        raise InputError(f"seed must be a non-negative whole number, got {seed}")
    groups = np.asarray(groups).astype(str)
    n = len(groups)
    out = np.full(n, "train", dtype=object)
    if n == 0:
        return out
    names, inverse = np.unique(groups, return_inverse=True)
    strata = _strata(n, labels)
    # most common stratum per group (bincount over (group, stratum) pairs)
    values, s_idx = np.unique(strata, return_inverse=True)
    counts = np.zeros((len(names), len(values)), np.int64)
    np.add.at(counts, (inverse, s_idx), 1)
    group_stratum = counts.argmax(axis=1)
    sizes = counts.sum(axis=1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x6E0]))
    in_test = np.zeros(len(names), bool)
    for s in range(len(values)):
        members = np.flatnonzero(group_stratum == s)
        target = test_fraction * sizes[members].sum()
        taken = 0
        for g in rng.permutation(members):
            if abs(taken + sizes[g] - target) <= abs(taken - target) and taken < target:
                in_test[g] = True
                taken += sizes[g]
    out[in_test[inverse]] = "test"
    return out


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
    strata = _strata(n, labels)
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
    groups: np.ndarray | None = None,
    group_by: str = "",
) -> tuple[np.ndarray, str]:
    """Splits and ``split_origin`` for a source: the source's own splits when it has them,
    else a seeded stratified split (over whole groups when ``groups`` is given, ``group_by``
    naming where they came from); everything ``"all"`` when ``split`` is False."""
    if not split:
        return np.full(n, "all", dtype=object), "none"
    if source_splits is not None:
        return np.asarray(source_splits, dtype=object), "source"
    if groups is not None:
        splits = group_split(groups, seed=seed, test_fraction=test_fraction, labels=labels)
        return splits, split_origin_text(seed=seed, test_fraction=test_fraction, group_by=group_by or "group")
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
