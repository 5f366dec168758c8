"""The graph store: versions of immutable Arrow fragments with put-if-absent commits (see
:mod:`.schema` for the layout), read through a :class:`Snapshot` that never writes."""

from graphret.store.maintain import compact, history, upgrade, vacuum, verify
from graphret.store.read import Snapshot, label_text, open_store
from graphret.store.schema import FORMAT_VERSION

__all__ = ["FORMAT_VERSION", "Snapshot", "compact", "history", "label_text", "open_store", "upgrade", "vacuum", "verify"]
