"""Reading a store's files the way any Arrow tool can, without graphret: the newest manifest is
the highest-numbered file in ``_versions/``, and a table is its fragments, in order."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds


def newest_manifest(store) -> dict:
    versions = sorted(Path(store, "_versions").glob("*.json"))
    return json.loads(versions[-1].read_text())


def fragment_paths(store, table: str) -> list[Path]:
    return [Path(store) / entry["file"] for entry in newest_manifest(store)["tables"][table]]


def arrow_table(store, table: str) -> pa.Table:
    return ds.dataset([str(p) for p in fragment_paths(store, table)], format="arrow").to_table()
