"""Fine-tuning a pretrained backbone within a CPU budget (Haq et al.'s recipe: an ImageNet
network fine-tuned on the archive's labels).

The early blocks stay frozen at their ImageNet weights and are run **once** over the training
and validation images (their outputs kept in memory, float16 when float32 would not fit in
``preload_bytes``); only the last blocks and a new classifier head train, epoch after epoch,
on those stored feature maps.  A training step then costs the tail's forward and backward pass
only, so a 224 px set of thousands of images fine-tunes in minutes on two cores.  Augmentation
is a random horizontal flip of the stored feature maps (a flipped image's early features are
close to flipped features).  Learning rates by layer group: the head at ``lr``, the unfrozen
blocks at ``lr * BODY_LR_FACTOR`` (measured best at 1: the frozen early blocks already keep the
ImageNet features; a tenth left the codes where frozen features are).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphret.encoders.training import ImageBatches, Normalise, progress_batches, torch

#: The first trained block of EfficientNet-Lite0 (blocks 11-15: its last two stages, 7x7 at
#: 224 px, and the head; see benchmarks/bench_encoders.py --pretrained for the measurement).
DEFAULT_TUNE_FROM = 11
#: The unfrozen blocks learn at this fraction of the head's learning rate: 1, the same rate
#: (BreastMNIST P@10 0.837 with it, 0.743 with 0.1, where the blocks barely moved from ImageNet).
BODY_LR_FACTOR = 1.0


class FeatureCache:
    """The frozen blocks' outputs of some items, computed once (eval mode, no gradients)."""

    def __init__(self, net, batches: ImageBatches, normalise: Normalise, *, stop: int, device, preload_bytes: int,
                 progress: bool = False, batch_size: int = 64) -> None:
        t = torch()
        self.features = None
        net.eval()
        with t.inference_mode():
            for start in progress_batches(len(batches), batch_size, progress=progress, desc="frozen blocks"):
                rows = np.arange(start, min(start + batch_size, len(batches)))
                f = net.features(normalise(batches.get(rows, device)), 0, stop).float().cpu()
                if self.features is None:
                    per_item = int(np.prod(f.shape[1:]))
                    dtype = t.float32 if len(batches) * per_item * 4 <= preload_bytes else t.float16
                    self.features = t.empty((len(batches), *f.shape[1:]), dtype=dtype)
                self.features[start: start + len(rows)] = f.to(self.features.dtype)

    def get(self, rows: np.ndarray, device, generator=None):
        """The stored maps of ``rows`` as float32 on ``device``; with ``generator``, each one
        flipped left-right with probability 1/2."""
        t = torch()
        x = self.features[t.from_numpy(np.asarray(rows, dtype=np.int64))].float()
        if generator is not None:
            flip = t.rand(len(x), generator=generator) < 0.5
            x[flip] = x[flip].flip(-1)
        return x.to(device)


def freeze_below(net, tune_from: int, lr: float) -> list[dict[str, Any]]:
    """Freeze the stem and the blocks before ``tune_from``; the optimiser's parameter groups of
    the rest: the unfrozen blocks and head convolution at ``lr * BODY_LR_FACTOR``, the
    classifier at ``lr``."""
    body, head = [], []
    for name, p in net.named_parameters():
        block = int(name.split(".")[1]) if name.startswith("_blocks.") else None
        frozen = name.startswith(("_conv_stem.", "_bn0.")) or (block is not None and block < tune_from)
        p.requires_grad_(not frozen)
        if not frozen:
            (head if name.startswith("_fc.") else body).append(p)
    return [{"params": body, "lr": lr * BODY_LR_FACTOR}, {"params": head, "lr": lr}]
