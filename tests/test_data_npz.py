import numpy as np
import pytest

from graphret.data.npz import load_npz
from graphret.errors import InputError


def _official(path, *, labels_shape="n1", colour=False, compressed=True, n=(6, 2, 3)):
    rng = np.random.default_rng(0)
    arrays = {}
    for s, k in zip(("train", "val", "test"), n):
        shape = (k, 28, 28, 3) if colour else (k, 28, 28)
        arrays[f"{s}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        lab = np.arange(k) % 2
        if labels_shape == "n1":
            arrays[f"{s}_labels"] = lab[:, None].astype(np.uint8)
        elif labels_shape == "n":
            arrays[f"{s}_labels"] = lab.astype(np.uint8)
        else:
            ml = np.zeros((k, 4), np.uint8)
            ml[np.arange(k), np.arange(k) % 4] = 1
            ml[0, 3] = 1
            arrays[f"{s}_labels"] = ml
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays


def test_official_layout_n1_labels(tmp_path):
    path = tmp_path / "toy.npz"
    arrays = _official(path)
    s = load_npz(path)
    assert len(s) == 11
    assert s.task == "multiclass"
    assert s.labels.dtype == np.int64 and s.labels.shape == (11,)
    assert s.class_names == ["0", "1"]
    assert list(s.splits) == ["train"] * 6 + ["val"] * 2 + ["test"] * 3
    assert s.split_origin == "source"
    assert s.ids[0] == "train-000000" and s.ids[6] == "val-000000" and s.ids[-1] == "test-000002"
    assert s.paths[7] == f"{path}#val_images[1]"
    assert np.array_equal(s.image(7), arrays["val_images"][1])
    assert s.images.shape == (11, 28, 28) and s.images.dtype == np.uint8
    assert s.source == f"npz:{path}"


def test_official_layout_flat_labels_and_known_names(tmp_path):
    path = tmp_path / "breastmnist.npz"
    _official(path, labels_shape="n")
    s = load_npz(path)
    assert s.class_names == ["malignant", "normal+benign"]
    assert s.labels.tolist()[:6] == [0, 1, 0, 1, 0, 1]


def test_official_layout_multilabel_colour(tmp_path):
    path = tmp_path / "chestish.npz"
    _official(path, labels_shape="ml", colour=True)
    s = load_npz(path)
    assert s.task == "multilabel" and s.multilabel
    assert s.labels.shape == (11, 4) and s.labels.dtype == np.int8
    assert s.class_names == ["0", "1", "2", "3"]
    assert s.labels[0].tolist() == [1, 0, 0, 1]
    assert s.image(0).shape == (28, 28, 3)
    assert s.label_names(0) == ["0", "3"]


def test_official_layout_split_false(tmp_path):
    path = tmp_path / "toy.npz"
    _official(path)
    s = load_npz(path, split=False)
    assert set(s.splits) == {"all"} and s.split_origin == "none"


def test_uncompressed_npz_is_memory_mapped(tmp_path):
    path = tmp_path / "plain.npz"
    images = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    np.savez(path, images=images, labels=np.array([0, 1, 1, 0, 2]))
    s = load_npz(path)
    assert isinstance(s.images, np.memmap)
    assert np.array_equal(np.asarray(s.images), images)


def test_plain_layout_with_names_and_filenames(tmp_path):
    path = tmp_path / "plain.npz"
    images = np.random.default_rng(1).integers(0, 256, (10, 16, 16), dtype=np.uint8)
    files = [f"cls{i % 2}/img{i // 2}.png" for i in range(10)]
    files[9] = files[8].replace(".png", ".jpg")  # same stem as item 8
    np.savez_compressed(path, images=images, labels=np.arange(10) % 2,
                        class_names=np.array(["neg", "pos"]), filenames=np.array(files))
    s = load_npz(path, seed=5)
    assert s.class_names == ["neg", "pos"]
    assert s.ids[0] == "cls0/img0" and s.ids[1] == "cls1/img0"
    assert len(set(s.ids)) == 10
    assert s.ids[8] == "cls0/img4" and s.ids[9] == "cls0/img4~2"
    assert s.paths[3] == files[3]
    assert s.split_origin == "seeded 70/30 (seed 5)"
    assert [(s.splits[s.labels == k] == "test").sum() for k in (0, 1)] == [2, 2]  # round(0.3*5)


def test_plain_layout_without_extras(tmp_path):
    path = tmp_path / "bare.npz"
    np.savez_compressed(path, images=np.zeros((4, 6, 6, 3), np.uint8))
    s = load_npz(path)
    assert s.task == "unlabelled" and s.labels is None and s.class_names == []
    assert s.ids == ["img-000000", "img-000001", "img-000002", "img-000003"]
    assert s.paths[2] == f"{path}#images[2]"


def test_plain_layout_with_splits_key_and_float_images(tmp_path):
    path = tmp_path / "f.npz"
    images = np.linspace(0, 1, 3 * 4 * 4).reshape(3, 4, 4).astype(np.float32)
    np.savez(path, images=images, labels=np.array([0, 1, 0]), splits=np.array(["Train", "TEST", "val"]))
    s = load_npz(path)
    assert list(s.splits) == ["train", "test", "val"] and s.split_origin == "source"
    assert s.images.dtype == np.uint8 and s.images.max() == 255 and s.images.min() == 0


def test_npz_without_images_names_keys(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, pixels=np.zeros((2, 3, 3)), y=np.zeros(2))
    with pytest.raises(InputError, match=r"no images: its keys are pixels, y"):
        load_npz(path)


def test_labels_length_mismatch(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((4, 3, 3), np.uint8), labels=np.zeros(3))
    with pytest.raises(InputError, match="labels has 3 entries but images has 4"):
        load_npz(path)
    path2 = tmp_path / "y.npz"
    np.savez(path2, train_images=np.zeros((4, 3, 3), np.uint8), train_labels=np.zeros((5, 1)))
    with pytest.raises(InputError, match="train_labels has 5 entries but train_images has 4"):
        load_npz(path2)


def test_bad_npz_files(tmp_path):
    with pytest.raises(InputError, match="no such npz file"):
        load_npz(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match="cannot read"):
        load_npz(junk)
    vol = tmp_path / "vol.npz"
    np.savez(vol, images=np.zeros((2, 5, 5, 5), np.uint8))
    with pytest.raises(InputError, match="3-D volumes"):
        load_npz(vol)
    names = tmp_path / "names.npz"
    np.savez(names, images=np.zeros((2, 5, 5), np.uint8), labels=np.array([0, 2]), class_names=np.array(["a", "b"]))
    with pytest.raises(InputError, match="class_names has 2 names"):
        load_npz(names)
