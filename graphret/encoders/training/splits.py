"""Which items train and which validate: the source's splits, or a seeded stratified holdout."""

from __future__ import annotations

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.errors import InputError


def training_indices(images: ImageSet) -> tuple[np.ndarray, np.ndarray | None]:
    """(train, validation) row positions: the train split (every item when the source has no
    train split) and the val split when there is one."""
    splits = set(np.asarray(images.splits).astype(str))
    train = images.indices_of(["train"]) if "train" in splits else np.arange(len(images))
    validation = images.indices_of(["val"]) if "val" in splits else None
    if len(train) == 0:
        raise InputError(f"{images.source} has no images to train on; check the source")
    return train, validation


def holdout(train: np.ndarray, labels: np.ndarray | None, *, seed: int, fraction: float = 0.1, min_items: int = 20) -> tuple[np.ndarray, np.ndarray | None]:
    """Split ``train`` into (train, validation) with a seeded, stratified ``fraction`` held out
    for early stopping, when no validation split is given; None when too few items."""
    train = np.asarray(train, dtype=np.int64)
    if len(train) < min_items:
        return train, None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA1]))
    if labels is not None and np.asarray(labels).ndim == 1:
        strata = np.asarray(labels)[train]
    else:
        strata = np.zeros(len(train), np.int64)
    val_mask = np.zeros(len(train), bool)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        k = int(round(fraction * len(members)))
        if 0 < k < len(members):
            val_mask[rng.permutation(members)[:k]] = True
    if not val_mask.any():
        return train, None
    return train[~val_mask], train[val_mask]
