"""Decision thresholds of the decomposing encoder's detector, chosen on held-out items.

Training weights each target's positives by its negative / positive ratio, and the logit
shift ``log(pos_weight)`` undoes that weighting only on average: on the demo set the decision
it gives (probability 0.5) missed the accuracy-best threshold by up to 0.38 in probability
(effusion best at 0.12, calcification at 0.87), and the finding-set code, whose presence bits
come from these decisions, found the exact finding set of 0.742 of the test images against
0.805 with thresholds chosen on the held-out split.  The abnormal code needs every finding
right at once, so each target's threshold is set where the held-out accuracy is best.

The segmentation masks get the same treatment with Dice in place of accuracy
(:func:`dice_thresholds`): at probability 0.5 the demo's effusion, painted at nearly the body's
grey, was found with precision 0.96 but recall 0.29 (Dice 0.44); its Dice-best cut on the
held-out split, logit -3.25, gave 0.63 on the test split (default build, latent_dim 16)."""

from __future__ import annotations

import numpy as np

#: Fewest held-out positives and negatives of a target for its threshold to be chosen from them.
MIN_CALIBRATION_ITEMS = 5


def accuracy_thresholds(logits: np.ndarray, targets: np.ndarray, *, min_items: int = MIN_CALIBRATION_ITEMS) -> list[float | None]:
    """Per target (column), the logit threshold with the best accuracy of ``logit > threshold``
    against ``targets`` (1 positive, 0 negative, -1 unknown, left out): of the cut points
    midway between consecutive distinct logits, the middle one of those tied at the best
    accuracy (the upper of the two middle ones for an even count).  None for a target with fewer than ``min_items`` known positives or negatives."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    if z.ndim != 2 or z.shape != y.shape:
        raise ValueError(f"logits {z.shape} and targets {y.shape} must both be (items, targets)")
    out: list[float | None] = []
    for c in range(z.shape[1]):
        known = y[:, c] >= 0
        zc, yc = z[known, c], y[known, c] == 1
        if yc.sum() < min_items or (~yc).sum() < min_items:
            out.append(None)
            continue
        order = np.argsort(zc, kind="stable")
        zs, ys = zc[order], yc[order]
        # cut k puts the k smallest logits below the threshold: correct = negatives below + positives above
        correct = np.concatenate([[0], np.cumsum(~ys)]) + np.concatenate([[ys.sum()], ys.sum() - np.cumsum(ys)])
        cuts = np.concatenate([[zs[0] - 1.0], (zs[1:] + zs[:-1]) / 2, [zs[-1] + 1.0]])
        distinct = np.concatenate([[True], zs[1:] > zs[:-1], [True]])  # a cut between equal logits separates nothing
        best = np.flatnonzero(distinct & (correct == correct[distinct].max()))
        out.append(float(cuts[best[len(best) // 2]]))
    return out


def exact_set_accuracy(logits: np.ndarray, targets: np.ndarray, cuts=None) -> tuple[float, float]:
    """(share of items whose every known target is decided right by ``logit > cut``, mean
    per-target accuracy) of ``logits`` against ``targets`` (items, targets; 1 / 0 / -1 unknown,
    which counts as right).  ``cuts``: per target, default (None, or None for a target) the
    items' own accuracy-best cut (:func:`accuracy_thresholds`), else logit 0."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    found = accuracy_thresholds(z, y) if cuts is None else list(cuts)
    t = np.asarray([0.0 if c is None else c for c in found], dtype=np.float64)
    right = ((z > t) == (y == 1)) | (y < 0)
    return float(right.all(axis=1).mean()), float(right.mean())


#: The logit cuts :func:`dice_thresholds` chooses from: -6 to 6 in steps of 1/4 (probability 0.0025 to 0.9975).
MASK_LOGIT_GRID = tuple(float(v) for v in np.arange(-24, 25) / 4)


def dice_thresholds(logits: np.ndarray, masks: np.ndarray, *, grid=MASK_LOGIT_GRID, min_items: int = MIN_CALIBRATION_ITEMS) -> list[float | None]:
    """Per mask channel, the logit cut of ``grid`` whose mask ``logit > cut`` has the best Dice
    against ``masks``, pooled over all items (``2 |P & T| / (|P| + |T|)``; of tied cuts the
    middle one, the upper of the two middle ones for an even count).  ``logits``: (n, C, H, W);
    ``masks``: boolean, the same shape.  None for a channel present in fewer than
    ``min_items`` items."""
    z = np.asarray(logits, dtype=np.float32)
    truth = np.asarray(masks, dtype=bool)
    if z.ndim != 4 or z.shape != truth.shape:
        raise ValueError(f"logits {z.shape} and masks {truth.shape} must both be (items, channels, height, width)")
    cuts = np.asarray(grid, dtype=np.float64)
    out: list[float | None] = []
    for c in range(z.shape[1]):
        zc, tc = z[:, c], truth[:, c]
        if int(tc.reshape(len(tc), -1).any(axis=1).sum()) < min_items:
            out.append(None)
            continue
        # pixels above each cut: all of them, and those inside the true mask
        above = len(zc.ravel()) - np.searchsorted(np.sort(zc.ravel()), cuts, side="right")
        hits = int(tc.sum()) - np.searchsorted(np.sort(zc[tc]), cuts, side="right")
        dice = 2 * hits / np.maximum(above + int(tc.sum()), 1)
        best = np.flatnonzero(dice == dice.max())
        out.append(float(cuts[best[len(best) // 2]]))
    return out


__all__ = ["MASK_LOGIT_GRID", "MIN_CALIBRATION_ITEMS", "accuracy_thresholds", "dice_thresholds"]
