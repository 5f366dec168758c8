"""The stacked denoising autoencoder: layer-wise pre-training, then end-to-end fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphret.encoders.dae as dae_module
import graphret.encoders.training.encoder as torch_encoder_module
from graphret.encoders import load_encoder
from graphret.encoders.dae import DenoisingAutoencoder
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False)


@pytest.fixture(scope="module")
def blobs():
    return blob_images(n_per_class=20, n_classes=3, size=28, seed=7)


def test_pretraining_trains_one_layer_at_a_time_then_all(blobs, monkeypatch):
    calls = []
    real = dae_module.train_loop

    def spy(module, **kw):
        before = {k: v.detach().clone() for k, v in module.state_dict().items()}
        history = real(module, **kw)
        after = module.state_dict()
        changed = {k for k in before if not torch.equal(before[k], after[k])}
        calls.append((kw["desc"], changed))
        return history

    monkeypatch.setattr(dae_module, "train_loop", spy)  # the layer-wise stages
    monkeypatch.setattr(torch_encoder_module, "train_loop", spy)  # the end-to-end run (TorchEncoder._train)
    train, val = blobs.indices_of(["train"]), blobs.indices_of(["val"])
    enc = DenoisingAutoencoder(dim=8, stacked=True, epochs=2, pretrain_epochs=1, lr=5e-3, **FAST).fit(blobs, train, seed=0, validation=val)
    # 28 px: two conv blocks (28 -> 14 -> 7) and the code layer: three layers, then the whole net
    assert [d for d, _ in calls] == ["dae layer 1/3", "dae layer 2/3", "dae layer 3/3", "dae"]
    enc_keys = lambda k: {f"encoder.{3 * k + j}.{p}" for j in (0, 1) for p in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}  # noqa: E731
    layer1, layer2, code, whole = (c for _, c in calls)
    # layer 1: encoder block 0 and its mirror (the decoder's last block and output conv) only
    assert {k for k in layer1 if k.startswith("encoder.")} <= enc_keys(0) and layer1 & enc_keys(0)
    assert {k.split(".")[0] for k in layer1} == {"encoder", "decoder"} and not any(k.startswith(("to_code", "from_code")) for k in layer1)
    assert "decoder.6.weight" in layer1 and "decoder.0.weight" not in layer1  # 3 * 2 = the output conv
    # layer 2: encoder block 1 and the decoder's first block; block 0 stays frozen (BN statistics too)
    assert {k for k in layer2 if k.startswith("encoder.")} <= enc_keys(1) and not (layer2 & enc_keys(0))
    assert "decoder.0.weight" in layer2 and "decoder.6.weight" not in layer2
    # the code layer: the two linear maps only
    assert {k.split(".")[0] for k in code} == {"to_code", "from_code"}
    # fine-tuning moves every part
    assert {k.split(".")[0] for k in whole} == {"encoder", "to_code", "from_code", "decoder"}
    assert [h["layer"] for h in enc.pretrain_history] == [1, 2, 3]
    assert all(len(h["epochs"]) == 1 and np.isfinite(h["epochs"][0]["val"]) for h in enc.pretrain_history)
    assert "stacked" in enc.description


def test_stacked_model_learns_saves_and_loads(blobs, tmp_path):
    train, val = blobs.indices_of(["train"]), blobs.indices_of(["val"])
    enc = DenoisingAutoencoder(dim=8, stacked=True, epochs=3, lr=5e-3, **FAST).fit(blobs, train, seed=0, validation=val)
    assert len(enc.pretrain_history) == 3 and all(len(h["epochs"]) == 1 for h in enc.pretrain_history)  # default: epochs // 2
    untrained = DenoisingAutoencoder(dim=8, epochs=1, lr=1e-9, **FAST).fit(blobs, train, seed=0, validation=val)
    assert enc.reconstruction_error(blobs, val) < untrained.reconstruction_error(blobs, val)
    out = enc.encode(blobs)
    assert out.default.shape == (len(blobs), 8) and np.allclose(np.linalg.norm(out.default, axis=1), 1, atol=1e-5)
    enc.save(tmp_path / "sdae.pt")
    back = load_encoder(tmp_path / "sdae.pt")
    assert back.stacked and back.pretrain_history == enc.pretrain_history
    assert np.array_equal(back.encode(blobs).default, out.default)
    # an end-to-end model's config is as it was before the option existed
    plain = DenoisingAutoencoder(dim=8, epochs=1, **FAST).fit(blobs, train, seed=0)
    assert "stacked" not in plain.config() and "pretrain" not in plain.config()


def test_stacked_options_are_checked():
    with pytest.raises(InputError, match="pretrain_epochs"):
        DenoisingAutoencoder(stacked=True, pretrain_epochs=0)
    assert DenoisingAutoencoder(stacked=True, epochs=9).pretrain_epochs_for(100) == 4
    assert DenoisingAutoencoder(stacked=True, epochs=9, pretrain_epochs=2).pretrain_epochs_for(100) == 2
