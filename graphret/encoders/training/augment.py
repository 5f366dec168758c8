"""Augmentation suited to medical images, seeded: horizontal flips (vertical off by default:
anatomy has an up), rotations of +-10 degrees, crops of 90-100 % resampled, brightness +-10 %
and contrast x0.9-1.1."""

from __future__ import annotations

import math

from graphret.encoders.training.device import torch


class Augment:
    """Random flips, small rotations, crops and intensity changes of a batch in [0, 1].

    ``rotation`` degrees (+-), ``crop`` the smallest fraction of the side kept (the crop is
    resampled to the full size, with a random offset), ``brightness`` (+-) and ``contrast``
    (x 1 +- c) of the intensity.
    """

    def __init__(self, *, hflip: bool = True, vflip: bool = False, rotation: float = 10.0, crop: float = 0.9, brightness: float = 0.1, contrast: float = 0.1) -> None:
        self.hflip = hflip
        self.vflip = vflip
        self.rotation = rotation
        self.crop = crop
        self.brightness = brightness
        self.contrast = contrast

    def __call__(self, x, generator, extra=None):
        """The augmented batch; with ``extra`` (a (b, C', H, W) tensor such as segmentation
        masks) also ``extra`` under the same geometric transform (no intensity change), as a
        pair.  The random draws are the same with or without ``extra``."""
        t = torch()
        import torch.nn.functional as F

        b = x.shape[0]

        def uniform(lo: float, hi: float):
            return lo + (hi - lo) * t.rand(b, generator=generator)

        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180.0)
        scale = uniform(self.crop, 1.0)
        slack = 1.0 - scale
        tx = uniform(-1.0, 1.0) * slack
        ty = uniform(-1.0, 1.0) * slack
        sx = scale.clone()
        sy = scale.clone()
        if self.hflip:
            sx = sx * t.where(t.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        if self.vflip:
            sy = sy * t.where(t.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        cos, sin = t.cos(angle), t.sin(angle)
        theta = t.stack(
            [t.stack([cos * sx, -sin * sy, tx], 1), t.stack([sin * sx, cos * sy, ty], 1)], 1
        ).to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        gain = uniform(1 - self.contrast, 1 + self.contrast).to(x.device, x.dtype).view(b, 1, 1, 1)
        shift = uniform(-self.brightness, self.brightness).to(x.device, x.dtype).view(b, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * gain + mean + shift).clamp_(0.0, 1.0)
        if extra is None:
            return x
        extra = F.grid_sample(extra.to(grid.dtype), grid.to(extra.device), mode="bilinear", padding_mode="zeros", align_corners=False)
        return x, extra
