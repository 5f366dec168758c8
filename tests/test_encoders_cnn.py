"""The CNN classifier encoder: learns, codes, spaces, save/load, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphret.data.imageset import ImageSet
from graphret.encoders import load_encoder
from graphret.encoders.cnn import CNNEncoder, masked_bce
from graphret.encoders.training import holdout
from graphret.metrics import mean_auroc, pooled_auroc
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False)


def unit_float32(codes: np.ndarray) -> None:
    assert codes.dtype == np.float32
    assert np.allclose(np.linalg.norm(codes, axis=1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def blobs() -> ImageSet:
    return blob_images(n_per_class=30, n_classes=3, size=16, seed=1)


@pytest.fixture(scope="module")
def trained(blobs):
    enc = CNNEncoder(backbone="resnet18", epochs=4, lr=3e-3, augment=False, **FAST)
    return enc.fit(blobs, blobs.indices_of(["train"]), seed=0, validation=blobs.indices_of(["val"]))


def test_resnet_learns_a_separable_set(blobs, trained):
    test = blobs.indices_of(["test"])
    enc = trained.encode(blobs, test)
    accuracy = float((enc.predicted == blobs.labels[test]).mean())
    assert accuracy >= 0.8  # chance is 1/3
    assert set(enc.spaces) == {"default"}
    assert enc.default.shape == (len(test), 512)
    unit_float32(enc.default)
    assert np.allclose(enc.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert enc.probabilities.dtype == np.float32 and enc.predicted.dtype == np.int64
    # retrieval on the codes: the nearest training item mostly has the query's class
    train = blobs.indices_of(["train"])
    arch = trained.encode(blobs, train).default
    nearest = train[(enc.default @ arch.T).argmax(axis=1)]
    assert (blobs.labels[nearest] == blobs.labels[test]).mean() >= 0.8
    assert trained.history.best_epoch is not None and len(trained.history.epochs) >= 1
    assert trained.code_centres is None  # ResNet codes are not centred unless asked


def test_save_load_gives_identical_codes(blobs, trained, tmp_path):
    path = tmp_path / "cnn.pt"
    trained.save(path)
    loaded = load_encoder(path, expect="cnn")
    a = trained.encode(blobs, np.arange(20))
    b = loaded.encode(blobs, np.arange(20))
    assert np.array_equal(a.default, b.default)
    assert np.array_equal(a.predicted, b.predicted)
    assert loaded.config()["class_names"] == blobs.class_names


def test_dcnn_spaces_and_determinism(blobs):
    train = blobs.indices_of(["train"])
    runs = []
    for _ in range(2):
        enc = CNNEncoder(backbone="dcnn", layer="fc2", fc_width=32, epochs=1, **FAST)
        enc.fit(blobs, train, seed=3)
        runs.append(enc.encode(blobs, np.arange(10)))
    a, b = runs
    assert set(a.spaces) == {"default", "fc1", "fc3"}  # default = fc2, not stored twice
    assert all(v.shape == (10, 32) for v in a.spaces.values())
    for space in a.spaces:
        unit_float32(a.spaces[space])
        assert np.array_equal(a.spaces[space], b.spaces[space])  # same seed -> same codes
    # the DCNN's unit codes are centred on the training mean unit code of each space
    assert set(enc.code_centres) == {"default", "fc1", "fc3"}
    from graphret.encoders.training import holdout

    fitted, _ = holdout(train, blobs.labels, seed=3)  # without a validation split, fit holds 10 % out
    raw, _ = enc._encode_activations(blobs, fitted, 64)
    unit = raw["fc1"] / np.linalg.norm(raw["fc1"], axis=1, keepdims=True)
    assert np.allclose(enc.code_centres["fc1"], unit.mean(axis=0), atol=1e-4)
    plain = CNNEncoder(backbone="dcnn", layer="fc2", fc_width=32, epochs=1, centre=False, **FAST).fit(blobs, train, seed=3)
    assert plain.code_centres is None
    assert not np.allclose(plain.encode(blobs, np.arange(10)).spaces["fc1"], a.spaces["fc1"], atol=1e-3)


def test_other_images_are_resized_with_a_warning(trained):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, size=(5, 20, 20, 3), dtype=np.uint8)
    other = ImageSet(ids=list("abcde"), paths=list("abcde"), splits=np.array(["all"] * 5), labels=None,
                     class_names=[], task="unlabelled", source="colour 20px", images=colour)
    with pytest.warns(UserWarning, match="resized and converted"):
        enc = trained.encode(other)
    assert enc.default.shape == (5, 512)


def test_missing_labels_suggest_siamese_or_dae(blobs):
    unlabelled = ImageSet(ids=blobs.ids, paths=blobs.paths, splits=blobs.splits, labels=None, class_names=[],
                          task="unlabelled", source="no labels", images=blobs.images)
    with pytest.raises(InputError) as err:
        CNNEncoder(**FAST).fit(unlabelled, np.arange(20))
    message = str(err.value)
    assert "siamese" in message and "dae" in message and "\n" not in message


def test_single_class_is_refused(blobs):
    one = np.flatnonzero(blobs.labels == 1)
    with pytest.raises(InputError, match="single class"):
        CNNEncoder(**FAST).fit(blobs, one)


def test_bad_options_and_files(tmp_path, blobs):
    with pytest.raises(InputError, match="backbone"):
        CNNEncoder(backbone="vgg99")
    with pytest.raises(InputError, match="layer"):
        CNNEncoder(backbone="resnet18", layer="fc2")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model at all")
    with pytest.raises(InputError):
        load_encoder(corrupt)
    from graphret.encoders.pixels import PixelPCAEncoder

    pixels = PixelPCAEncoder(image_size=8, dim=4).fit(blobs, np.arange(40))
    pixels.save(tmp_path / "pixels.pt")
    with pytest.raises(InputError, match="pixels"):
        load_encoder(tmp_path / "pixels.pt", expect="cnn")


def test_damaged_weights_are_refused(trained):
    config = trained.config()
    state = trained.state()
    state["net"] = {k: v for k, v in list(state["net"].items())[:-3]}
    with pytest.raises(InputError, match="do not fit"):
        CNNEncoder.from_state(config, state)


def test_masked_weighted_bce_by_hand():
    logits = torch.zeros(1, 3)  # s(z) = 0.5 everywhere: -log 0.5 = log 2 per entry
    targets = torch.tensor([[1.0, 0.0, -1.0]])  # the uncertain third entry is left out
    weight = torch.tensor([3.0, 1.0, 100.0])
    # (3 log 2 + 1 log 2) / 2 known entries = 2 log 2
    assert float(masked_bce(logits, targets, weight)) == pytest.approx(2 * np.log(2), rel=1e-6)


def test_multilabel_training_with_uncertain_labels():
    rng = np.random.default_rng(0)
    n, size = 48, 16
    images = rng.integers(0, 40, size=(n, size, size), dtype=np.uint8)
    labels = np.zeros((n, 2), np.int8)
    labels[:, 0] = rng.random(n) < 0.5
    labels[:, 1] = rng.random(n) < 0.3
    images[labels[:, 0] == 1, :6, :6] = 220
    images[labels[:, 1] == 1, -6:, -6:] = 220
    labels[::7, 1] = -1  # uncertain
    s = ImageSet(ids=[str(i) for i in range(n)], paths=[str(i) for i in range(n)], splits=np.array(["train"] * n),
                 labels=labels, class_names=["a", "b"], task="multilabel", source="ml", images=images)
    enc = CNNEncoder(backbone="dcnn", fc_width=16, epochs=2, **FAST).fit(s, np.arange(n))
    out = enc.encode(s)
    assert out.probabilities.shape == (n, 2)
    assert ((out.probabilities >= 0) & (out.probabilities <= 1)).all()
    assert enc.history.val_name == "val_auroc"  # early stopping follows the pooled validation AUROC
    assert all(0.0 <= e.val <= 1.0 for e in enc.history.epochs)
    _, val = holdout(np.arange(n), None, seed=0)  # the validation items fit held out
    _, val_probs = enc.predict(s, val)
    assert enc.history.best_val == pytest.approx(pooled_auroc(val_probs, labels[val]), abs=1e-6)
    assert enc.history.best_val != pytest.approx(mean_auroc(val_probs, labels[val]), abs=1e-3)
    assert enc.pos_weight[0] == pytest.approx(((labels[:, 0] == 0).sum() / (labels[:, 0] == 1).sum()), rel=0.5)
