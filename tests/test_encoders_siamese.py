"""The Siamese contrastive encoder and its pairs (labels or a CSV of id pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphret.data.imageset import ImageSet
from graphret.encoders import load_encoder
from graphret.encoders.pairs import pairs_from_labels, read_pair_csv
from graphret.encoders.siamese import SiameseEncoder, contrastive_loss
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False)


@pytest.fixture(scope="module")
def blobs():
    return blob_images(n_per_class=20, n_classes=3, size=16, seed=4)


def unlabelled(s: ImageSet) -> ImageSet:
    return ImageSet(ids=s.ids, paths=s.paths, splits=s.splits, labels=None, class_names=[], task="unlabelled",
                    source="no labels", images=s.images)


def test_contrastive_loss_by_hand():
    za = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    zb = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    # D = sqrt 2, sqrt 2, 0.  same: D^2/2 = 1;  different, margin 1: max(0, 1 - 1.414)^2/2 = 0;
    # different at D = 0: 1^2 / 2 = 0.5  ->  mean (1 + 0 + 0.5) / 3 = 0.5
    same = torch.tensor([1.0, 0.0, 0.0])
    assert float(contrastive_loss(za, zb, same, 1.0)) == pytest.approx(0.5, abs=1e-5)


def test_pairs_from_labels_are_balanced_and_correct(blobs):
    rows = blobs.indices_of(["train"])
    p = pairs_from_labels(blobs, rows, rng=np.random.default_rng(0))
    assert len(p) == len(rows)
    assert np.array_equal(blobs.labels[p.a] == blobs.labels[p.b], p.same.astype(bool))
    assert 0.3 < p.same.mean() < 0.7
    assert set(p.a) <= set(rows) and set(p.b) <= set(rows)


def test_siamese_learns_from_label_pairs(blobs, tmp_path):
    enc = SiameseEncoder(backbone="dcnn", dim=16, epochs=4, lr=3e-3, augment=False, patience=10, **FAST)
    enc.fit(blobs, blobs.indices_of(["train"]), seed=0, validation=blobs.indices_of(["val"]))
    losses = [e.loss for e in enc.history.epochs]
    assert losses[-1] < losses[0]
    out = enc.encode(blobs)
    assert set(out.spaces) == {"default"} and out.default.shape == (len(blobs), 16)
    assert out.default.dtype == np.float32 and np.allclose(np.linalg.norm(out.default, axis=1), 1, atol=1e-5)
    assert len(enc.code_centres["default"]) == 16  # centred on the training items' mean unit code
    assert np.linalg.norm(out.default[blobs.indices_of(["train"])].mean(axis=0)) < np.linalg.norm(enc.code_centres["default"])
    enc.save(tmp_path / "s.pt")
    again = load_encoder(tmp_path / "s.pt", expect="siamese").encode(blobs)
    assert np.array_equal(out.default, again.default)


def test_siamese_from_a_pair_csv_needs_no_labels(blobs, tmp_path):
    rng = np.random.default_rng(1)
    rows = blobs.indices_of(["train", "val"])
    lines = ["id_a,id_b,same"]
    for _ in range(120):
        i, j = rng.choice(rows, 2, replace=False)
        lines.append(f"{blobs.ids[i]},{blobs.ids[j]},{'same' if blobs.labels[i] == blobs.labels[j] else 'different'}")
    csv = tmp_path / "pairs.csv"
    csv.write_text("\n".join(lines) + "\n")
    s = unlabelled(blobs)
    pairs = read_pair_csv(csv, s)
    assert len(pairs) == 120
    enc = SiameseEncoder(backbone="dcnn", dim=8, epochs=2, pairs=str(csv), **FAST).fit(s, s.indices_of(["train"]), seed=0, validation=s.indices_of(["val"]))
    assert "pair list" in enc.description
    assert enc.encode(s, np.arange(5)).default.shape == (5, 8)


def test_bad_pairs(blobs, tmp_path):
    s = unlabelled(blobs)
    with pytest.raises(InputError, match="pairs=PAIRS.csv"):
        SiameseEncoder(**FAST).fit(s, np.arange(30))
    bad = tmp_path / "bad.csv"
    bad.write_text("id_a,id_b,same\nblob-0000,nobody,1\n")
    with pytest.raises(InputError, match="not in the source"):
        read_pair_csv(bad, s)
    only_same = tmp_path / "same.csv"
    only_same.write_text("id_a,id_b,same\nblob-0000,blob-0001,1\nblob-0002,blob-0003,yes\n")
    with pytest.raises(InputError, match="only similar"):
        read_pair_csv(only_same, s)
    word = tmp_path / "word.csv"
    word.write_text("id_a,id_b,same\nblob-0000,blob-0001,maybe\n")
    with pytest.raises(InputError, match="line 2"):
        read_pair_csv(word, s)
    one_class = np.flatnonzero(blobs.labels == 0)
    with pytest.raises(InputError, match="two classes"):
        SiameseEncoder(**FAST).fit(blobs, one_class)
    with pytest.raises(InputError, match="margin"):
        SiameseEncoder(margin=3.0)


def test_multilabel_pairs_use_label_sets():
    labels = np.array([[1, 0], [1, 0], [0, 1], [-1, 0], [-1, -1]], np.int8)
    s = ImageSet(ids=list("abcde"), paths=list("abcde"), splits=np.array(["train"] * 5), labels=labels,
                 class_names=["x", "y"], task="multilabel", source="ml", images=np.zeros((5, 8, 8), np.uint8))
    from graphret.encoders.pairs import label_keys

    keys = label_keys(s, np.arange(5))
    assert keys[0] == keys[1] == keys[3]  # uncertain counts positive: {x}
    assert keys[2] != keys[0] and keys[4] == -1


def test_batch_contrastive_loss_by_hand():
    from graphret.encoders.siamese import batch_contrastive_loss

    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([0, 0, 1])
    # pairs: (0,1) same, D=0 -> 0;  (0,2), (1,2) different, D=sqrt 2 > margin 1 -> 0
    assert float(batch_contrastive_loss(z, keys, 1.0)) == pytest.approx(0.0, abs=1e-5)
    # margin 2: different pairs give (2 - 1.4142)^2 / 2 = 0.17157; same pairs' mean 0 -> (0 + 0.17157) / 2
    assert float(batch_contrastive_loss(z, keys, 2.0)) == pytest.approx((2 - 2**0.5) ** 2 / 4, abs=1e-5)


def test_siamese_batches_hold_128_images_unless_told():
    from graphret.encoders.siamese import SiameseEncoder

    assert SiameseEncoder().train_cfg.batch_size == 128  # B(B-1)/2 pairs per batch, whatever the set's size
    assert SiameseEncoder(batch_size=32).train_cfg.batch_size == 32
    assert SiameseEncoder().centre and not SiameseEncoder(centre=False).centre
