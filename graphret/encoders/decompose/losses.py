"""Loss and codebook helpers of the decomposing encoder: nearest codebook entries, k-means++
codebook starts, soft Dice (pooled over the batch) and log-mean-exp (smooth maximum) pooling."""

from __future__ import annotations

import math

from graphret.encoders.training import torch

#: Sharpness of the log-mean-exp pooling of segmentation logits (higher: closer to the max).
LSE_SHARPNESS = 4.0
#: Weight of a positive cell in the cell-level term (a finding fills a few of 256 cells).
CELL_POS_WEIGHT = 10.0


def _nearest(x, centres):
    """Index of each row's nearest centre (squared Euclidean)."""
    d = x.pow(2).sum(1, keepdim=True) - 2 * x @ centres.t() + centres.pow(2).sum(1)[None]
    return d.argmin(1)


def _kmeans_pp(x, k: int, generator, iters: int = 10):
    """k centres of the rows of x: k-means++ seeding (seeded draws), then Lloyd iterations
    (an empty cluster keeps its centre)."""
    t = torch()
    n = x.shape[0]
    first = int(t.randint(0, n, (1,), generator=generator))
    centres = [x[first]]
    best = (x - x[first]).pow(2).sum(1)
    for _ in range(1, k):
        total = float(best.sum())
        if total <= 0:
            pick = int(t.randint(0, n, (1,), generator=generator))
        else:
            pick = int(t.multinomial(best / total, 1, generator=generator))
        centres.append(x[pick])
        best = t.minimum(best, (x - x[pick]).pow(2).sum(1))
    c = t.stack(centres).clone()
    for _ in range(iters):
        idx = _nearest(x, c)
        sums = t.zeros_like(c).index_add_(0, idx, x)
        counts = t.bincount(idx, minlength=k).float()
        filled = counts > 0
        c[filled] = sums[filled] / counts[filled, None]
    return c


def _soft_dice(logits, target, eps: float = 1.0, weights=None):
    """1 - soft Dice per channel over the whole batch, averaged over channels (weighted by
    ``weights`` (C,), when given).  Pooling the batch keeps a rare, small finding's few
    positive pixels from being drowned by the images that lack it (per-image Dice of an empty
    mask only pushes predictions to zero)."""
    t = torch()
    p = t.sigmoid(logits)
    inter = (p * target).sum(dim=(0, 2, 3))
    total = p.sum(dim=(0, 2, 3)) + target.sum(dim=(0, 2, 3))
    loss = 1 - (2 * inter + eps) / (total + eps)
    return loss.mean() if weights is None else (loss * weights).sum() / weights.sum()


def class_weights(shares: list[float], *, power: float = 0.5, limit: float = 4.0) -> list[float]:
    """Per-class loss weights from each class's share of foreground pixels: ``share**-power``,
    normalised to mean 1 and clipped to [1 / limit, limit] (a finding of a few pixels gets more
    weight than one that covers half the image; a class never seen gets weight 1)."""
    raw = [s ** -power if s > 0 else float("nan") for s in shares]
    seen = [r for r in raw if r == r]
    if not seen:
        return [1.0] * len(shares)
    mean = sum(seen) / len(seen)
    return [min(limit, max(1.0 / limit, r / mean)) if r == r else 1.0 for r in raw]


def _lme_pool(logits, sharpness: float = LSE_SHARPNESS, per_channel: bool = False):
    """Log-mean-exp over all channels and positions (or, ``per_channel``, over the positions
    of each channel): a smooth maximum of the logits."""
    t = torch()
    flat = (logits.flatten(2) if per_channel else logits.flatten(1)).float() * sharpness
    return (t.logsumexp(flat, dim=-1) - math.log(flat.shape[-1])) / sharpness
