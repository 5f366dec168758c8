"""The graph store: a folder of Arrow IPC files plus a JSON manifest (see :mod:`.schema`)."""

from graphret.store.read import GraphStore, open_store
from graphret.store.schema import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "GraphStore", "open_store"]
