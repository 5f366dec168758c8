"""Pixels of stored items, for montages, pictures and thumbnails.

A store keeps codes, not images; its ``path`` column names where each image came from: an image
file, an ``file.npz#key[i]`` reference, or for npz sources a key like ``AbdomenCT/000219.jpeg``
that is not a file.  So pixels are read from the path when it leads to them, else by re-opening
the store's source (``manifest["source"]["spec"]`` with the build's seed and source options)
and matching item ids.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from graphret.data.config import SourceConfig
from graphret.errors import GraphretError, InputError

__all__ = ["ItemImages", "open_store_source", "item_images"]

_NPZ_REF = re.compile(r"^(.*\.npz)#(\w+)\[(\d+)\]$")


def open_store_source(store):
    """Re-open the source the store was built from, as an ImageSet."""
    spec = store.manifest.get("source", {}).get("spec")
    params = dict(store.manifest.get("params", {}))
    if not spec:
        raise InputError(f"{store.path} does not record its source; pass images= to read pixels")
    params.update(params.pop("csv_options", None) or {})  # stores of graphret 0.1 nest the CSV options
    names = {f.name for f in dataclasses.fields(SourceConfig)}
    try:
        config = SourceConfig(**{k: v for k, v in params.items() if k in names})
    except GraphretError:
        config = SourceConfig()
    try:
        return config.open(None if spec == "demo" else spec, seed=int(store.manifest.get("seed", 0)))
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
        except GraphretError:
            raise  # already one line naming the problem
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read the image of item {item_id!r} ({error}); is the source still there?") from None
    return out


class ItemImages:
    """Pixels of stored items, with the source data loaded at most once; ``image(row)`` gives
    None where no pixels can be found (a montage draws a grey tile)."""

    def __init__(self, store) -> None:
        self.store = store
        self._npz: dict[tuple[str, str], np.ndarray] = {}
        self._source = None
        self._source_rows: dict[str, int] | None = None
        self._source_failed = False

    def _from_source(self, item_id: str) -> np.ndarray | None:
        if self._source_failed:
            return None
        if self._source is None:
            try:
                self._source = open_store_source(self.store)
                self._source_rows = {str(i): n for n, i in enumerate(self._source.ids)}
            except Exception:  # noqa: BLE001 - a montage never fails for want of pixels
                self._source_failed = True
                return None
        n = self._source_rows.get(item_id)
        return None if n is None else self._source.image(n)

    def image(self, row: int) -> np.ndarray | None:
        path = self.store.paths[row]
        if path:
            match = _NPZ_REF.match(path)
            if match and Path(match.group(1)).is_file():
                key = (match.group(1), match.group(2))
                try:
                    if key not in self._npz:
                        with np.load(match.group(1)) as z:
                            self._npz[key] = z[match.group(2)]
                    return self._npz[key][int(match.group(3))]
                except Exception:  # noqa: BLE001
                    pass
            elif Path(path).is_file():
                try:
                    from PIL import Image

                    with Image.open(path) as im:
                        return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
                except Exception:  # noqa: BLE001
                    pass
        return self._from_source(str(self.store.ids[row]))
