"""The graph store's on-disk layout: folders, file names, format versions and Arrow schemas.

Format 2 (this graphret writes it), in the manner of Lance, Delta Lake and Iceberg::

    STORE/
      _versions/00000001.json  00000002.json ...   one manifest per committed version
      data/items-<id>.arrow  edges-<id>.arrow  communities-<id>.arrow
           dendrogram-<id>.arrow  encoder-<id>.pt                   immutable fragment files
      _writer.lock                                                  one writer at a time (fcntl)

A version's manifest lists, per table, the fragment files whose rows, in order, make the table,
each with its row count, size and SHA-256; a commit creates the next version's manifest with
put-if-absent (:func:`graphret.store.fs.link_exclusive`), so two writers can never both commit
version N.  Files are never changed once written; readers pin one version and read only its
files.  The tables, each an Arrow IPC file per fragment that any Arrow tool reads:

* ``items``: one row per item: ``id``, ``path``, ``split``, ``label`` (int32 class index, -1
  none), ``label_name``, ``labels`` (multi-label only: fixed-size list of int8, 1/0/-1),
  metadata columns, ``code`` (fixed-size list of float32, unit norm) and ``code_<space>`` for
  further code spaces, ``added`` (bool: arrived with ``graphret add``), ``group`` (the patient
  or volume, where the source has groups: hashed for DICOM PatientIDs); classifiers add
  ``predicted`` and ``probabilities``.
* ``edges``: ``src``, ``dst`` (item row positions, src < dst, each undirected edge once) and
  ``weight`` (float32 cosine similarity > 0).
* ``communities``: one row per item in item order, one int32 column per method (``cnm``,
  ``leiden``); -1 for items outside the clustered archive.
* ``dendrogram``: CNM's merges in order.
* ``thumbnails`` (optional): ``row`` (item row) and ``png`` (a small PNG of the item, see
  :mod:`graphret.store.thumbnails`); stores written before it existed have none.
* ``adjacency`` and ``regions`` (optional, format 3): what a search of the default archive
  needs, prepared when the version was written (:mod:`graphret.store.prepared`).
* ``walk`` (optional): the walk lists the graph and region modes search through
  (:mod:`graphret.graph.search_graph`), one directed edge per row, ``src`` -> ``dst`` (item
  rows), each item's list in order; ``entries``: ``row``, the walk's entry points (community
  medoids).  Stores built without them are searched through lists built in memory.

Format 3 is format 2 whose versions may list the prepared tables; a version's manifest says
its format, this graphret reads formats 2 and 3 (an older graphret refuses format 3 with a
one-line error rather than carry prepared tables it cannot keep).

Format 1 (graphret 0.1) kept one ``items.arrow``, ``edges.arrow``, ... and a ``manifest.json``
at the top of the folder; such a store opens read-only, and ``graphret upgrade`` rewrites it.
"""

from __future__ import annotations

import pyarrow as pa

from graphret.graph.build import EDGES_SCHEMA

FORMAT_NAME = "graphret-store"
FORMAT_VERSION = 3
#: the first format with versions (``_versions/``): every versioned store, whatever its manifests' format
VERSIONED_FORMAT = 2
LEGACY_FORMAT_VERSION = 1

VERSIONS_DIR = "_versions"
DATA_DIR = "data"
LOCK_FILE = "_writer.lock"
TABLES = ("items", "edges", "communities", "dendrogram", "thumbnails", "walk", "entries", "adjacency", "regions")
REQUIRED_TABLES = ("items", "edges", "communities")
ENCODER = "encoder"

# format 1 file names
ITEMS_FILE = "items.arrow"
EDGES_FILE = "edges.arrow"
COMMUNITIES_FILE = "communities.arrow"
DENDROGRAM_FILE = "dendrogram.arrow"
ENCODER_FILE = "encoder.pt"
MANIFEST_FILE = "manifest.json"
LEGACY_FILES = {"items": ITEMS_FILE, "edges": EDGES_FILE, "communities": COMMUNITIES_FILE, "dendrogram": DENDROGRAM_FILE}

CODE_COLUMN = "code"
#: boolean item column marking the items that arrived with ``graphret add``
ADDED_COLUMN = "added"
#: string item column of the group (patient, volume) an item belongs to, where the source has one
GROUP_COLUMN = "group"
BASE_ITEM_COLUMNS = ("id", "path", "split", "label", "label_name")
RESERVED_ITEM_COLUMNS = BASE_ITEM_COLUMNS + ("labels", "predicted", "probabilities", ADDED_COLUMN, GROUP_COLUMN)

WALK_SCHEMA = pa.schema([pa.field("src", pa.int64(), nullable=False), pa.field("dst", pa.int64(), nullable=False)])
ENTRIES_SCHEMA = pa.schema([pa.field("row", pa.int64(), nullable=False)])

BASE_ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("path", pa.string()),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.int32(), nullable=False),
        pa.field("label_name", pa.string()),
    ]
)

__all__ = [
    "ADDED_COLUMN", "BASE_ITEMS_SCHEMA", "CODE_COLUMN", "DATA_DIR", "EDGES_SCHEMA", "FORMAT_NAME", "FORMAT_VERSION",
    "LOCK_FILE", "VERSIONED_FORMAT", "TABLES", "VERSIONS_DIR", "code_column", "is_code_field", "version_file",
]


def version_file(number: int) -> str:
    """The manifest file name of version ``number``."""
    return f"{number:08d}.json"


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
