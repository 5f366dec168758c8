"""The graph store's on-disk layout: file names, format version and Arrow schemas.

A store is a folder of Arrow IPC files any Arrow tool can read without graphret:

* ``items.arrow``: one row per item: ``id``, ``path``, ``split``, ``label`` (int32 class
  index, -1 none), ``label_name``, ``labels`` (multi-label only: fixed-size list of int8,
  1/0/-1), metadata columns, ``code`` (fixed-size list of float32, unit norm) and
  ``code_<space>`` for further code spaces; classifiers add ``predicted`` and ``probabilities``.
* ``edges.arrow``: ``src``, ``dst`` (item row positions, src < dst, each undirected edge once)
  and ``weight`` (float32 cosine similarity > 0).
* ``communities.arrow``: one row per item in item order, one int32 column per method
  (``cnm``, ``leiden``, ...); -1 for items outside the clustered archive.
* ``dendrogram.arrow``: CNM's merges in order.
* ``encoder.pt``: the encoder's weights; ``manifest.json``: everything else.
"""

from __future__ import annotations

import pyarrow as pa

from graphret.graph.build import EDGES_SCHEMA

FORMAT_NAME = "graphret-store"
FORMAT_VERSION = 1

ITEMS_FILE = "items.arrow"
EDGES_FILE = "edges.arrow"
COMMUNITIES_FILE = "communities.arrow"
DENDROGRAM_FILE = "dendrogram.arrow"
ENCODER_FILE = "encoder.pt"
MANIFEST_FILE = "manifest.json"

CODE_COLUMN = "code"
#: boolean item column marking the items that arrived with ``graphret add``
ADDED_COLUMN = "added"
BASE_ITEM_COLUMNS = ("id", "path", "split", "label", "label_name")
RESERVED_ITEM_COLUMNS = BASE_ITEM_COLUMNS + ("labels", "predicted", "probabilities", ADDED_COLUMN)


BASE_ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("path", pa.string()),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int32(), nullable=False),
        pa.field("label_name", pa.string()),
    ]
)


def code_column(space: str) -> str:
    """Item column holding code space ``space`` ("default" is ``code``)."""
    return CODE_COLUMN if space == "default" else f"{CODE_COLUMN}_{space}"


def is_code_field(field: pa.Field) -> bool:
    """True for a fixed-size list of float32 named ``code`` or ``code_*``."""
    return (
        (field.name == CODE_COLUMN or field.name.startswith(CODE_COLUMN + "_"))
        and pa.types.is_fixed_size_list(field.type)
        and field.type.value_type == pa.float32()
    )
