"""The denoising autoencoder: learns to reconstruct, no labels, unit codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphret.data.imageset import ImageSet
from graphret.encoders import load_encoder
from graphret.encoders.dae import DenoisingAutoencoder, dae_plan
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False)


def test_dae_reconstruction_improves_without_labels(tmp_path):
    b = blob_images(n_per_class=30, n_classes=3, size=16, seed=5)
    s = ImageSet(ids=b.ids, paths=b.paths, splits=b.splits, labels=None, class_names=[], task="unlabelled",
                 source="no labels", images=b.images)
    train, val = s.indices_of(["train"]), s.indices_of(["val"])
    enc = DenoisingAutoencoder(dim=16, epochs=5, lr=5e-3, patience=10, **FAST).fit(s, train, seed=0, validation=val)
    h = enc.history
    assert h.epochs[-1].loss < h.epochs[0].loss
    assert min(e.val for e in h.epochs) < h.epochs[0].val
    before = DenoisingAutoencoder(dim=16, epochs=1, lr=1e-9, **FAST).fit(s, train, seed=0, validation=val)
    assert enc.reconstruction_error(s, val) < before.reconstruction_error(s, val)
    out = enc.encode(s)
    assert out.default.shape == (len(s), 16) and out.default.dtype == np.float32
    assert np.allclose(np.linalg.norm(out.default, axis=1), 1, atol=1e-5)
    # unit codes are centred on the training items' mean unit code, then normalised again
    raw, _ = enc._encode_activations(s, train, 64)
    unit = raw["default"] / np.linalg.norm(raw["default"], axis=1, keepdims=True)
    assert np.allclose(enc.code_centres["default"], unit.mean(axis=0), atol=1e-4)
    centred = unit - unit.mean(axis=0)
    assert np.allclose(out.default[train], centred / np.linalg.norm(centred, axis=1, keepdims=True), atol=1e-4)
    enc.save(tmp_path / "dae.pt")
    assert np.array_equal(load_encoder(tmp_path / "dae.pt").encode(s).default, out.default)


def test_dae_plan_and_options():
    assert dae_plan(28) == [32, 64]  # 28 -> 14 -> 7
    assert dae_plan(16) == [32]
    assert len(dae_plan(224)) == 5
    with pytest.raises(InputError):
        DenoisingAutoencoder(mask=1.5)
