"""Fast frozen inference (graphret.encoders.inference): batch norms folded into convolutions and
the onnxruntime engine give the network's own output; the engine is picked by batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from graphret.encoders.frozen import FrozenEncoder
from graphret.encoders.inference import ONNXRUNTIME_MIN_ITEMS, OnnxRuntimeRunner, TorchRunner, fold_batch_norms, frozen_runner
from tests.synthetic import blob_images

torch.set_num_threads(1)


class DictNet(torch.nn.Module):
    """conv -> BN -> ReLU, twice, as a dict of the pooled map and a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, 4)

    def forward(self, x):
        pooled = self.body(x).mean(dim=(2, 3))
        return {"pooled": pooled, "logits": self.head(pooled)}


def trained_stats(net):
    """Batch-norm statistics away from the identity, so folding them changes the weights."""
    torch.manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def test_folding_removes_the_batch_norms_and_keeps_the_output():
    net = trained_stats(DictNet())
    folded = fold_batch_norms(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        want, got = net(x), folded(x)
    assert torch.allclose(got["pooled"], want["pooled"], atol=1e-5) and torch.allclose(got["logits"], want["logits"], atol=1e-5)


def test_folding_keeps_the_activation_of_a_norm_act_layer():
    import timm

    model = trained_stats(timm.create_model("test_efficientnet", pretrained=False, num_classes=0))
    folded = fold_batch_norms(model)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules()) < sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4)


def test_efficientnet_lite0_same_convolutions_fold_and_keep_the_codes():
    """graphret's own EfficientNet-Lite0 (TF-"same" SameConv, a Conv2d subclass that opts in):
    every batch norm folds, and the folded net gives the unfolded net's codes on an odd size
    (asymmetric padding); a Conv2d subclass that does not opt in is left unfolded."""
    from graphret.encoders.efficientnet_lite import efficientnet_lite0

    net = trained_stats(efficientnet_lite0(num_classes=0))
    folded = fold_batch_norms(net)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 49
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 67, 61)
    with torch.no_grad():
        want, got = net(x)["penultimate"], folded(x)["penultimate"]
    assert torch.allclose(got, want, atol=1e-5)
    assert torch.allclose(torch.nn.functional.normalize(got), torch.nn.functional.normalize(want), atol=1e-6)

    class ScaledConv(torch.nn.Conv2d):  # forward does more than convolve with weight and bias
        def forward(self, x):
            return super().forward(x) * 2.0

    other = trained_stats(torch.nn.Sequential(ScaledConv(3, 4, 3), torch.nn.BatchNorm2d(4)))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batch_norms(other).modules()) == 1


def test_onnxruntime_and_torch_runners_agree_and_the_engine_follows_the_batch():
    net = trained_stats(DictNet())
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        want = net(x)
    cache: dict = {}
    cpu = torch.device("cpu")
    small = frozen_runner(net, device=cpu, size=16, channels=3, threads=1, n_items=3, cache=cache)
    large = frozen_runner(net, device=cpu, size=16, channels=3, threads=1, n_items=ONNXRUNTIME_MIN_ITEMS, cache=cache)
    assert isinstance(small, TorchRunner) and isinstance(large, OnnxRuntimeRunner)
    assert frozen_runner(net, device=cpu, size=16, channels=3, threads=1, n_items=1000, cache=cache) is large  # built once
    for runner in (small, large):
        got = runner(x)
        assert set(got) == {"pooled", "logits"}
        assert torch.allclose(got["pooled"], want["pooled"], atol=1e-5) and torch.allclose(got["logits"], want["logits"], atol=1e-5)
    with pytest.raises(ValueError, match="unknown engine"):
        frozen_runner(net, device=cpu, size=16, channels=3, threads=1, n_items=1, engine="tvm")


def test_the_frozen_encoder_gives_the_same_codes_on_either_engine(tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "r18.pth"
    torch.save(trained_stats(torchvision.models.resnet18(weights=None)).state_dict(), weights)
    images = blob_images(n_per_class=3, n_classes=2, size=16, seed=0)
    codes = {}
    for engine in ("torch", "onnxruntime"):
        enc = FrozenEncoder(backbone="resnet18", weights=str(weights), image_size=32, progress=False, threads=1)
        enc.engine = engine
        codes[engine] = enc.fit(images, np.arange(len(images))).encode(images).default
    assert np.allclose(codes["torch"], codes["onnxruntime"], atol=1e-5)
