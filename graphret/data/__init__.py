"""Data sources: everything that yields an :class:`ImageSet` (npz, folders, CSV manifests,
DICOM files, NIfTI volumes, the embedded demo set, fetched MedMNIST files), reached through
:func:`open_source`."""


from graphret import lazy_exports

#: the exported names and their modules, imported on first use
_EXPORTS = {
    "CsvOptions": "graphret.data.csv_manifest",
    "LabelTable": "graphret.data.csv_manifest",
    "read_label_table": "graphret.data.csv_manifest",
    "GroupOverlap": "graphret.data.groups",
    "group_overlap": "graphret.data.groups",
    "ImageSet": "graphret.data.imageset",
    "MedicalOptions": "graphret.data.medical",
    "open_source": "graphret.data.sources",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
