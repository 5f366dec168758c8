"""Community arithmetic, compiled: the quality term of a community and the gains built from it.

Every algorithm that weighs communities -- CNM's merges and node moves, region growing, the
assignment of added items -- calls these three functions, so a change to a quality's term
(:mod:`graphret.communities.quality`, where each term is defined once) reaches all of them.

* ``term(code, e, a, n, W, g, w_max)``: the community term of quality ``code`` (:data:`NEWMAN`
  or :data:`HAQ`) for a community with internal weight ``e``, total degree ``a`` and ``n``
  nodes, in a graph of total weight ``W``, resolution ``g``;
* ``merge_gain``: the change of quality when communities x and y (``w_xy`` between them)
  become one: ``term(x + y) - term(x) - term(y)``;
* ``join_gain``: the gain of a single node of degree ``k_i`` (``w_ic`` towards c) joining c,
  i.e. ``merge_gain`` with the singleton ``(0, k_i, 1)``.  Totals are those of the graph that
  contains the node's edges (the caller adds them: ``a_c + w_ic``, ``W + k_i`` for a query).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from graphret.kernels.jit import njit

from graphret.communities.quality import haq_term, newman_term
from graphret.errors import InputError

#: codes of the quality functions in compiled kernels
NEWMAN = 0
HAQ = 1
QUALITY_CODES: dict[str, int] = {"newman": NEWMAN, "haq": HAQ}

# the one definition of each term, compiled unchanged
_newman = njit(cache=True, inline="always")(newman_term)
_haq = njit(cache=True, inline="always")(haq_term)


@njit(cache=True, inline="always")
def term(code, e, a, n, W, g, w_max):
    """The community term of quality ``code``."""
    if code == NEWMAN:
        return _newman(e, a, n, W, g, w_max)
    return _haq(e, a, n, W, g, w_max)


@njit(cache=True, inline="always")
def merge_gain(code, e_x, a_x, n_x, e_y, a_y, n_y, w_xy, W, g, w_max):
    """``term(x + y) - term(x) - term(y)``: the gain of merging communities x and y."""
    return (term(code, e_x + e_y + w_xy, a_x + a_y, n_x + n_y, W, g, w_max)
            - term(code, e_x, a_x, n_x, W, g, w_max) - term(code, e_y, a_y, n_y, W, g, w_max))


@njit(cache=True, inline="always")
def join_gain(code, e_c, a_c, n_c, w_ic, k_i, W, g, w_max):
    """The gain of node i (degree ``k_i``, weight ``w_ic`` towards c) joining community c."""
    return merge_gain(code, e_c, a_c, n_c, 0.0, k_i, 1.0, w_ic, W, g, w_max)


@njit(cache=True, inline="always")
def move_gain(code, o, w_io, c, w_ic, k_i, graph):
    """The gain of node i (degree ``k_i``) moving from its community o (``w_io`` towards the
    rest of o) to c (``w_ic`` towards c): ``term(o - i) + term(c + i) - term(o) - term(c)``.
    ``o`` and ``c`` are totals ``(e, a, n)``; ``graph`` is ``(W, g, w_max)``."""
    W, g, w_max = graph
    e_o, a_o, n_o = o
    e_c, a_c, n_c = c
    return (term(code, e_o - w_io, a_o - k_i, n_o - 1.0, W, g, w_max)
            + term(code, e_c + w_ic, a_c + k_i, n_c + 1.0, W, g, w_max)
            - term(code, e_o, a_o, n_o, W, g, w_max) - term(code, e_c, a_c, n_c, W, g, w_max))


@dataclass(frozen=True)
class Quality:
    """A quality function with its settings, passed to the algorithms as one value (as
    leidenalg passes its partition type): ``name`` ("newman" or "haq"), ``resolution`` g and
    ``w_max`` (Haq's largest edge weight, 1 for cosine similarities).  Its methods are the
    compiled functions above."""

    name: str = "newman"
    resolution: float = 1.0
    w_max: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in QUALITY_CODES:
            raise InputError(f"unknown quality {self.name!r}; use one of: {', '.join(QUALITY_CODES)}", param="quality")
        if not (np.isfinite(self.resolution) and self.resolution > 0):
            raise InputError(f"the resolution must be a finite number > 0, got {self.resolution!r}; use e.g. {{resolution=1.0}}", param="resolution")

    @property
    def code(self) -> int:
        return QUALITY_CODES[self.name]

    def term(self, e: float, a: float, n: float, W: float) -> float:
        return float(term(self.code, float(e), float(a), float(n), float(W), float(self.resolution), float(self.w_max)))

    def join_gain(self, e_c: float, a_c: float, n_c: float, w_ic: float, k_i: float, W: float) -> float:
        """See :func:`join_gain`."""
        return float(join_gain(self.code, float(e_c), float(a_c), float(n_c), float(w_ic), float(k_i),
                               float(W), float(self.resolution), float(self.w_max)))
