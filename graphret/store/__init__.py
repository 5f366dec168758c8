"""The graph store: a folder of Arrow IPC files plus a JSON manifest (see :mod:`.schema`),
read through a :class:`Snapshot` that never writes."""

from graphret.store.read import Snapshot, label_text, open_store
from graphret.store.schema import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "Snapshot", "label_text", "open_store"]
