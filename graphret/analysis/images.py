"""Pixels of stored items, for montages.

A store keeps codes, not images; its ``path`` column names where each image came from, which
for npz sources is a key like ``AbdomenCT/000219.jpeg``, not a file.  So the pixels are read by
re-opening the store's source (``manifest["source"]["spec"]`` with the build's seed and split
setting) and matching item ids.  A source that is gone or no longer holds the items is one
clear :class:`~graphret.errors.InputError`; a caller that still has the ImageSet can pass it.
"""

from __future__ import annotations

import numpy as np

from graphret.errors import GraphretError, InputError

__all__ = ["open_store_source", "item_images"]


def open_store_source(store):
    """Re-open the source the store was built from, as an ImageSet."""
    from graphret.data import open_source
    from graphret.data.csv_manifest import CsvOptions

    spec = store.manifest.get("source", {}).get("spec")
    params = store.manifest.get("params", {})
    if not spec:
        raise InputError(f"{store.path} does not record its source; pass images= to read pixels")
    csv = None
    if params.get("csv_options"):
        try:
            csv = CsvOptions(**params["csv_options"])
        except TypeError:
            csv = None
    try:
        return open_source(spec, seed=int(store.manifest.get("seed", 0)), split=bool(params.get("split", True)),
                           on_corrupt=params.get("on_corrupt", "skip"), csv=csv)
    except GraphretError as error:
        raise InputError(f"cannot read the images of {store.path}: its source {spec} is gone or unreadable ({error})") from None


def item_images(store, rows, *, images=None) -> list[np.ndarray]:
    """uint8 pixels (H, W) or (H, W, 3) of the store's item ``rows``, read from ``images`` (an
    ImageSet holding the store's items) or from the re-opened source."""
    rows = [int(r) for r in rows]
    source = open_store_source(store) if images is None else images
    position = {item_id: i for i, item_id in enumerate(source.ids)}
    out = []
    for r in rows:
        item_id = store.ids[r]
        i = position.get(item_id)
        if i is None:
            raise InputError(
                f"the source {store.manifest.get('source', {}).get('spec')} no longer holds item {item_id!r} of "
                f"{store.path}; montages need the images the store was built from"
            )
        try:
            out.append(np.asarray(source.image(i)))
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read the image of item {item_id!r} ({error}); is the source still there?") from None
    return out
