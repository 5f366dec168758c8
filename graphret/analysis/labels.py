"""Communities against the labels: each community's label composition and purity, the
partition's NMI / ARI against the labels, and the most mixed communities.

Multi-class: a community's *purity* is the share of its labelled members in its most common
class.  Multi-label: its purity is the share of its members with its most common exact label
set (Haq's exact-match relevance), and each label also gets its own NMI / ARI of the partition
against "positive for this label or not" (uncertain -1 entries left out for that label).
Items without a label (-1) are left out.  Scores are defined in :mod:`graphret.analysis.scores`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from graphret.analysis.scores import agreement
from graphret.errors import InputError

__all__ = ["LabelData", "label_data", "label_composition", "label_agreement", "most_mixed"]

NO_LABEL = "(none)"


class LabelData:
    """The labels of the archive items: ``task``, ``class_names`` and either ``classes``
    (int (n,), -1 none) for multi-class or ``matrix`` (int8 (n, C)) for multi-label.
    ``key`` is one categorical code per item (the class, or the exact label set; -1 none)
    and ``key_names`` names them."""

    def __init__(self, task: str, class_names: list[str], values: np.ndarray):
        self.task = task
        self.class_names = list(class_names)
        if task == "multiclass":
            self.classes = np.asarray(values, dtype=np.int64)
            self.matrix = None
            self.key = self.classes.copy()
            self.key_names = list(self.class_names)
        elif task == "multilabel":
            self.matrix = np.asarray(values, dtype=np.int8)
            self.classes = None
            positive = (self.matrix == 1).astype(np.uint8)
            sets, inverse = np.unique(positive, axis=0, return_inverse=True)
            self.key = inverse.ravel().astype(np.int64)
            self.key_names = [
                "|".join(self.class_names[c] for c in np.flatnonzero(row)) or NO_LABEL for row in sets
            ]
        else:
            raise InputError("the store has no labels; label analysis needs a labelled source")

    def __len__(self) -> int:
        return int(self.key.size)


def label_data(store, rows: np.ndarray) -> LabelData:
    """The store's labels of item ``rows`` (InputError for an unlabelled store)."""
    labels = store.labels
    if labels is None or store.task not in ("multiclass", "multilabel"):
        raise InputError(f"{store.path} has no labels (task {store.task}); label analysis needs a labelled source")
    return LabelData(store.task, store.class_names, labels[rows])


def _top_shares(counts: np.ndarray, names: list[str], total: float, top: int = 3) -> str:
    order = np.argsort(-counts, kind="stable")[:top]
    return ", ".join(f"{names[j]} {counts[j] / total:.0%}" for j in order if counts[j] > 0)


def label_composition(membership: np.ndarray, labels: LabelData) -> pd.DataFrame:
    """One row per community (largest first): ``community``, ``size``, ``labelled``,
    ``dominant`` (most common class or label set), ``purity``, ``entropy`` (of the label
    distribution, in bits), ``top_labels`` (the three largest shares, as text), then one column
    per class: member counts (multi-class) or the share positive for each label (multi-label)."""
    membership = np.asarray(membership, dtype=np.int64)
    K = int(membership.max()) + 1
    key = labels.key
    ok = key >= 0
    nk = len(labels.key_names)
    counts = np.zeros((K, max(nk, 1)), np.int64)
    np.add.at(counts, (membership[ok], key[ok]), 1)
    size = np.bincount(membership, minlength=K)
    used = np.flatnonzero(size > 0)
    counts, size = counts[used], size[used]
    labelled = counts.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = counts / np.maximum(labelled, 1)[:, None]
        ent = -np.where(p > 0, p * np.log2(np.where(p > 0, p, 1)), 0.0).sum(axis=1) + 0.0
    best = counts.argmax(axis=1)
    table = pd.DataFrame({
        "community": used.astype(np.int64),
        "size": size.astype(np.int64),
        "labelled": labelled.astype(np.int64),
        "dominant": [labels.key_names[j] if labelled[i] else NO_LABEL for i, j in enumerate(best)],
        "purity": np.where(labelled > 0, counts.max(axis=1) / np.maximum(labelled, 1), np.nan),
        "entropy": ent,
        "top_labels": [_top_shares(counts[i], labels.key_names, max(labelled[i], 1)) for i in range(used.size)],
    })
    if labels.task == "multiclass":
        for j, name in enumerate(labels.class_names):
            table[name] = counts[:, j] if j < counts.shape[1] else 0
    else:
        positive = (labels.matrix == 1).astype(np.float64)
        sums = np.zeros((K, positive.shape[1]))
        np.add.at(sums, membership, positive)
        shares = sums[used] / np.maximum(size, 1)[:, None]
        for j, name in enumerate(labels.class_names):
            table[name] = shares[:, j]
    return table.sort_values(["size", "community"], ascending=[False, True], kind="stable").reset_index(drop=True)


def label_agreement(membership: np.ndarray, labels: LabelData) -> pd.DataFrame:
    """NMI, ARI, purity and inverse purity of the partition against the labels: one row
    ``label = "(classes)"`` for multi-class; for multi-label one row ``"(label sets)"`` for the
    exact label sets, then one row per label (positive or not)."""
    membership = np.asarray(membership, dtype=np.int64)
    rows = []
    ok = labels.key >= 0
    name = "(classes)" if labels.task == "multiclass" else "(label sets)"
    rows.append({"label": name, "items": int(ok.sum()), "positives": int(ok.sum()),
                 **agreement(membership[ok], labels.key[ok])})
    if labels.task == "multilabel":
        for j, label in enumerate(labels.class_names):
            column = labels.matrix[:, j]
            known = column >= 0
            if not known.any():
                continue
            rows.append({"label": label, "items": int(known.sum()), "positives": int((column == 1).sum()),
                         **agreement(membership[known], (column[known] == 1).astype(np.int64))})
    return pd.DataFrame(rows, columns=["label", "items", "positives", "nmi", "ari", "purity", "inverse_purity"])


def most_mixed(composition: pd.DataFrame, *, top: int = 10, min_size: int = 5) -> pd.DataFrame:
    """The ``top`` least pure communities with at least ``min_size`` members (ties: larger
    first), from :func:`label_composition`."""
    big = composition[(composition["size"] >= min_size) & (composition["labelled"] > 0)]
    order = big.sort_values(["purity", "size", "community"], ascending=[True, False, True], kind="stable")
    return order.head(top)[["community", "size", "labelled", "purity", "entropy", "dominant", "top_labels"]].reset_index(drop=True)
