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
    with pytest.raises(InputError, match="weights="):
        FrozenEncoder(backbone="resnet18").load_weights()
    with pytest.raises(InputError, match="no such weights file"):
        FrozenEncoder(backbone="resnet18", weights="/nowhere/r18.pth").load_weights()


def test_caffe_style_moves_the_stride_and_scales_the_input(tmp_path):
    """MSRA/Caffe ResNet-50 weights: stride on the 1x1 convolution, input 255*RGB - mean."""
    torch.manual_seed(1)
    model = torchvision.models.resnet50(weights=None).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(model.state_dict(), path)
    s = blob_images(n_per_class=3, n_classes=2, size=16, seed=1)
    enc = FrozenEncoder(backbone="resnet50", weights=str(path), style="caffe", image_size=64, progress=False, threads=1)
    out = enc.encode(s).default
    # by hand: the Caffe layout and the Caffe input
    for layer in (model.layer2, model.layer3, model.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    x = torch.from_numpy(s.load(np.arange(len(s)), size=64, channels=3)).permute(0, 3, 1, 2).float()
    x = x - torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    model.fc = torch.nn.Identity()
    with torch.no_grad():
        ref = model(x).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert np.allclose(out, ref, atol=1e-4)
    plain = FrozenEncoder(backbone="resnet50", weights=str(path), image_size=64, progress=False, threads=1).encode(s).default
    assert not np.allclose(plain, out, atol=1e-3)  # the layout matters
    enc.save(tmp_path / "caffe.pt")
    again = load_encoder(tmp_path / "caffe.pt", expect="frozen")
    assert again.style == "caffe" and np.array_equal(again.encode(s).default, out)
    with pytest.raises(InputError, match="applies to ResNets"):
        FrozenEncoder(backbone="densenet121", style="caffe")
    with pytest.raises(InputError, match="unknown weights style"):
        FrozenEncoder(backbone="resnet50", style="keras")
