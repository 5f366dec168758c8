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


def mean_auroc(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    """The mean over labels of :func:`auroc`, each label over its known entries (``labels``
    1 positive, 0 negative, -1 unknown: left out); labels without both classes are skipped;
    None when no label has both."""
    labels = np.asarray(labels)
    values = []
    for j in range(labels.shape[1]):
        known = labels[:, j] >= 0
        value = auroc(np.asarray(probabilities)[known, j], labels[known, j] == 1)
        if value is not None:
            values.append(value)
    return float(np.mean(values)) if values else None


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
