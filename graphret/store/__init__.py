"""The graph store: versions of immutable Arrow fragments with put-if-absent commits (see
:mod:`.schema` for the layout), read through a :class:`Snapshot` that never writes."""


from graphret import lazy_exports

#: the exported names and their modules, imported on first use
_EXPORTS = {
    "compact": "graphret.store.maintain",
    "history": "graphret.store.maintain",
    "upgrade": "graphret.store.maintain",
    "vacuum": "graphret.store.maintain",
    "verify": "graphret.store.maintain",
    "Snapshot": "graphret.store.read",
    "label_text": "graphret.store.read",
    "open_store": "graphret.store.read",
    "FORMAT_VERSION": "graphret.store.schema",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["FORMAT_VERSION", "Snapshot", "compact", "history", "label_text", "open_store", "upgrade", "vacuum", "verify"]
