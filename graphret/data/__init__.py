"""Data sources: everything that yields an :class:`ImageSet` (npz, folders, CSV manifests,
DICOM files, NIfTI volumes, the embedded demo set, fetched MedMNIST files), reached through
:func:`open_source`."""

from graphret.data.csv_manifest import CsvOptions, LabelTable, read_label_table
from graphret.data.groups import GroupOverlap, group_overlap
from graphret.data.imageset import ImageSet
from graphret.data.medical import MedicalOptions
from graphret.data.sources import open_source

__all__ = [
    "CsvOptions",
    "GroupOverlap",
    "ImageSet",
    "LabelTable",
    "MedicalOptions",
    "group_overlap",
    "open_source",
    "read_label_table",
]
