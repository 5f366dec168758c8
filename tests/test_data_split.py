import numpy as np
import pytest

from graphret.data.split import assign_splits, seeded_split, split_origin_text
from graphret.errors import InputError


def test_seeded_split_counts_and_values():
    s = seeded_split(1000, seed=3)
    assert s.dtype == object
    assert set(s) == {"train", "test"}
    assert (s == "test").sum() == 300


def test_seeded_split_is_deterministic_and_seed_dependent():
    a = seeded_split(500, seed=1)
    b = seeded_split(500, seed=1)
    c = seeded_split(500, seed=2)
    assert (a == b).all()
    assert (a != c).any()
    assert (c == "test").sum() == 150


def test_seeded_split_stratified_by_class():
    labels = np.repeat([0, 1, 2], [100, 50, 10])
    s = seeded_split(len(labels), seed=0, labels=labels)
    assert [(s[labels == k] == "test").sum() for k in range(3)] == [30, 15, 3]


def test_seeded_split_multilabel_strata_and_unlabelled():
    labels = np.zeros((40, 3), np.int8)
    labels[:20, 1] = 1
    s = seeded_split(40, seed=0, labels=labels)
    assert (s[:20] == "test").sum() == 6
    assert (s[20:] == "test").sum() == 6
    s1 = seeded_split(10, seed=0, labels=np.array([-1] * 10))
    assert (s1 == "test").sum() == 3


def test_seeded_split_other_fraction_and_bad_fraction():
    assert (seeded_split(100, seed=0, test_fraction=0.2) == "test").sum() == 20
    assert split_origin_text(seed=4, test_fraction=0.2) == "seeded 80/20 (seed 4)"
    with pytest.raises(InputError):
        seeded_split(10, seed=0, test_fraction=1.5)


def test_assign_splits_modes():
    splits, origin = assign_splits(10, split=False, seed=0)
    assert list(splits) == ["all"] * 10 and origin == "none"
    src = np.array(["train"] * 5 + ["test"] * 5, dtype=object)
    splits, origin = assign_splits(10, split=True, seed=0, source_splits=src)
    assert origin == "source" and list(splits) == list(src)
    splits, origin = assign_splits(10, split=True, seed=7)
    assert origin == "seeded 70/30 (seed 7)" and (splits == "test").sum() == 3
