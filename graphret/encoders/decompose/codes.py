"""Code spaces of the decomposing encoder and composite queries: one image's ``normal`` code
beside another's ``abnormal`` code, in the ``both`` space (Kobayashi et al., Figure 3c)."""

from __future__ import annotations

import math

import numpy as np

from graphret.encoders.base import l2_normalise
from graphret.errors import InputError

SPACES = ("normal", "abnormal", "both")


def composite_code(normal: np.ndarray, abnormal: np.ndarray) -> np.ndarray:
    """The ``both``-space code of a composite query: one image's ``normal`` code beside
    another's ``abnormal`` code (Kobayashi et al., Figure 3c: "this anatomy, with that
    abnormality").

    ``normal``: unit rows (n, d_n) or one row (d_n,) from the ``normal`` space (image A);
    ``abnormal``: unit rows (n, d_a) or (d_a,) from the ``abnormal`` space (image B); returns
    float32 unit rows ``[normal, abnormal] / sqrt(2)`` of shape (n, d_n + d_a) (or (d_n + d_a,)
    for one pair) -- exactly how the encoder forms ``both``, so the composite of an image with
    itself is its own ``both`` code.  Search it against the archive's ``both`` (= ``default``)
    codes."""
    a = np.asarray(normal, dtype=np.float32)
    b = np.asarray(abnormal, dtype=np.float32)
    single = a.ndim == 1 and b.ndim == 1
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.ndim != 2 or b.ndim != 2:
        raise InputError("composite codes take code rows (n, d) or one code (d,) per part")
    if len(a) != len(b):
        if len(a) == 1:
            a = np.repeat(a, len(b), axis=0)
        elif len(b) == 1:
            b = np.repeat(b, len(a), axis=0)
        else:
            raise InputError(f"{len(a)} normal codes and {len(b)} abnormal codes; give one of each per composite query (or one to pair with all)")
    out = np.concatenate([l2_normalise(a), l2_normalise(b)], axis=1) / np.float32(math.sqrt(2.0))
    return out[0] if single else out


def split_both(both: np.ndarray, normal_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The (normal, abnormal) unit codes inside ``both``-space codes (the encoder's
    ``space_dims()["normal"]`` is ``normal_dim``)."""
    x = np.asarray(both, dtype=np.float32)
    if not 0 < normal_dim < x.shape[-1]:
        raise InputError(f"normal_dim={normal_dim} does not split codes of dimension {x.shape[-1]}; use the encoder's normal-space dimension", param="normal_dim")
    two = np.atleast_2d(x)
    n, a = l2_normalise(two[:, :normal_dim]), l2_normalise(two[:, normal_dim:])
    return (n[0], a[0]) if x.ndim == 1 else (n, a)


def composite_from_both(both_a: np.ndarray, both_b: np.ndarray, normal_dim: int) -> np.ndarray:
    """:func:`composite_code` from two items' ``both`` codes: A's normal part, B's abnormal part."""
    normal, _ = split_both(both_a, normal_dim)
    _, abnormal = split_both(both_b, normal_dim)
    return composite_code(normal, abnormal)


__all__ = ["SPACES", "composite_code", "composite_from_both", "split_both"]
