"""The decomposing encoder's training objective: the batches it reads (:class:`Batches`:
images, soft masks, labels, augmentation) and its named loss terms (:class:`Objective`; the
terms and their weights are described in the package docstring).

This module imports torch; the encoder imports it only when it trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from graphret.encoders.decompose.losses import CELL_POS_WEIGHT, _lme_pool, _soft_dice, class_weights

#: Which weight option scales each loss term (the adversary has none: its reversal layer scales it).
TERM_WEIGHTS = {"latent": "latent_weight", "reconstruction": "reconstruction_weight", "residual": "residual_weight",
                "segmentation": "segmentation_weight", "discrimination": "discrimination_weight", "independence": "independence_weight"}
#: Bandwidths (sigma^2) of the Gaussian kernels of the independence term's MMD on unit codes (squared distances 0..4).
MMD_BANDWIDTHS = (0.25, 1.0, 4.0)


@dataclass
class Batch:
    """One batch on the device: images ``x`` in [0, 1]; soft masks ``m`` (b, C, H, W) and
    which items have one, ``m_known`` (None without masks); targets ``y``; abnormal flags ``a``
    (1 / 0 / -1 unknown)."""

    x: Any
    m: Any
    m_known: Any
    y: Any
    a: Any


class Batches:
    """Batches of a set of items (positions 0..n-1 of ``indices``) for the objective.

    ``data``: the images (an ``ImageBatches``); ``masks``: the image set's masks or None;
    ``targets`` / ``abnormal``: per item of the whole set; ``preload_bytes``: masks up to this
    size are decoded once; ``augment``: an ``Augment`` applied to images and masks alike."""

    def __init__(self, data, indices: np.ndarray, *, masks, size: int, targets: np.ndarray, abnormal: np.ndarray,
                 multiclass: bool, device, augment=None, preload_bytes: float = float("inf")) -> None:
        self.data, self.indices, self.masks, self.size = data, np.asarray(indices, dtype=np.int64), masks, size
        self.device, self.augment = device, augment
        self.y = torch.from_numpy(targets[self.indices].astype(np.int64 if multiclass else np.float32))
        self.a = torch.from_numpy(abnormal[self.indices].astype(np.float32))
        self.cache = None
        if masks is not None and len(self.indices) * len(masks.names) * size * size <= preload_bytes:
            self.cache = masks.load(self.indices, size=size)

    def __len__(self) -> int:
        return len(self.indices)

    def mask_class_weights(self) -> list[float] | None:
        """Per mask channel, the segmentation weight :func:`class_weights` gives its share of
        foreground pixels over the items with a mask (None without preloaded masks)."""
        if self.cache is None or not self.cache[1].any():
            return None
        m, known = self.cache
        shares = [float((m[known, c] >= 128).mean()) for c in range(m.shape[1])]
        return class_weights(shares)

    def _masks(self, rows):
        if self.cache is not None:
            return self.cache[0][rows], self.cache[1][rows]
        return self.masks.load(self.indices[rows], size=self.size)

    def get(self, rows: np.ndarray, generator=None) -> Batch:
        """The batch of ``rows``, augmented when a generator is given and augmentation is on."""
        x = self.data.get(rows)
        m = m_known = None
        if self.masks is not None:
            mu8, known = self._masks(rows)
            m = torch.from_numpy(mu8).float().div_(255.0)
            m_known = torch.from_numpy(known)
        if self.augment is not None and generator is not None:
            if m is not None:
                x, m = self.augment(x, generator, m)
            else:
                x = self.augment(x, generator)
        dev = self.device
        return Batch(x.to(dev), None if m is None else m.to(dev), None if m_known is None else m_known.to(dev),
                     self.y[rows].to(dev), self.a[rows].to(dev))

    def chunks(self, size: int = 256):
        """Every item in order, in batches of ``size`` (no augmentation)."""
        for start in range(0, len(self), size):
            yield self.get(np.arange(start, min(start + size, len(self))))


class Objective:
    """The named loss terms of a batch and their weighted sum.

    ``weights``: the encoder's loss weights (``TERM_WEIGHTS``' options and
    ``adversary_weight``); ``pos_weight``: per-target weight of positives (None for
    multi-class targets); ``cell_targets``: how the masks supervise the discrimination head's
    cells ("channels" when the mask channels are the targets, "union" for one abnormal flag,
    None)."""

    def __init__(self, net, *, normalise, weights: dict[str, float], multiclass: bool, pos_weight, cell_targets: str | None, device,
                 seg_class_weights: list[float] | None = None) -> None:
        self.net, self.normalise, self.weights, self.multiclass = net, normalise, weights, multiclass
        self.seg_class_weights = None if seg_class_weights is None else torch.tensor(seg_class_weights, dtype=torch.float32, device=device)
        self.pos_weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=torch.float32, device=device)
        self.cell_targets = cell_targets
        self.cell_pos_weight = torch.tensor(CELL_POS_WEIGHT, device=device)

    def label_loss(self, logits, y):
        """Discrimination loss on image-level targets: cross-entropy over classes, or binary
        cross-entropy per target with positives weighted; unknown targets (-1) left out."""
        if self.multiclass:
            known = y >= 0
            if not bool(known.any()):
                return logits.sum() * 0
            return F.cross_entropy(logits[known].float(), y[known])
        known = (y >= 0).float()
        raw = F.binary_cross_entropy_with_logits(logits.float(), (y == 1).float(), pos_weight=self.pos_weight, reduction="none")
        return (raw * known).sum() / known.sum().clamp(min=1.0)

    def terms(self, b: Batch, *, adversary: bool = True) -> dict:
        """The loss terms of one batch, by name."""
        net = self.net
        qn, qa, latent = net.latents(self.normalise(b.x))
        seg = net.segment(qa)
        out = {"latent": latent, **self.image_terms(b, qn, seg)}
        out["segmentation"] = self.segmentation_term(b, qa, seg)
        out["discrimination"] = self.discrimination_term(b, qa, seg)
        free = None  # the normal code from the trunk's output with its gradient stopped (the normal branch's own layers)
        if adversary and self.weights["independence_weight"] > 0:
            free = net.adversary_input()
            out["independence"] = self.independence_term(b, free)
        if adversary and self.weights["adversary_weight"] > 0:
            free = net.adversary_input() if free is None else free
            out["adversary"] = self.label_loss(net.adversary_logits(free, self.weights["adversary_weight"]), b.y)
        return out

    @staticmethod
    def independence_term(b: Batch, qn):
        """Squared maximum mean discrepancy (Gretton et al. 2012; as the variational fair
        autoencoder, Louizos et al. 2016) between the normal codes ``qn`` (centred on the items'
        mean, then unit rows, as the normal space is) of the batch's abnormal and normal items
        without a mask, Gaussian kernels of :data:`MMD_BANDWIDTHS` summed: small when the two groups' codes are spread alike, so that a normal code's
        neighbours do not tell whether it is abnormal.  Items with a mask are left out: there the
        residual term already says which pixels the normal code must not carry.  Zero when the
        batch lacks either group."""
        keep = (b.a >= 0) if b.m is None else ((b.a >= 0) & ~b.m_known)
        sick, well = keep & (b.a == 1), keep & (b.a == 0)
        if int(sick.sum()) < 2 or int(well.sum()) < 2:
            return qn.sum() * 0
        x = qn[keep].flatten(1).float()
        u = F.normalize(x - x.mean(dim=0), dim=1)  # centred, as the normal space is, then unit rows
        sick, well = u[sick[keep]], u[well[keep]]

        def kernel(p, q, same: bool = False):  # mean kernel value; within a group, off the diagonal (unbiased)
            d2 = (2 - 2 * p @ q.T).clamp(min=0)
            k = sum(torch.exp(-d2 / (2 * s2)) for s2 in MMD_BANDWIDTHS)
            return (k.sum() - k.diagonal().sum()) / (len(p) * (len(p) - 1)) if same else k.mean()

        return kernel(sick, sick, True) + kernel(well, well, True) - 2 * kernel(sick, well)

    def image_terms(self, b: Batch, qn, seg) -> dict:
        """Reconstruction (conditioned decoder vs input) and residual (the normal-appearing
        image vs the input outside where the image is abnormal)."""
        net, x = self.net, b.x
        rec = net.decode(qn, net.condition(seg))
        normal_img = net.decode(qn, None)
        outside = self._normal_region(b, seg)
        err = ((normal_img - x) ** 2).mean(dim=1, keepdim=True)
        return {"reconstruction": F.mse_loss(rec, x), "residual": (err * outside).sum() / outside.sum().clamp(min=1.0)}

    @staticmethod
    def _normal_region(b: Batch, seg):
        """Weight per pixel of where the normal-appearing image must match the input: outside
        the (dilated) mask; everywhere for images labelled normal; outside the segmentation
        decoder's own detached abnormality map for abnormal images without a mask."""
        x, a = b.x, b.a
        region = torch.zeros_like(x[:, :1])
        use = (a >= 0).float()
        if b.m is not None:
            region = torch.where(b.m_known.view(-1, 1, 1, 1), b.m.amax(dim=1, keepdim=True), region)
            use = torch.where(b.m_known, torch.ones_like(use), use)
        guess = torch.sigmoid(seg.detach()).amax(dim=1, keepdim=True)
        no_mask = (a == 1) if b.m is None else ((a == 1) & ~b.m_known)
        region = torch.where(no_mask.view(-1, 1, 1, 1), guess, region)
        region = F.max_pool2d(region, 3, 1, 1)  # dilate: soft edges spill over the mask
        return (1 - region) * use.view(-1, 1, 1, 1)

    def segmentation_term(self, b: Batch, qa, seg):
        """Binary cross-entropy + soft Dice (per channel, weighted by ``seg_class_weights``: the
        rare, small findings count more) against the masks (items with one), plus the
        discrimination head's cells against the masks max-pooled to the abnormal map's side."""
        if b.m is None or not bool(b.m_known.any()):
            return seg.sum() * 0
        s, tm = seg[b.m_known].float(), b.m[b.m_known]
        loss = F.binary_cross_entropy_with_logits(s, tm) + _soft_dice(s, tm, weights=self.seg_class_weights)
        if self.cell_targets is not None:
            cells = self.net.cell_target_logits(qa[b.m_known]).float()
            cm = F.adaptive_max_pool2d(tm, cells.shape[-2:])
            cm = cm if self.cell_targets == "channels" else cm.amax(dim=1, keepdim=True)
            loss = loss + F.binary_cross_entropy_with_logits(cells, cm, pos_weight=self.cell_pos_weight)
        return loss

    def discrimination_term(self, b: Batch, qa, seg):
        """The head's image-level loss, plus, for labelled items without a mask, the
        multiple-instance term on the segmentation logits' smooth maximum."""
        disc = self.label_loss(self.net.disc(qa, seg), b.y)
        if b.m is None and self.net.spec.seg_detects:  # labels only: the label loss already trains the same smooth maximum
            return disc
        mil = (b.a >= 0) if b.m is None else ((b.a >= 0) & ~b.m_known)
        if bool(mil.any()):
            disc = disc + F.binary_cross_entropy_with_logits(_lme_pool(seg[mil]), b.a[mil])
        return disc

    def total(self, parts: dict):
        """The weighted sum; the adversary's head learns at full rate (its reversal layer scales the encoder's share)."""
        loss = sum(self.weights[TERM_WEIGHTS[k]] * v for k, v in parts.items() if k in TERM_WEIGHTS)
        if "adversary" in parts:
            loss = loss + parts["adversary"]
        return loss

    def validation_loss(self, batches: Batches) -> float:
        """Mean total loss (no adversary) over every item of ``batches``."""
        tot, n = 0.0, 0
        for b in batches.chunks():
            tot += float(self.total(self.terms(b, adversary=False))) * len(b.x)
            n += len(b.x)
        return tot / max(n, 1)


class TermLog:
    """Mean of each loss term per epoch (``history``), from the steps' running sums."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.running: dict[str, float] = {}
        self.steps = 0

    def add(self, parts: dict) -> None:
        for k, v in parts.items():
            self.running[k] = self.running.get(k, 0.0) + float(v.detach())
        self.steps += 1

    def close_epoch(self, _epoch: int = 0) -> None:
        if self.steps:
            self.history.append({k: round(v / self.steps, 5) for k, v in self.running.items()})
        self.running, self.steps = {}, 0


__all__ = ["Batch", "Batches", "MMD_BANDWIDTHS", "Objective", "TERM_WEIGHTS", "TermLog"]
