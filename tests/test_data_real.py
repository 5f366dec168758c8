"""The loaders on the real data sets in ../shared/data (skipped when that folder is missing)."""

import numpy as np
import pytest

from graphret.data import open_source
from graphret.data.split import seeded_split

MEDNIST_CLASSES = ["AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"]


def _counts(s):
    return {k: int((s.splits == k).sum()) for k in ("train", "val", "test")}


def test_breastmnist_flat_labels(shared_data):
    s = open_source(shared_data / "medmnist" / "breastmnist.npz")
    assert len(s) == 780 and _counts(s) == {"train": 546, "val": 78, "test": 156}
    assert s.class_names == ["malignant", "normal+benign"] and s.task == "multiclass"
    assert s.labels.shape == (780,) and set(np.unique(s.labels)) == {0, 1}
    assert s.images.shape == (780, 28, 28) and s.split_origin == "source"
    assert s.ids[546] == "val-000000"


def test_pneumoniamnist_official_labels(shared_data):
    s = open_source(shared_data / "medmnist" / "pneumoniamnist.npz")
    assert _counts(s) == {"train": 4708, "val": 524, "test": 624}
    assert s.class_names == ["normal", "pneumonia"]
    assert s.labels.shape == (5856,) and s.labels.dtype == np.int64
    assert np.bincount(s.labels[s.indices_of(["train"])]).tolist() == [1214, 3494]


def test_retinamnist_colour(shared_data):
    s = open_source(shared_data / "medmnist" / "retinamnist.npz")
    assert s.images.shape == (1600, 28, 28, 3)
    assert s.class_names == ["0", "1", "2", "3", "4"]
    assert _counts(s) == {"train": 1080, "val": 120, "test": 400}
    assert s.image(0).shape == (28, 28, 3)


@pytest.fixture(scope="module")
def mednist(shared_data):
    return open_source(shared_data / "mednist" / "mednist_64.npz", seed=0)


def test_mednist_npz(mednist):
    s = mednist
    assert len(s) == 58954 and s.class_names == MEDNIST_CLASSES
    assert s.images.shape == (58954, 64, 64)
    assert s.ids[0] == "AbdomenCT/000000" and len(set(s.ids)) == len(s)
    assert s.paths[0] == "AbdomenCT/000000.jpeg"
    assert s.split_origin == "seeded 70/30 (seed 0)"
    assert abs((s.splits == "test").mean() - 0.3) < 0.005
    for k in range(6):
        in_class = s.splits[s.labels == k]
        assert abs((in_class == "test").mean() - 0.3) < 0.001


def test_mednist_split_identical_for_seed_and_different_for_another(mednist):
    # The loader's split is seeded_split over its labels: same seed -> identical.
    assert list(seeded_split(len(mednist), seed=0, labels=mednist.labels)) == list(mednist.splits)
    other = seeded_split(len(mednist), seed=1, labels=mednist.labels)
    changed = (other != mednist.splits).mean()
    assert 0.2 < changed < 0.6
    assert abs((other == "test").mean() - 0.3) < 0.005


def test_mednist_jpeg_tree_matches_npz(shared_data, mednist):
    tree = open_source(shared_data / "mednist" / "jpeg_sample")
    assert len(tree) == 1200 and tree.class_names == MEDNIST_CLASSES
    position = {k: i for i, k in enumerate(mednist.ids)}
    assert all(i in position for i in tree.ids)  # same ids from both sources
    for j in (0, 399, 1199):
        i = position[tree.ids[j]]
        assert tree.class_names[tree.labels[j]] == mednist.class_names[mednist.labels[i]]
        assert np.array_equal(tree.image(j), mednist.images[i])


def test_bloodcells_npz(shared_data):
    s = open_source(shared_data / "bloodcells" / "pbc_blood_28.npz", seed=0)
    assert len(s) == 17092 and len(s.class_names) == 8
    assert s.class_names[0] == "basophil" and s.class_names[-1] == "platelet"
    assert s.images.shape == (17092, 28, 28, 3)
    assert s.ids[0] == "basophil/BA_100102"
    assert abs((s.splits == "test").mean() - 0.3) < 0.005
