"""The partitions an analysis looks at: the stored methods (CNM, Leiden) and dendrogram cuts,
all over the clustered archive (the items whose stored community is >= 0).

Everything in :mod:`graphret.analysis` works on *local* arrays indexed by archive position
``0..n-1``; :attr:`ArchiveGraph.rows` maps them back to item rows of the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from graphret.errors import InputError, StoreError

__all__ = ["ArchiveGraph", "ArchivePartition", "archive_graph", "stored_partition", "cut_partition", "resolve_partitions", "stored_methods"]


@dataclass
class ArchiveGraph:
    """The kNN graph restricted to the clustered archive (float64 symmetric CSR, local rows)."""

    rows: np.ndarray  # item rows of the store, ascending
    graph: sp.csr_matrix

    @property
    def n(self) -> int:
        return int(self.rows.size)

    @cached_property
    def degree(self) -> np.ndarray:
        """Weighted degree of every archive item."""
        return np.asarray(self.graph.sum(axis=1)).ravel()

    @cached_property
    def total_weight(self) -> float:
        """W: the total edge weight, each undirected edge once."""
        return float(self.graph.data.sum()) / 2.0


@dataclass(frozen=True)
class ArchivePartition:
    """One partition of the archive: ``membership[i]`` is archive item i's community id.

    ``name`` is ``"cnm"``, ``"leiden"`` or ``"cnm_cut{N}"`` for the CNM dendrogram cut at N
    communities; stored partitions keep the stored community ids (as query results show them),
    cuts are numbered 0.. by decreasing size.
    """

    name: str
    method: str
    membership: np.ndarray
    cut: int | None = None
    resolution: float = 1.0

    @property
    def n_communities(self) -> int:
        return int(np.unique(self.membership).size)

    def sizes(self) -> np.ndarray:
        """Community sizes indexed by community id (0 for unused ids)."""
        return np.bincount(self.membership)


def _no_communities(store) -> StoreError:
    return StoreError(f"{store.path} has no communities; rebuild it with communities ({{communities=cnm,leiden}})")


def stored_methods(store) -> list[str]:
    """The community methods the store holds (a StoreError when it holds none)."""
    if not store.manifest.get("communities") and not store.manifest.get("params", {}).get("communities"):
        raise _no_communities(store)
    methods = store.community_methods
    if not methods:
        raise _no_communities(store)
    return methods


def _clustered_rows(store) -> np.ndarray:
    methods = stored_methods(store)
    if not methods:
        raise StoreError(f"{store.path} has no communities; rebuild it with communities ({{communities=cnm,leiden}})")
    rows = None
    for method in methods:
        here = np.flatnonzero(store.membership(method) >= 0)
        if rows is None or here.size < rows.size:
            rows = here
    if rows is None or rows.size == 0:
        raise StoreError(f"{store.path} has community columns but no item in a community; rebuild the store")
    return rows


def archive_graph(store) -> ArchiveGraph:
    """The stored graph over the clustered archive rows."""
    rows = _clustered_rows(store)
    full = store.graph()
    local = sp.csr_matrix(full[rows][:, rows], dtype=np.float64)
    local.sum_duplicates()
    local.eliminate_zeros()
    local.sort_indices()
    if local.nnz == 0:
        raise StoreError(f"{store.path} has no edges between its clustered items; rebuild the store")
    return ArchiveGraph(rows=rows, graph=local)


def stored_partition(store, method: str, rows: np.ndarray) -> ArchivePartition:
    """The stored ``method`` partition over ``rows``."""
    methods = stored_methods(store)
    if method not in methods:
        raise InputError(f"the store has no {method!r} communities; choose one of {', '.join(methods)} (or all)")
    membership = np.asarray(store.membership(method)[rows], dtype=np.int64)
    if membership.min() < 0:
        raise StoreError(f"the {method!r} communities do not cover the clustered archive; rebuild the store")
    return ArchivePartition(name=method, method=method, membership=membership, resolution=store.quality(method).resolution)


def cut_partition(store, n_communities, rows: np.ndarray) -> ArchivePartition:
    """The CNM dendrogram cut at ``n_communities`` over the clustered archive ``rows``."""
    from graphret.communities.cnm import replay_membership

    dendrogram = store.dendrogram
    if dendrogram is None:
        raise InputError(f"{store.path} has no CNM dendrogram to cut; rebuild it with {{communities=cnm}} (or drop {{cut}})", param="cut")
    try:
        wanted = int(n_communities)
    except (TypeError, ValueError):
        raise InputError(f"{{cut}} must be a whole number of communities, got {n_communities!r}", param="cut") from None
    if wanted != n_communities and str(wanted) != str(n_communities):
        raise InputError(f"{{cut}} must be a whole number of communities, got {n_communities!r}", param="cut")
    n = int(rows.size)
    a = dendrogram.column("a").to_numpy()
    b = dendrogram.column("b").to_numpy()
    merges = int(a.size)
    if merges and (max(int(a.max()), int(b.max())) >= n + merges or min(int(a.min()), int(b.min())) < 0):
        raise StoreError(f"the dendrogram does not match the {n} clustered items; rebuild the store")
    lowest = n - merges
    if wanted > n:
        raise InputError(f"cannot cut at {wanted} communities: the archive has only {n} clustered items; choose {lowest}..{n}")
    if wanted < lowest:
        raise InputError(
            f"cannot cut at {wanted} communities: the graph has {lowest} connected components; choose {lowest}..{n}"
        )
    membership = replay_membership(n, a, b, n - wanted)
    return ArchivePartition(name=f"cnm_cut{wanted}", method="cnm", membership=membership, cut=wanted,
                     resolution=store.quality("cnm").resolution)


def resolve_partitions(store, methods="all", cut=None, rows: np.ndarray | None = None) -> dict[str, ArchivePartition]:
    """Partitions by name: ``methods`` is ``"all"`` (every stored method), one name or a list;
    ``cut`` adds the CNM dendrogram cut at that many communities."""
    rows = _clustered_rows(store) if rows is None else rows
    if methods is None or methods == "all":
        names = stored_methods(store)
    elif isinstance(methods, str):
        names = [m.strip() for m in methods.split(",") if m.strip()]
    elif isinstance(methods, (list, tuple)) and all(isinstance(m, str) for m in methods):
        names = list(methods)
    else:
        raise InputError(f"{{methods}} must be community method names (cnm, leiden or all), got {methods!r}", param="methods")
    if not names and cut is None:
        raise InputError("choose at least one community method (cnm, leiden or all)")
    if "all" in names:
        names = stored_methods(store)
    out: dict[str, ArchivePartition] = {}
    for name in names:
        out[name] = stored_partition(store, name, rows)
    if cut is not None:
        part = cut_partition(store, cut, rows)
        out[part.name] = part
    return out
