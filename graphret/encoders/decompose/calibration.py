"""Decision thresholds of the decomposing encoder's detector, chosen on held-out items.

Training weights each target's positives by its negative / positive ratio, and the logit
shift ``log(pos_weight)`` undoes that weighting only on average: on the demo set the decision
it gives (probability 0.5) missed the accuracy-best threshold by up to 0.38 in probability
(effusion best at 0.12, calcification at 0.87), and the finding-set code, whose presence bits
come from these decisions, found the exact finding set of 0.742 of the test images against
0.805 with thresholds chosen on the held-out split.  The abnormal code needs every finding
right at once, so each target's threshold is set where the held-out accuracy is best."""

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


__all__ = ["MIN_CALIBRATION_ITEMS", "accuracy_thresholds"]
