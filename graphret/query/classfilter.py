"""Class mode (Qayyum et al.): predict the query's class, then flat search only inside it.

The class comes from the encoder's classifier: its prediction for an outside image, or the
``predicted`` column the store keeps for a stored item.  On a store whose encoder has no
classifier, ``class_source="knn"`` predicts by a vote of the query's ``vote_k`` nearest
archive items instead (majority class, ties by summed similarity); the default
(``"classifier"``) refuses such a store with one line naming both fixes.

An archive item belongs to class c when its label is c (multi-class), when it is positive for
c (multi-label), or -- for an item without a label -- when the classifier predicted c.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError, ModeUnavailable
from graphret.graph.knn import exact_search
from graphret.query.config import CLASS_SOURCES

VOTE_K = 10


def has_classifier(store) -> bool:
    return bool(store.manifest.get("encoder", {}).get("classifier")) and "predicted" in store.items.schema.names


def class_members(store, c: int) -> np.ndarray:
    """Bool (N,) over store rows: the items of class c."""
    if store.task == "multilabel":
        return store.labels[:, c] == 1
    if store.task == "multiclass":
        member = store.labels == c
        if "predicted" in store.items.schema.names:
            predicted = store.items.column("predicted").to_numpy()
            member |= (store.labels < 0) & (predicted == c)
        return member
    if "predicted" in store.items.schema.names:
        return store.items.column("predicted").to_numpy() == c
    raise ModeUnavailable("class mode needs class labels or a classifier; this store has neither (use {mode=flat})", mode="class")


def predict_classes(store, queries, archive_rows: np.ndarray, archive_codes: np.ndarray, exclude: np.ndarray,
                    *, class_source: str = "classifier", vote_k: int = VOTE_K) -> tuple[np.ndarray, bool]:
    """(predicted class per query, whether the whole archive was scanned for a vote)."""
    if class_source not in CLASS_SOURCES:
        raise InputError(f"unknown class source {class_source!r}; choose classifier or knn for {{class_source}}", param="class_source")
    if class_source == "classifier":
        if not has_classifier(store):
            raise ModeUnavailable(
                "class mode needs an encoder with a classifier and this store's has none; "
                "use {class_source=knn} for a kNN vote, or build the store with a classifier encoder (e.g. {encoder=cnn})",
                mode="class",
            )
        if queries.predicted is None or np.any(np.asarray(queries.predicted) < 0):
            raise ModeUnavailable("the queries have no predicted class; encode them with the store's classifier encoder", mode="class")
        return np.asarray(queries.predicted, np.int64), False
    if store.task == "multiclass":
        labels = store.labels[archive_rows]
    elif store.task == "multilabel":
        labels = store.labels[archive_rows]
    else:
        raise ModeUnavailable("a kNN class vote needs class labels and this store has none (use {mode=flat})", mode="class")
    v = min(vote_k, len(archive_rows) - (1 if np.any(exclude >= 0) else 0))
    found, scores = exact_search(archive_codes, queries.codes, v, exclude=exclude)
    C = len(store.class_names)
    predicted = np.empty(len(queries), np.int64)
    for i in range(len(queries)):
        votes = np.zeros(C)
        weight = np.zeros(C)
        if store.task == "multiclass":
            lab = labels[found[i]]
            ok = lab >= 0
            np.add.at(votes, lab[ok], 1)
            np.add.at(weight, lab[ok], scores[i][ok])
        else:
            positive = labels[found[i]] == 1
            votes += positive.sum(axis=0)
            weight += (positive * scores[i][:, None]).sum(axis=0)
        predicted[i] = int(np.lexsort((-weight, -votes))[0]) if votes.any() else -1
    if np.any(predicted < 0):
        raise ModeUnavailable("the kNN vote found no labelled neighbours for a query; use {mode=flat}", mode="class")
    return predicted, True
