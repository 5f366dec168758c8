"""The frozen backbone: loads a local state_dict (written here), refuses a wrong one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from graphret.encoders import load_encoder
from graphret.encoders.frozen import IMAGENET_MEAN, IMAGENET_STD, FrozenEncoder
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(model.state_dict(), path)
    return path, model.eval()


def test_frozen_uses_the_given_weights(weights, tmp_path):
    path, model = weights
    s = blob_images(n_per_class=4, n_classes=2, size=16, seed=0)
    enc = FrozenEncoder(backbone="resnet18", weights=str(path), image_size=32, progress=False, threads=1)
    enc.fit(s, np.arange(len(s)))
    out = enc.encode(s)
    assert out.default.shape == (len(s), 512) and out.default.dtype == np.float32
    assert np.allclose(np.linalg.norm(out.default, axis=1), 1, atol=1e-5)
    # the same computation by hand with torchvision
    x = torch.from_numpy(s.load(np.arange(len(s)), size=32, channels=3)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        ref = model(x).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.allclose(out.default, ref, atol=1e-4)
    enc.save(tmp_path / "frozen.pt")
    assert np.array_equal(load_encoder(tmp_path / "frozen.pt", expect="frozen").encode(s).default, out.default)


def test_frozen_refuses_wrong_weights(weights, tmp_path):
    path, _ = weights
    with pytest.raises(InputError) as err:
        FrozenEncoder(backbone="densenet121", weights=str(path)).load_weights()
    assert "densenet121" in str(err.value) and "\n" not in str(err.value)
    junk = tmp_path / "junk.pth"
    torch.save({"foo": torch.zeros(3)}, junk)
    with pytest.raises(InputError, match="not a resnet18 state_dict"):
        FrozenEncoder(backbone="resnet18", weights=str(junk)).load_weights()
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="not a readable"):
        FrozenEncoder(backbone="resnet18", weights=str(broken)).load_weights()
    with pytest.raises(InputError, match="--weights"):
        FrozenEncoder(backbone="resnet18").load_weights()
    with pytest.raises(InputError, match="no such weights file"):
        FrozenEncoder(backbone="resnet18", weights="/nowhere/r18.pth").load_weights()
