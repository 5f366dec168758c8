"""How a source is read: :class:`SourceConfig` (splits, corrupt files, CSV manifest columns) and
:class:`MaskConfig` (segmentation masks attached to it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from graphret.data.codes import CodeTable, read_code_table
from graphret.data.csv_manifest import CsvOptions
from graphret.data.imageset import ImageSet
from graphret.data.masks import attach_mask_column, attach_mask_folder
from graphret.data.medical import MedicalOptions
from graphret.data.sources import open_source
from graphret.errors import InputError, ParameterError
from graphret.params import param, validate


@dataclass(frozen=True)
class MaskConfig:
    """Where segmentation masks of the abnormal regions come from (:mod:`graphret.data.masks`),
    for the decomposing encoder: a folder of mask images or a CSV manifest's column of mask
    files (the demo set carries its own)."""

    mask_folder: str | None = param(None, help="Segmentation masks of the abnormal regions (decompose encoder): a folder of mask images named after the items' ids or image files.")
    mask_column: str | None = param(None, help="CSV source: a column of mask file paths (relative to the CSV's folder; blank: no mask) for the decompose encoder.")
    mask_encoding: Literal["binary", "labels", "bits"] = param(
        "binary", help="Masks: binary (any non-zero pixel is abnormal), labels (value v marks region v) or bits (bit c marks region c, overlaps allowed).")
    mask_names: tuple[str, ...] | None = param(None, help="Masks: the region names, one per label value or bit [abnormal for binary masks].")

    def __post_init__(self) -> None:
        if self.mask_names is not None and not isinstance(self.mask_names, tuple):
            object.__setattr__(self, "mask_names", tuple(self.mask_names))
        validate(self)

    def attach(self, images: ImageSet, spec: str | Path | None = None) -> ImageSet:
        """``images`` with the configured masks attached (unchanged when none is configured)."""
        if self.mask_folder is None and self.mask_column is None:
            return images
        if self.mask_folder is not None and self.mask_column is not None:
            raise ParameterError("give {mask_folder} or {mask_column}, not both", param="mask_column")
        names = list(self.mask_names) if self.mask_names else None
        try:
            if self.mask_folder is not None:
                return attach_mask_folder(images, self.mask_folder, encoding=self.mask_encoding, names=names)
            root = Path(spec).expanduser().parent if spec is not None and Path(spec).expanduser().is_file() else None
            return attach_mask_column(images, self.mask_column, root=root, encoding=self.mask_encoding, names=names)
        except InputError as error:
            # the library names its keyword arguments; say which option to change
            options = {"folder": "mask_folder", "column": "mask_column", "names": "mask_names", "encoding": "mask_encoding", "root": "mask_column"}
            param = options.get(error.param or "", error.param)
            message = error.template
            for old, new in options.items():
                message = message.replace("{" + old + "=", "{" + new + "=").replace("{" + old + "}", "{" + new + "}")
            raise type(error)(message, param=param) from None


@dataclass(frozen=True)
class SourceConfig:
    """Options of :func:`graphret.data.open_source` that a build or an add passes on."""

    split: bool = param(True, help="Give sources without splits a seeded 70/30 train/test split (off: one archive of everything).")
    on_corrupt: Literal["skip", "error"] = param("skip", help="A corrupt or missing image is skipped and counted, or an error.")
    path_column: str | None = param(None, help="CSV source: the image path column [auto].")
    label_columns: tuple[str, ...] | None = param(None, help="CSV source: the label columns [the rest].")
    split_column: str | None = param(None, help="CSV source: a column of train/val/test.")
    id_column: str | None = param(None, help="CSV source: a column of item ids.")
    uncertain: Literal["ignore", "ones", "zeros"] = param(
        "ignore", help="CSV source, CheXpert convention: what -1 (uncertain) becomes (ignore = masked).")
    blank: Literal["zeros", "ignore"] = param("zeros", help="CSV source, CheXpert convention: what a blank (unmentioned) label becomes.")
    group_column: str | None = param(None, help="CSV source: a column (a patient) whose items stay in one split [Patient ID, patient or subject when present].")
    label_table: str | None = param(None, help="A CSV that labels a plain folder of images, joined on path or SOPInstanceUID.")
    window: str = param("file", help="DICOM/NIfTI: file (the file's VOI LUT or window), range, lung, mediastinum, bone, brain, or CENTRE,WIDTH.")
    frames: str = param("all", help="Multi-frame DICOM: all (one item per frame), first, middle, last, or a frame number.")
    dicom_tags: tuple[str, ...] | None = param(None, help="DICOM tags kept as metadata beyond the non-identifying default set (names, IDs... only when named here).")
    slice_axis: int = param(2, min=0, max=2, help="NIfTI: the axis the volume is sliced along.")
    slice_step: int = param(1, min=1, help="NIfTI: take every n-th slice.")
    codes: bool = param(False, help="The source is a table of codes you already have (Parquet or CSV), not images.")
    code_column: str | None = param(None, help="Code table: the list column, or the prefix of the numbered columns, holding the codes [auto].")
    masks: MaskConfig = param(default_factory=MaskConfig, help="Segmentation masks attached to the items.")

    def __post_init__(self) -> None:
        for name in ("label_columns", "dicom_tags"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        validate(self)

    def csv_options(self) -> CsvOptions:
        return CsvOptions(path_column=self.path_column, label_columns=self.label_columns, split_column=self.split_column,
                          id_column=self.id_column, uncertain=self.uncertain, blank=self.blank)

    def read_codes(self, spec: str | Path) -> CodeTable:
        """The code table at ``spec`` (``codes=True``)."""
        return read_code_table(spec, code_column=self.code_column, id_column=self.id_column,
                               split_column=self.split_column, label_columns=self.label_columns)

    def open(self, spec: str | Path | None, *, seed: int = 0) -> ImageSet:
        """The ImageSet of source ``spec`` (None: the embedded demo set), with the masks of
        ``mask_folder`` or ``mask_column`` attached (:mod:`graphret.data.masks`)."""
        images = open_source(spec, seed=seed, split=self.split, on_corrupt=self.on_corrupt, csv=self.csv_options(),
                             medical=MedicalOptions(window=self.window, frames=self.frames, dicom_tags=self.dicom_tags,
                                                    slice_axis=self.slice_axis, slice_step=self.slice_step),
                             group_column=self.group_column, labels=self.label_table)
        return self.masks.attach(images, spec)
