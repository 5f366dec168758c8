"""The tests' stores: the one recipe of the small labelled blob stores most tests search
(:func:`build_blob_store`, shared through conftest's session-scoped ``blob_stores`` fixture), and
reading a store's files the way any Arrow tool can, without graphret: the newest manifest is the
highest-numbered file in ``_versions/``, and a table is its fragments, in order."""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

import graphret
from tests.synthetic import blob_images


def build_blob_store(path, *, n_per_class: int = 20, seed: int = 4, communities=("cnm", "leiden"), dim: int = 12,
                     k: int = 5, **options) -> Path:
    """``3 * n_per_class`` labelled 16 px blob images in three classes (train/val/test), pixel
    codes of ``dim`` components, a kNN graph of ``k`` and the ``communities`` methods."""
    graphret.build(blob_images(n_per_class=n_per_class, n_classes=3, seed=seed), str(path), k=k,
                   communities=tuple(communities), encoder="pixels", image_size=16, dim=dim, **options)
    return Path(path)


def newest_manifest(store) -> dict:
    versions = sorted(Path(store, "_versions").glob("*.json"))
    return json.loads(versions[-1].read_text())


def fragment_paths(store, table: str) -> list[Path]:
    return [Path(store) / entry["file"] for entry in newest_manifest(store)["tables"][table]]


def arrow_table(store, table: str) -> pa.Table:
    return ds.dataset([str(p) for p in fragment_paths(store, table)], format="arrow").to_table()


def rewrite_fragment(store, table: str, new: pa.Table) -> None:
    """Replace the newest version's (single) ``table`` fragment by ``new``, with a matching size
    and checksum in the manifest: damage no checksum can see."""
    path = sorted(Path(store, "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    entry = manifest["tables"][table][0]
    target = Path(store) / entry["file"]
    target.unlink()
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, new.schema) as writer:
        writer.write_table(new)
    entry.update(bytes=target.stat().st_size, sha256=hashlib.sha256(target.read_bytes()).hexdigest(), rows=new.num_rows)
    path.write_text(json.dumps(manifest))
