import hashlib

import numpy as np
import pytest

from graphret.data.demo import ANATOMIES, FINDINGS, PREVALENCE, generate_demo, load_demo
from graphret.errors import InputError


@pytest.fixture(scope="module")
def demo():
    return load_demo(seed=0)


def test_demo_default_shape_and_labels(demo):
    assert len(demo) == 2000
    assert demo.images.shape == (2000, 64, 64) and demo.images.dtype == np.uint8
    assert demo.task == "multilabel"
    assert demo.class_names == list(FINDINGS)
    assert demo.labels.shape == (2000, 5) and demo.labels.dtype == np.int8
    assert set(np.unique(demo.labels)) == {0, 1}
    assert demo.ids[0] == "demo-000000" and demo.ids[-1] == "demo-001999"
    assert demo.split_origin == "seeded 70/30 (seed 0)"
    assert demo.metadata["anatomy"].shape == (2000,)


def test_demo_same_seed_identical_bytes_other_seed_differs():
    a = generate_demo(300, seed=11)
    b = generate_demo(300, seed=11)
    c = generate_demo(300, seed=12)
    assert hashlib.sha256(a[0].tobytes()).hexdigest() == hashlib.sha256(b[0].tobytes()).hexdigest()
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[2], c[2])


def test_findings_prevalence_and_independence(demo):
    prevalence = demo.labels.mean(axis=0)
    assert np.all(np.abs(prevalence - np.array(PREVALENCE)) < 0.04), prevalence
    assert np.all((prevalence > 0.05) & (prevalence < 0.5))
    anatomy = demo.metadata["anatomy"]
    for name in ANATOMIES:
        within = demo.labels[anatomy == name].mean(axis=0)
        assert np.all(np.abs(within - prevalence) < 0.08), (name, within)
    n_pos = demo.labels.sum(axis=1)
    assert (n_pos == 0).mean() > 0.2 and (n_pos >= 2).mean() > 0.1  # real multi-label rows


def test_anatomy_balanced_and_split_stratified(demo):
    anatomy = demo.metadata["anatomy"]
    counts = {name: int((anatomy == name).sum()) for name in ANATOMIES}
    assert counts == {name: 500 for name in ANATOMIES}
    for name in ANATOMIES:
        assert (demo.splits[anatomy == name] == "test").sum() == 150


def test_anatomy_learnable_from_pixels(demo):
    x = demo.images.reshape(len(demo), -1).astype(np.float32) / 255.0
    anatomy = demo.metadata["anatomy"]
    train = demo.indices_of(["train"])
    test = demo.indices_of(["test"])
    centroids = np.stack([x[train][anatomy[train] == a].mean(0) for a in ANATOMIES])
    predicted = np.array(ANATOMIES)[((x[test][:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)]
    accuracy = (predicted == anatomy[test]).mean()
    assert accuracy > 0.8, accuracy


def test_findings_change_pixels(demo):
    img = demo.images.astype(np.float32)
    art = demo.labels[:, FINDINGS.index("artefact")] == 1
    # Streak artefacts add high-frequency energy: mean absolute horizontal+vertical second difference.
    hf = np.abs(np.diff(img, 2, axis=1)).mean((1, 2)) + np.abs(np.diff(img, 2, axis=2)).mean((1, 2))
    assert hf[art].mean() > hf[~art].mean() * 1.05
    nod = demo.labels[:, FINDINGS.index("nodule")] == 1
    assert (img[nod] >= 250).mean() > (img[~nod] >= 250).mean()


def test_demo_anatomy_variant():
    s = load_demo(labels="anatomy", n=200, seed=3)
    assert s.task == "multiclass" and s.class_names == list(ANATOMIES)
    assert s.labels.dtype == np.int64 and np.bincount(s.labels).tolist() == [50] * 4
    assert set(s.metadata) == {"findings", *FINDINGS}
    row = int(np.flatnonzero(s.metadata["nodule"] == 1)[0])
    assert "nodule" in s.metadata["findings"][row].split("+")
    same = load_demo(labels="findings", n=200, seed=3)
    assert np.array_equal(s.images, same.images)
    assert list(same.metadata["anatomy"]) == [ANATOMIES[k] for k in s.labels]


def test_demo_options_and_errors():
    s = load_demo(n=10, size=32, split=False)
    assert s.images.shape == (10, 32, 32) and set(s.splits) == {"all"} and s.split_origin == "none"
    with pytest.raises(InputError):
        load_demo(labels="organs")
    with pytest.raises(InputError):
        generate_demo(0)
