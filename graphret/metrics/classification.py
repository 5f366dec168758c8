"""A classifier's quality on multi-label targets: the area under the ROC curve per label and
its mean (how NIH ChestX-ray14 and CheXpert classifiers are compared), and the pooled AUROC over
every known (item, label) entry (a steadier figure on a small validation set)."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """The area under the ROC curve of ``scores`` for the boolean ``positive``, by the rank-sum
    (Mann-Whitney) formula ``(R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with tied scores
    given their mean rank; None when either class is absent."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def label_aurocs(probabilities: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """Each label's :func:`auroc` over its known entries (``labels`` 1 positive, 0 negative,
    -1 unknown: left out); None for a label without both classes."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    out = []
    for j in range(labels.shape[1]):
        known = labels[:, j] >= 0
        out.append(auroc(probabilities[known, j], labels[known, j] == 1))
    return out


def mean_auroc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """The mean of :func:`label_aurocs` over the labels that have both classes; None when none has."""
    values = [v for v in label_aurocs(probabilities, labels) if v is not None]
    return float(np.mean(values)) if values else None


def mean_auroc_spread(probabilities: np.ndarray, labels: np.ndarray, *, draws: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """How much :func:`mean_auroc` owes to which test items were drawn: (standard deviation,
    2.5th and 97.5th percentiles) of the mean AUROC over ``draws`` bootstrap resamples of the
    items (drawn with replacement, seeded).  On a small multi-label test set, where a label has
    one to five positives, this spread is what a difference between two classifiers is weighed
    against (benchmarks/results/pretrained/README.md)."""
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(draws)):
        rows = rng.integers(0, len(labels), len(labels))
        value = mean_auroc(probabilities[rows], labels[rows])
        if value is not None:
            values.append(value)
    if not values:
        raise ValueError("no resample has a label with both classes")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(np.std(values)), float(low), float(high)


def pooled_auroc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """:func:`auroc` over every known (item, label) entry pooled into one ranking (the "micro"
    average); None when the known entries are all of one class.

    Unlike :func:`mean_auroc` it does not give a label with one or two positives the weight of a
    common one: on the NIH chest X-rays' 70 validation images (15 labels, some with a single
    positive) the mean AUROC fell after the first epoch while the test AUROC and retrieval rose;
    the pooled figure rose with them (benchmarks/results/pretrained/README.md)."""
    labels = np.asarray(labels)
    known = labels >= 0
    return auroc(np.asarray(probabilities)[known], labels[known] == 1)
