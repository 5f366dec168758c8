"""Data sources: everything that yields an :class:`ImageSet` (npz, folders, CSV manifests,
the embedded demo set, fetched MedMNIST files), reached through :func:`open_source`."""

from graphret.data.csv_manifest import CsvOptions
from graphret.data.imageset import ImageSet
from graphret.data.sources import open_source

__all__ = ["CsvOptions", "ImageSet", "open_source"]
