"""Groups of items that must stay together (patients, volumes) and how queries relate to them.

A retrieval benchmark whose queries share a patient with the archive measures, in part, how
well the encoder recognises the patient: the same person's other image is the easiest
"relevant" hit.  :func:`group_overlap` says how many queries have a group-mate in the archive,
so a report can state it (0 for a patient-level split).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class GroupOverlap:
    """How the query items' groups meet the archive's.

    ``queries``: query items; ``queries_sharing``: those whose group also has an archive item;
    ``groups_shared``: distinct groups on both sides; ``query_groups`` / ``archive_groups``:
    distinct groups on each side; ``fraction``: queries_sharing / queries (0 when none)."""

    queries: int
    queries_sharing: int
    query_groups: int
    archive_groups: int
    groups_shared: int
    fraction: float

    @property
    def disjoint(self) -> bool:
        """True when no query shares a group with the archive."""
        return self.queries_sharing == 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def group_overlap(
    groups: Sequence[str] | np.ndarray,
    query_rows: Sequence[int] | np.ndarray,
    archive_rows: Sequence[int] | np.ndarray,
) -> GroupOverlap:
    """Do the queries (rows ``query_rows`` of ``groups``) share groups with the archive (rows
    ``archive_rows``)?  ``groups`` is one group per item, e.g. ``ImageSet.groups`` or the
    store's group column."""
    g = np.asarray(groups).astype(str)
    q = g[np.asarray(query_rows, dtype=np.int64)]
    a = g[np.asarray(archive_rows, dtype=np.int64)]
    archive_set = np.unique(a)
    sharing = np.isin(q, archive_set)
    q_set = np.unique(q)
    shared = np.intersect1d(q_set, archive_set)
    n = len(q)
    return GroupOverlap(
        queries=int(n),
        queries_sharing=int(sharing.sum()),
        query_groups=int(len(q_set)),
        archive_groups=int(len(archive_set)),
        groups_shared=int(len(shared)),
        fraction=float(sharing.mean()) if n else 0.0,
    )


def groups_across_splits(groups: Sequence[str] | np.ndarray, splits: Sequence[str] | np.ndarray) -> list[str]:
    """The groups with items in more than one split (sorted), e.g. to warn about a source's own
    split that puts one patient in train and test."""
    g = np.asarray(groups).astype(str)
    s = np.asarray(splits).astype(str)
    if len(g) == 0:
        return []
    pairs = np.unique(np.stack([g, s], axis=1), axis=0)
    names, counts = np.unique(pairs[:, 0], return_counts=True)
    return sorted(names[counts > 1].tolist())
