"""The DCNN of Qayyum et al., "Medical image retrieval using deep CNN" (2017).

As published, for 224x224 grey images::

    conv 64@11x11 stride 4 -> ReLU -> max-pool 3/2
    conv 192@5x5           -> ReLU -> max-pool 3/2
    conv 384@5x5 -> ReLU -> conv 256@3x3 -> ReLU -> conv 256@3x3 -> ReLU -> max-pool 3/2
    FC1 4096 -> ReLU -> dropout -> FC2 4096 -> ReLU -> dropout -> FC3 4096 -> ReLU
    -> linear to the classes -> log-softmax (trained with NLL = cross-entropy on the logits)

Codes can be taken from FC1, FC2 or FC3 (after the ReLU); FC3 is the penultimate layer.

**Scaled for small inputs** (this module's choice, recorded in the model's config):

* Input of 128 px or more: the published stem (11x11 stride 4, pools 3/2), FC width 4096.
* 64 to 127 px: conv1 becomes 7x7 stride 2; FC width 2048.
* Below 64 px (MedMNIST's 28 px): conv1 becomes 5x5 stride 1 and the pools 2x2 stride 2,
  so a 28 px image keeps 28 -> 14 -> 7 -> 4 pixels through the three pools; conv3's 5x5
  kernel becomes 3x3 (on a 7x7 map a 5x5 kernel spans nearly all of it; 2.8x cheaper);
  FC width 1024.
* The convolution trunk ends in an adaptive average pool to 6x6 (large inputs, as AlexNet) or
  3x3 (small ones), so every size feeds FC1 the same number of inputs.
* Batch normalisation after each convolution (``batchnorm=True``, the default) makes the net
  train in a few CPU epochs with Adam instead of the paper's SGD at lr 1e-4; set it off for
  the published layer list.

The number of channels in and out of every layer is that of the paper; only the stem, the
pools and the FC width change with the input size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

FC_LAYERS = ("fc1", "fc2", "fc3")


def dcnn_plan(image_size: int) -> dict[str, Any]:
    """The stem, pooling and FC width chosen for an input size (see the module docstring)."""
    if image_size >= 128:
        return {"conv1_kernel": 11, "conv1_stride": 4, "conv1_padding": 2, "pool": (3, 2), "final_pool": 6, "fc_width": 4096}
    if image_size >= 64:
        return {"conv1_kernel": 7, "conv1_stride": 2, "conv1_padding": 3, "pool": (3, 2), "final_pool": 3, "fc_width": 2048}
    return {"conv1_kernel": 5, "conv1_stride": 1, "conv1_padding": 2, "pool": (2, 2), "final_pool": 3, "fc_width": 1024, "conv3_kernel": 3}


class DCNN(nn.Module):
    """Qayyum et al.'s 5-conv + 3-FC classifier; ``forward`` returns FC1-3 and the logits."""

    def __init__(self, *, channels: int, image_size: int, num_outputs: int, fc_width: int | None = None, dropout: float = 0.5, batchnorm: bool = True) -> None:
        super().__init__()
        plan = dcnn_plan(image_size)
        width = int(fc_width or plan["fc_width"])
        k, s = plan["pool"]

        def conv(cin: int, cout: int, kernel: int, stride: int = 1, padding: int | None = None) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2 if padding is None else padding, bias=not batchnorm)]
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.ReLU(inplace=True))
            return layers

        self.features = nn.Sequential(
            *conv(channels, 64, plan["conv1_kernel"], plan["conv1_stride"], plan["conv1_padding"]),
            nn.MaxPool2d(k, s),
            *conv(64, 192, 5),
            nn.MaxPool2d(k, s),
            *conv(192, 384, plan.get("conv3_kernel", 5)),
            *conv(384, 256, 3),
            *conv(256, 256, 3),
            nn.MaxPool2d(k, s, ceil_mode=True),
            nn.AdaptiveAvgPool2d(plan["final_pool"]),
        )
        flat = 256 * plan["final_pool"] ** 2
        self.fc1 = nn.Linear(flat, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, num_outputs) if num_outputs else None
        self.width = width

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.features(x).flatten(1)
        h1 = torch.relu(self.fc1(f))
        h2 = torch.relu(self.fc2(self.drop(h1)))
        h3 = torch.relu(self.fc3(self.drop(h2)))
        result = {"fc1": h1, "fc2": h2, "fc3": h3, "penultimate": h3}
        if self.out is not None:
            result["logits"] = self.out(h3)
        return result

    def dims(self) -> dict[str, int]:
        return {"fc1": self.width, "fc2": self.width, "fc3": self.width, "penultimate": self.width}
