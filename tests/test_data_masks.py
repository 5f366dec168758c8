"""Segmentation masks: the demo's finding masks, a mask folder, a mask column, encodings."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from graphret.data.demo import FINDINGS, MASK_LEVEL, generate_demo, load_demo
from graphret.data.imageset import ImageSet
from graphret.data.masks import Masks, attach_mask_column, attach_mask_folder
from graphret.errors import InputError


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_demo_masks_leave_images_labels_and_ids_byte_identical():
    plain = generate_demo(120, seed=4, size=32)
    with_masks = generate_demo(120, seed=4, size=32, masks=True)
    assert len(plain) == 3 and len(with_masks) == 4
    for a, b in zip(plain, with_masks):
        assert _sha(a) == _sha(b)
    # the recorded digest of the default demo's first items, as before masks existed
    images, anatomy, findings = generate_demo(50, seed=3, size=16)
    assert _sha(images).startswith("fd3861db23033df8")
    assert _sha(anatomy).startswith("d76c36d2d8ee6414") and _sha(findings).startswith("3df14f7a3037ad13")
    demo = load_demo(n=120, seed=4, size=32)
    assert np.array_equal(demo.images, plain[0]) and demo.ids[0] == "demo-000000"


def test_demo_mask_bits_match_the_findings():
    images, anatomy, findings, bits = generate_demo(200, seed=1, size=32, masks=True)
    assert bits.shape == (200, 32, 32) and bits.dtype == np.uint8
    for c in range(len(FINDINGS)):
        present = ((bits >> c) & 1).reshape(200, -1).any(axis=1)
        assert np.array_equal(present, findings[:, c] == 1), FINDINGS[c]
    # a nodule's mask is a small blob: a few pixels, far fewer than the effusion's fluid
    nodule = ((bits >> 0) & 1).reshape(200, -1).sum(axis=1)[findings[:, 0] == 1]
    effusion = ((bits >> 1) & 1).reshape(200, -1).sum(axis=1)[findings[:, 1] == 1]
    assert 1 <= nodule.min() and nodule.mean() < effusion.mean()
    # the bright nodule sits where its mask is: brighter there than the image's median
    i = int(np.flatnonzero((findings[:, 0] == 1) & (findings[:, 4] == 0))[0])
    inside = images[i][((bits[i] >> 0) & 1) == 1]
    assert inside.mean() > np.median(images[i])
    assert 0 < MASK_LEVEL < 1


def test_demo_imageset_carries_masks_in_both_views():
    for labels in ("findings", "anatomy"):
        s = load_demo(labels=labels, n=80, seed=2, size=32)
        assert s.masks is not None and s.masks.names == list(FINDINGS) and s.masks.encoding == "bits"
        maps, known = s.masks.load([0, 1, 2], size=16)
        assert maps.shape == (3, 5, 16, 16) and maps.dtype == np.uint8 and known.all()
    s = load_demo(n=80, seed=2, size=32)
    full, _ = s.masks.load(np.arange(80), size=32)
    assert np.array_equal(full.reshape(80, 5, -1).max(axis=2) == 255, s.labels == 1)


def _set(n=4, size=8):
    images = np.zeros((n, size, size), np.uint8)
    return ImageSet(ids=[f"img{i}" for i in range(n)], paths=[f"/data/scan_{i}.png" for i in range(n)],
                    splits=np.array(["train"] * n, dtype=object), labels=None, class_names=[], task="unlabelled",
                    source="test", images=images, metadata={"maskfile": np.array(["m0.png", "", "sub/m2.npy", "nan"])})


def test_encodings_decode_to_channels():
    enc = np.array([[0, 1], [2, 3]], np.uint8)
    binary = Masks(names=["abnormal"], encoding="binary", array=enc[None])
    assert binary.decode(enc).tolist() == [[[False, True], [True, True]]]
    labels = Masks(names=["a", "b", "c"], encoding="labels", array=enc[None])
    assert labels.decode(enc)[:, 1, 1].tolist() == [False, False, True] and labels.decode(enc)[:, 0, 1].tolist() == [True, False, False]
    bits = Masks(names=["a", "b"], encoding="bits", array=enc[None])
    assert bits.decode(enc)[:, 1, 1].tolist() == [True, True] and bits.decode(enc)[:, 1, 0].tolist() == [False, True]
    # a 2x2 mask resized to 4x4 keeps its proportions (box filter, 255 = covered)
    maps, known = binary.load([0], size=4)
    assert known.tolist() == [True] and maps[0, 0].tolist() == [[0, 0, 255, 255]] * 2 + [[255, 255, 255, 255]] * 2
    with pytest.raises(InputError, match="names"):
        Masks(names=["a", "b"], encoding="binary", array=enc[None])
    with pytest.raises(InputError, match="encoding"):
        Masks(names=["a"], encoding="rle", array=enc[None])


def test_mask_folder_matches_ids_and_file_stems(tmp_path):
    s = _set()
    m = np.zeros((8, 8), np.uint8)
    m[2:4, 2:4] = 255
    Image.fromarray(m).save(tmp_path / "img0.png")  # by id
    Image.fromarray(m // 255).save(tmp_path / "scan_3.png")  # by the image file's stem (0/1 values)
    got = attach_mask_folder(s, tmp_path)
    assert got is not s and got.masks.known.tolist() == [True, False, False, True]
    maps, known = got.masks.load(np.arange(4), size=8)
    assert known.tolist() == [True, False, False, True]
    assert maps[0, 0, 2:4, 2:4].min() == 255 and maps[0].sum() == 4 * 255 and maps[3].sum() == 4 * 255 and maps[1].sum() == 0
    assert got.masks.get(1) is None and got.masks.has(0) and not got.masks.has(2)
    with pytest.raises(InputError, match="required"):
        attach_mask_folder(s, tmp_path, required=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="matches an item id"):
        attach_mask_folder(s, empty)
    with pytest.raises(InputError, match="no such mask folder"):
        attach_mask_folder(s, tmp_path / "missing")


def test_mask_column_with_labels_encoding(tmp_path):
    s = _set()
    lab = np.zeros((8, 8), np.uint8)
    lab[0, 0], lab[7, 7] = 1, 2
    Image.fromarray(lab).save(tmp_path / "m0.png")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "m2.npy", (lab * 1).astype(np.int64))
    got = attach_mask_column(s, "maskfile", root=tmp_path, encoding="labels", names=["edema", "mass"])
    assert got.masks.known.tolist() == [True, False, True, False]
    maps, known = got.masks.load(np.arange(4), size=8)
    assert maps[0, 0, 0, 0] == 255 and maps[0, 1, 7, 7] == 255 and maps[0].sum() == 2 * 255
    assert np.array_equal(maps[2], maps[0]) and maps[1].sum() == 0
    with pytest.raises(InputError, match="names"):
        attach_mask_column(s, "maskfile", root=tmp_path, encoding="labels")
    with pytest.raises(InputError, match="no metadata column"):
        attach_mask_column(s, "nope")
    with pytest.raises(InputError, match="does not exist"):
        attach_mask_column(s, "maskfile", root=tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="one entry per item"):
        ImageSet(ids=["a"], paths=["a"], splits=np.array(["train"], dtype=object), labels=None, class_names=[], task="unlabelled",
                 source="t", images=np.zeros((1, 4, 4), np.uint8), masks=got.masks)
