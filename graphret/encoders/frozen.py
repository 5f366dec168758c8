"""Frozen backbone: a pretrained torchvision network, not trained further; the code is its pooled
feature (ResNet-18: 512-d, ResNet-50: 2048-d, DenseNet-121: 1024-d), L2-normalised.

Weights come from a local file (``weights=PATH``: a state_dict saved with
``torch.save(model.state_dict(), PATH)``, as torchvision's own downloads are) or, where the
machine can download them, from torchvision's named weights (``weights="DEFAULT"`` or e.g.
``"IMAGENET1K_V2"``).  A file that does not fit the backbone is refused with one line.

Images are converted to 3 channels (grey repeated), resized to ``image_size`` (224 by default,
the size ImageNet networks were trained at; small images are upsampled) and normalised with the
ImageNet mean and standard deviation.  ``fit`` learns nothing; it only checks the input.  The
saved model holds the weights, so it loads without the original file.

``style="caffe"`` takes ResNet weights converted from the original MSRA Caffe models (He et al.
2016; also Keras's ``ResNet50``): in a bottleneck block that down-samples, the stride sits on
the first 1x1 convolution (torchvision's "v1.5" puts it on the 3x3), and the input is
``255 * RGB - [123.68, 116.779, 103.939]`` (no division by a standard deviation), as in
detectron2's ``STRIDE_IN_1X1``.  ``benchmarks/convert_keras_resnet50.py`` writes such a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder
from graphret.encoders.training import (
    TorchEncoder,
    load_module_state,
    module_state,
    torch,
)
from graphret.errors import InputError

FROZEN_BACKBONES = ("efficientnet_lite0", "resnet18", "resnet50", "densenet121")
#: Backbones whose ImageNet weights come installed (graphret.encoders.efficientnet_lite).
INSTALLED_BACKBONES = ("efficientnet_lite0",)
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CAFFE_MEAN = [123.68 / 255, 116.779 / 255, 103.939 / 255]  # 255 * x - mean == (x - mean / 255) / (1 / 255)
CAFFE_STD = [1 / 255] * 3
WEIGHT_STYLES = ("torchvision", "caffe")


def stride_in_1x1(model) -> None:
    """Move the down-sampling stride of a torchvision ResNet's bottleneck blocks from the 3x3
    convolution to the first 1x1 one (the original MSRA / Caffe ResNet layout).  Basic blocks
    (ResNet-18/34) have no 1x1 convolution and are left as they are."""
    for layer in (model.layer2, model.layer3, model.layer4):
        first = layer[0]
        if hasattr(first, "conv3") and first.conv2.stride != (1, 1):
            first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)


def _trunk(backbone: str):
    """torchvision's network with its classifier replaced by the identity, and its feature size."""
    import torchvision

    model = getattr(torchvision.models, backbone)(weights=None)
    if backbone.startswith("resnet"):
        dim = model.fc.in_features
    else:
        dim = model.classifier.in_features
    return model, dim


def _frozen_net(backbone: str, style: str = "torchvision"):
    if backbone in INSTALLED_BACKBONES:
        from graphret.encoders.efficientnet_lite import efficientnet_lite0

        return efficientnet_lite0(num_classes=0)
    nn = torch().nn

    class _Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model, self.dim = _trunk(backbone)
            if style == "caffe":
                stride_in_1x1(self.model)

        def load_classifier_state(self, state: dict[str, Any], where: str) -> None:
            """Load a full torchvision state_dict (classifier included or not)."""
            if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
                state = state["state_dict"]
            if not isinstance(state, dict) or not state:
                raise InputError(f"{where} does not hold a state_dict; save one with torch.save(model.state_dict(), path)")
            state = {k.removeprefix("module."): v for k, v in state.items()}
            own = self.model.state_dict()
            head = ("fc.",) if backbone.startswith("resnet") else ("classifier.",)
            body = {k for k in own if not k.startswith(head)}
            missing = sorted(body - set(state))
            wrong = sorted(k for k in body & set(state) if getattr(state[k], "shape", None) != own[k].shape)
            if missing or wrong:
                bad = (missing or wrong)[0]
                why = "lacks" if missing else "has a wrong shape for"
                raise InputError(
                    f"{where} is not a {backbone} state_dict (it {why} {bad!r}, {len(missing) + len(wrong)} tensors off); "
                    f"give {backbone} weights or choose the matching {{backbone}}"
                )
            self.model.load_state_dict({k: state[k] for k in body}, strict=False)

        def forward(self, x):
            m = self.model
            if backbone.startswith("resnet"):
                x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
                x = m.layer4(m.layer3(m.layer2(m.layer1(x))))
                f = torch().flatten(m.avgpool(x), 1)
            else:
                f = torch().nn.functional.relu(m.features(x))
                f = torch().flatten(torch().nn.functional.adaptive_avg_pool2d(f, 1), 1)
            return {"pooled": f}

        def dims(self) -> dict[str, int]:
            return {"pooled": self.dim}

    return _Net()


class FrozenEncoder(TorchEncoder, Encoder):
    """A pretrained torchvision backbone used as it is (see the module docstring).

    Options: ``backbone`` (resnet18 | resnet50 | densenet121), ``weights`` (a local state_dict
    file, or a torchvision weights name such as ``"DEFAULT"`` when downloads work; required),
    ``style`` (``"torchvision"``, or ``"caffe"`` for weights converted from the MSRA Caffe
    ResNets), ``image_size`` (224), and ``device`` / ``threads`` / ``progress`` / ``batch_size``.
    """

    name: ClassVar[str] = "frozen"
    warn_on_resize: ClassVar[bool] = False  # resizing to the backbone's size is by design
    #: the inference engine: auto (onnxruntime for many images where installed), torch or onnxruntime
    engine: str = "auto"

    def __init__(self, *, backbone: str = "resnet50", weights: str | None = None, style: str = "torchvision", image_size: int = 224, **train_options: Any) -> None:
        self._init_training(train_options)
        if backbone not in FROZEN_BACKBONES:
            raise InputError(f"unknown frozen backbone {backbone!r}; choose one of {', '.join(FROZEN_BACKBONES)}")
        if style not in WEIGHT_STYLES:
            raise InputError(f"unknown weights style {style!r}; choose torchvision or caffe")
        if style == "caffe" and not backbone.startswith("resnet"):
            raise InputError(f"the caffe weights style applies to ResNets, not {backbone}; use {{weights_style=torchvision}}", param="weights_style")
        if image_size < 16:
            raise InputError(f"image size {image_size} is too small for an ImageNet backbone; use {{image_size=64}} or more (224 is standard)", param="image_size")
        self.backbone = backbone
        self.weights = weights
        self.image_size = int(image_size)
        self.channels = 3
        self.style = style
        self.mean = list(CAFFE_MEAN if style == "caffe" else IMAGENET_MEAN)
        self.std = list(CAFFE_STD if style == "caffe" else IMAGENET_STD)
        if backbone in INSTALLED_BACKBONES:
            from graphret.encoders import efficientnet_lite

            self.mean, self.std = list(efficientnet_lite.MEAN), list(efficientnet_lite.STD)
        self.weights_source: str | None = None
        self._runners: dict = {}  # inference engines by engine and size (frozen_runner)

    @property
    def description(self) -> str:
        style = ", caffe style" if self.style == "caffe" else ""
        return f"frozen {self.backbone} ({self.weights_source or 'weights not loaded'}{style}), pooled feature at {self.image_size}px, L2-normalised"

    @property
    def space_layers(self) -> dict[str, str]:
        return {DEFAULT_SPACE: "penultimate" if self.backbone in INSTALLED_BACKBONES else "pooled"}

    def space_dims(self) -> dict[str, int]:
        return {DEFAULT_SPACE: self.net.dim}

    def load_weights(self) -> "FrozenEncoder":
        """Build the network and load ``weights`` (a local file or a torchvision name)."""
        t = torch()
        if self.backbone in INSTALLED_BACKBONES:  # the installed ImageNet weights, or a file
            from graphret.encoders.efficientnet_lite import load_imagenet

            net = _frozen_net(self.backbone)
            self.weights_source = load_imagenet(net, self.weights)
            self.net = net.eval().requires_grad_(False)
            return self
        if not self.weights:
            raise InputError(
                "the frozen encoder needs pretrained weights: pass {weights=PATH} (a torchvision state_dict file) "
                "or {weights=DEFAULT} where torchvision can download them"
            )
        net = _frozen_net(self.backbone, self.style)
        path = Path(self.weights)
        if path.is_file():
            try:
                state = t.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # noqa: BLE001 - any unreadable file gets one line
                raise InputError(f"{path} is not a readable torch state_dict ({type(error).__name__}); give a file saved with torch.save(model.state_dict())") from None
            net.load_classifier_state(state, str(path))
            self.weights_source = f"weights file {path.name}"
        elif "/" in self.weights or self.weights.endswith((".pt", ".pth", ".bin")):
            raise InputError(f"no such weights file: {self.weights} (give a torchvision state_dict file or a weights name such as DEFAULT)")
        else:
            import torchvision

            try:
                enum = torchvision.models.get_model_weights(self.backbone)
                named = enum.DEFAULT if self.weights.upper() == "DEFAULT" else enum[self.weights]
            except (KeyError, ValueError):
                raise InputError(f"unknown torchvision weights {self.weights!r} for {self.backbone}; use DEFAULT or a file path") from None
            try:
                state = named.get_state_dict(progress=self.train_cfg.progress)
            except Exception as error:  # noqa: BLE001 - network failures vary
                raise InputError(
                    f"could not download {self.backbone} weights {named} ({type(error).__name__}); "
                    "download them elsewhere and pass {weights=PATH}"
                ) from None
            net.load_classifier_state(state, f"torchvision {named}")
            self.weights_source = f"torchvision {named}"
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net
        return self

    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "FrozenEncoder":
        """Nothing is learned: load the weights (when not yet loaded)."""
        if self.net is None:
            self.load_weights()
        return self

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 128) -> Encoded:
        if self.net is None and (self.weights or self.backbone in INSTALLED_BACKBONES):
            self.load_weights()
        spaces, _ = self._encode_spaces(images, indices, batch_size)
        return Encoded(spaces=spaces)

    def _inference_net(self, device, n_items: int):
        """The frozen net folded and channels-last on torch, or on onnxruntime for many images
        (:func:`graphret.encoders.inference.frozen_runner`)."""
        from graphret.encoders.inference import frozen_runner

        return frozen_runner(self.net, device=device, size=self.image_size, channels=self.channels, threads=self.train_cfg.threads,
                             n_items=n_items, engine=self.engine, cache=self._runners)

    def features(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 128) -> np.ndarray:
        """The raw pooled features (float32, not normalised) of the items at ``indices``: what
        protocols that compare Euclidean distances on the backbone's output take."""
        if self.net is None and (self.weights or self.backbone in INSTALLED_BACKBONES):
            self.load_weights()
        out, _ = self._encode_activations(images, indices, batch_size)
        return out[DEFAULT_SPACE]

    def config(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "backbone": self.backbone,
            "weights": self.weights,
            "weights_source": self.weights_source,
            "style": self.style,
            "image_size": self.image_size,
            "channels": 3,
            "mean": self.mean,
            "std": self.std,
            "spaces": self.space_dims(),
        }

    def state(self) -> dict[str, Any]:
        self._require_fitted()
        return {"net": module_state(self.net)}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "FrozenEncoder":
        enc = cls(backbone=config["backbone"], weights=config.get("weights"), style=config.get("style", "torchvision"), image_size=int(config["image_size"]))
        enc.weights_source = config.get("weights_source")
        net = _frozen_net(enc.backbone, enc.style)
        load_module_state(net, state["net"], f"frozen/{enc.backbone}")
        net.eval()
        enc.net = net
        return enc
