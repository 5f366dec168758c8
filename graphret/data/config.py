"""How a source is read: :class:`SourceConfig` (splits, corrupt files, CSV manifest columns)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from graphret.data.codes import CodeTable, read_code_table
from graphret.data.csv_manifest import CsvOptions
from graphret.data.imageset import ImageSet
from graphret.data.sources import open_source
from graphret.params import param, validate


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
    codes: bool = param(False, help="The source is a table of codes you already have (Parquet or CSV), not images.")
    code_column: str | None = param(None, help="Code table: the list column, or the prefix of the numbered columns, holding the codes [auto].")

    def __post_init__(self) -> None:
        if self.label_columns is not None:
            object.__setattr__(self, "label_columns", tuple(self.label_columns))
        validate(self)

    def csv_options(self) -> CsvOptions:
        return CsvOptions(path_column=self.path_column, label_columns=self.label_columns, split_column=self.split_column,
                          id_column=self.id_column, uncertain=self.uncertain, blank=self.blank)

    def read_codes(self, spec: str | Path) -> CodeTable:
        """The code table at ``spec`` (``codes=True``)."""
        return read_code_table(spec, code_column=self.code_column, id_column=self.id_column,
                               split_column=self.split_column, label_columns=self.label_columns)

    def open(self, spec: str | Path | None, *, seed: int = 0) -> ImageSet:
        """The ImageSet of source ``spec`` (None: the embedded demo set)."""
        return open_source(spec, seed=seed, split=self.split, on_corrupt=self.on_corrupt, csv=self.csv_options())
