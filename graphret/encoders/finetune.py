"""Fine-tuning a pretrained backbone within a CPU budget (Haq et al.'s recipe: an ImageNet
network fine-tuned on the archive's labels).

The early blocks stay frozen at their ImageNet weights and are run **once** over the training
and validation images (their outputs kept in memory, float16 when float32 would not fit in
``preload_bytes``); only the last blocks and a new classifier head train, epoch after epoch,
on those stored feature maps.  A training step then costs the tail's forward and backward pass
only, so a 224 px set of thousands of images fine-tunes in minutes on two cores; the work
budget counts those maps, not the images (:func:`trained_input`).  Augmentation
is a random horizontal flip of the stored feature maps (a flipped image's early features are
close to flipped features).  The tuned blocks' batch norms track the archive's statistics at
torch's momentum 0.1, not the ImageNet weights' 0.01 (:data:`TUNED_BN_MOMENTUM`).  Learning rates by layer group: the head at ``lr``, the unfrozen
blocks at ``lr * BODY_LR_FACTOR`` (measured best at 1: the frozen early blocks already keep the
ImageNet features; a tenth left the codes where frozen features are).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from graphret.encoders.training import ImageBatches, Normalise, progress_batches, torch

#: The first trained block of EfficientNet-Lite0 (blocks 11-15: its last two stages, 7x7 at
#: 224 px, and the head; see benchmarks/bench_encoders.py --pretrained for the measurement).
DEFAULT_TUNE_FROM = 11
#: Images per encoding batch of a pretrained backbone: the encoding speed was measured at batch
#: 32 (benchmarks/results/encode_speed); at 256 (the trained encoders' batch) 224 px images
#: made a 5,000-image build peak at 11.5 GB (onnxruntime keeps its largest activations).
ENCODE_BATCH = 64
#: The unfrozen blocks learn at this fraction of the head's learning rate: 1, the same rate
#: (BreastMNIST P@10 0.837 with it, 0.743 with 0.1, where the blocks barely moved from ImageNet).
BODY_LR_FACTOR = 1.0
#: The momentum of the tuned blocks' batch-norm running statistics while they fine-tune: torch's
#: default 0.1 instead of the 0.01 the weights were trained with (TensorFlow's decay 0.99, made
#: for ImageNet's hundreds of thousands of steps).  A fine-tuning run takes 20-100 steps: at 0.01
#: 70-85 % of the statistics the tuned blocks were evaluated with stayed ImageNet's (RetinaMNIST:
#: validation loss 5.8 after the first epoch), at 0.1 they follow the new weights (validation
#: accuracy 0.475 -> 0.567, test P@10 0.459 -> 0.489 on the same seed; precise re-estimation of
#: the statistics after each epoch gave the same 0.488; benchmarks/results/pretrained/README.md).
TUNED_BN_MOMENTUM = 0.1


def part_of(net, *, start: int = 0, stop: int | None = None):
    """A module (eval mode) that runs a part of the EfficientNet ``net`` as one network an
    inference engine can take (graphret.encoders.inference.frozen_runner): with ``stop``, the
    stem and the blocks before it (the maps :class:`FeatureCache` stores); without, the blocks
    from ``start`` to the outputs ``{"penultimate", "logits"}`` (how :class:`FitMaps` items
    are encoded)."""
    nn = torch().nn

    class Part(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.features(x, start, stop) if stop is not None else self.net(x, start=start)

    return Part().eval()


class FitMaps:
    """The frozen blocks' maps of the items a fine-tuning run saw (float32 only, so that codes
    from them equal those of the whole network to float rounding), kept for the next encode of
    the same image set (a build's, which encodes every item right after the fit): those items
    then run the tail only (37 % of EfficientNet-Lite0's forward pass past block 10) and are not
    read again.  The image set is held by a weak reference; the encoder drops the maps after one encode."""

    def __init__(self, images, rows: np.ndarray, caches: list["FeatureCache"]) -> None:
        import weakref

        self.images = weakref.ref(images)
        self.rows = np.asarray(rows, dtype=np.int64)
        self.parts = [c.features for c in caches]
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = tuple(self.parts[0].shape[1:])

    def get(self, positions: np.ndarray):
        """The stored maps at ``positions`` (of :meth:`positions`), float32."""
        t = torch()
        positions = np.asarray(positions, dtype=np.int64)
        out = t.empty((len(positions), *self.shape), dtype=t.float32)
        part = np.searchsorted(self.starts, positions, side="right") - 1
        for p in np.unique(part):
            mine = np.flatnonzero(part == p)
            out[t.from_numpy(mine)] = self.parts[p][t.from_numpy(positions[mine] - self.starts[p])]
        return out

    @classmethod
    def of(cls, images, parts: list[tuple[np.ndarray, "FeatureCache | None"]]) -> "FitMaps | None":
        """The maps of ``parts`` (item rows, their cache), or None when one is missing or float16."""
        t = torch()
        kept = [(rows, cache) for rows, cache in parts if cache is not None and cache.features is not None]
        if not kept or any(cache.features.dtype != t.float32 for _, cache in kept):
            return None
        return cls(images, np.concatenate([rows for rows, _ in kept]), [cache for _, cache in kept])

    def positions(self, images, indices: np.ndarray) -> np.ndarray | None:
        """Each of ``indices``' position among the stored maps (-1: not stored), or None when
        ``images`` is not the fitted set."""
        if self.images() is not images:
            return None
        where = {int(r): i for i, r in enumerate(self.rows)}
        return np.fromiter((where.get(int(i), -1) for i in indices), dtype=np.int64, count=len(indices))


class FeatureCache:
    """The frozen blocks' outputs of some items, computed once (eval mode, no gradients) by
    ``early``: a callable from a normalised batch to the maps (:func:`part_of` ``stop=`` or an
    inference engine running it)."""

    def __init__(self, early: Callable, batches: ImageBatches, normalise: Normalise, *, device, preload_bytes: int,
                 progress: bool = False, batch_size: int = 64) -> None:
        t = torch()
        self.features = None
        with t.inference_mode():
            for start in progress_batches(len(batches), batch_size, progress=progress, desc="frozen blocks"):
                rows = np.arange(start, min(start + batch_size, len(batches)))
                f = early(normalise(batches.get(rows, device))).float().cpu()
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


def trained_input(cache: FeatureCache) -> tuple[int, int]:
    """(side, channels) of the stored maps the tuned blocks train on: what a fine-tuning run's
    work budget counts (``--work`` megapixels = millions of map values processed), since only
    the tail trains and its cost per item follows its input, not the image's pixels.

    EfficientNet-Lite0 from block 11 at 224 px takes 14x14x112 maps (0.146 of a 224 px colour
    image): the default 60 MP is about 2,700 item-epochs of the tail, so one epoch from about
    1,800 training items up (the 5,000-image folder's build unchanged) and more to smaller
    archives, which one epoch left under-trained (benchmarks/results/pretrained/README.md:
    NIH 1,000 P@50 0.350 -> 0.386 with 4 epochs, BreastMNIST P@10 0.800 -> 0.854 with 5); no
    archive trains more than ~3,700 item-epochs (rounding), the 5,000-image folder's 3,150."""
    return int(cache.features.shape[-1]), int(cache.features.shape[1])


def freeze_below(net, tune_from: int, lr: float) -> list[dict[str, Any]]:
    """Freeze the stem and the blocks before ``tune_from``, and let the batch norms after it
    track their statistics at TUNED_BN_MOMENTUM; the optimiser's parameter groups of the rest:
    the unfrozen blocks and head convolution at ``lr * BODY_LR_FACTOR``, the classifier at ``lr``."""
    nn = torch().nn
    for block in net._blocks[tune_from:]:
        for module in block.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = TUNED_BN_MOMENTUM
    net._bn1.momentum = TUNED_BN_MOMENTUM
    body, head = [], []
    for name, p in net.named_parameters():
        block = int(name.split(".")[1]) if name.startswith("_blocks.") else None
        frozen = name.startswith(("_conv_stem.", "_bn0.")) or (block is not None and block < tune_from)
        p.requires_grad_(not frozen)
        if not frozen:
            (head if name.startswith("_fc.") else body).append(p)
    return [{"params": body, "lr": lr * BODY_LR_FACTOR}, {"params": head, "lr": lr}]
