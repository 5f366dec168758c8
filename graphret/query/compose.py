"""Composite queries (Kobayashi et al., ML4H 2020, Figure 3c): "this anatomy, with that
abnormality".

A store built with the decomposing encoder (``encoder="decompose"``) keeps three code spaces:
``normal`` (the normal-anatomy code), ``abnormal`` (the abnormal-anatomy code) and ``both``
(the two side by side, :func:`graphret.encoders.decompose.composite_code`).  A composite query
takes image A's ``normal`` code and image B's ``abnormal`` code, joins them as the encoder
joins an image's own two codes, and searches the archive's ``both`` codes.

A spec names the two parts as ``ITEM:SPACE`` pairs, e.g. ``"A:normal,B:abnormal"`` (either
order), or a mapping ``{"normal": A, "abnormal": B}``; an ITEM is a stored id or an image file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from graphret.encoders.decompose import composite_code
from graphret.errors import InputError
from graphret.query.queries import QuerySet, as_queries
from graphret.store.read import Snapshot

__all__ = ["COMPOSE_SPACES", "CompositeSpec", "composite_queries", "parse_compose"]

#: The parts of a composite query, in the order they are joined.
COMPOSE_SPACES = ("normal", "abnormal")
#: The space a composite query searches.
COMPOSITE_SPACE = "both"


@dataclass(frozen=True)
class CompositeSpec:
    """One composite query: ``normal`` (the item whose normal code is used) and ``abnormal``
    (the item whose abnormal code is used), each a stored id or an image file."""

    normal: str
    abnormal: str

    def text(self) -> str:
        return f"{self.normal}:normal,{self.abnormal}:abnormal"


def parse_compose(spec: str | Mapping[str, Any] | CompositeSpec) -> CompositeSpec:
    """The :class:`CompositeSpec` of ``"A:normal,B:abnormal"`` (either order) or of a mapping
    ``{"normal": A, "abnormal": B}``."""
    if isinstance(spec, CompositeSpec):
        return spec
    if isinstance(spec, Mapping):
        pairs = [(str(value), str(key)) for key, value in spec.items()]
    elif isinstance(spec, str):
        pairs = []
        for part in spec.split(","):
            item, sep, space = part.strip().rpartition(":")
            if not sep or not item or not space:
                raise InputError(f"bad composite query {spec!r}: each part is ITEM:SPACE; use {{compose=A:normal,B:abnormal}}", param="compose")
            pairs.append((item, space.strip()))
    else:
        raise InputError(f"a composite query is a string like 'A:normal,B:abnormal', not a {type(spec).__name__}", param="compose")
    chosen: dict[str, str] = {}
    for item, space in pairs:
        if space not in COMPOSE_SPACES:
            raise InputError(f"unknown space {space!r} in the composite query; each part is ITEM:normal or ITEM:abnormal, "
                             f"e.g. {{compose=A:normal,B:abnormal}}", param="compose")
        if space in chosen:
            raise InputError(f"the composite query names the {space} part twice; give one ITEM:normal and one ITEM:abnormal", param="compose")
        chosen[space] = item
    missing = [space for space in COMPOSE_SPACES if space not in chosen]
    if missing:
        raise InputError(f"the composite query has no {missing[0]} part; give one ITEM:normal and one ITEM:abnormal, "
                         f"e.g. {{compose=A:normal,B:abnormal}}", param="compose")
    return CompositeSpec(normal=chosen["normal"], abnormal=chosen["abnormal"])


def _check_store(store: Snapshot) -> None:
    if not all(space in store.spaces for space in (*COMPOSE_SPACES, COMPOSITE_SPACE)):
        encoder = store.manifest.get("encoder", {}).get("name", "?")
        raise InputError(f"the store has no normal and abnormal codes (its encoder is {encoder!r}, spaces {', '.join(store.spaces)}); "
                         f"composite queries need a store built with {{encoder=decompose}}", param="compose")


def _part(store: Snapshot, item: str, space: str) -> QuerySet:
    """The one query of ``item`` (a stored id or an image file) in ``space``."""
    if item in store.row_of_id:
        queries = as_queries(store, [item], space=space, kind="ids")
    elif Path(item).is_file():
        queries = as_queries(store, [item], space=space, kind="images")
    else:
        examples = ", ".join(map(str, store.ids[:3]))
        raise InputError(f"unknown id or image file {item!r} in the composite query; ids in this store look like {examples}",
                         param="compose")
    if len(queries) != 1:
        raise InputError(f"{item!r} gives {len(queries)} images (a multi-frame file?); a composite part is one image", param="compose")
    return queries


def composite_queries(store: Snapshot, spec: str | Mapping[str, Any] | CompositeSpec) -> QuerySet:
    """The composite query of ``spec`` in the ``both`` space: A's normal code beside B's
    abnormal code.  A stored A is left out of the results (as any stored query is); the
    QuerySet's ``composite`` holds the two parts (for the montage)."""
    spec = parse_compose(spec)
    _check_store(store)
    a = _part(store, spec.normal, "normal")
    b = _part(store, spec.abnormal, "abnormal")
    codes = composite_code(np.asarray(a.codes, np.float32), np.asarray(b.codes, np.float32))
    return QuerySet(codes=np.atleast_2d(codes).astype(np.float32), rows=a.rows.copy(), ids=[spec.text()], paths=[None],
                    labels=[None], predicted=None, images=None, composite={"normal": a, "abnormal": b})


def part_pixels(store: Snapshot, part: QuerySet) -> np.ndarray | None:
    """The pixels of a composite part (a stored item's, or the query image's); None when they
    cannot be found."""
    from graphret.store.pixels import ItemImages

    if part.rows[0] >= 0:
        return ItemImages(store).image(int(part.rows[0]))
    if part.images is not None:
        return part.images.image(0)
    return None


def normal_appearing(store: Snapshot, part: QuerySet) -> np.ndarray | None:
    """The normal-appearing reconstruction of a composite's normal part: the store's decomposing
    encoder's image decoder fed the part's normal map with zeroed segmentation logits
    (:meth:`~graphret.encoders.decompose.DecomposingEncoder.normal_appearing`); uint8 (H, W) or
    (H, W, C) at the model's size, None without pixels."""
    from graphret.data.imageset import ImageSet

    pixels = part_pixels(store, part)
    if pixels is None:
        return None
    encoder = store.encoder()
    one = ImageSet(ids=["composite"], paths=[""], splits=np.array(["test"], dtype=object), labels=None, class_names=[],
                   task="unlabelled", source="composite query", images=np.asarray(pixels)[None])
    out = encoder.normal_appearing(one)[0]
    return out[:, :, 0] if out.shape[-1] == 1 else out
