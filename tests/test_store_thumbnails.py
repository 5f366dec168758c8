"""The optional thumbnails table: written at build and add time as fragments, read lazily by the
Snapshot, merged by compact, checked by verify; stores without it keep working."""

import io

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

import graphret
from graphret.api.add import add_to_store
from graphret.store import compact, open_store, verify
from graphret.store.commit import Writer, write_version
from graphret.store.thumbnails import encode_png, thumbnail_png, thumbnails_table
from tests.stores import arrow_table, newest_manifest
from tests.synthetic import blob_images


def build(path, **options):
    graphret.build(blob_images(n_per_class=20, n_classes=3, seed=4), str(path), k=5, communities=("cnm",), encoder="pixels",
                   image_size=16, dim=12, **options)
    return path


def new_blobs(n_per_class=2, seed=11):
    images = blob_images(n_per_class=n_per_class, n_classes=3, seed=seed)
    images.ids = [f"new-{i}" for i in range(len(images))]
    return images


def png_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def test_encode_png_round_trips_grey_and_rgb():
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    rgb = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    assert np.array_equal(png_pixels(encode_png(grey)), grey)
    assert np.array_equal(png_pixels(encode_png(rgb)), rgb)


def test_thumbnail_fits_the_size_and_never_grows():
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (300, 150, 3), dtype=np.uint8)
    assert png_pixels(thumbnail_png(big, 64)).shape == (64, 32, 3)
    small = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    assert np.array_equal(png_pixels(thumbnail_png(small, 64)), small)
    floats = np.linspace(0.0, 1.0, 12).reshape(3, 4)  # other types scaled by their own range
    assert png_pixels(thumbnail_png(floats)).tolist()[0][0] == 0 and png_pixels(thumbnail_png(floats)).max() == 255


def test_unreadable_items_are_left_out():
    def read(i):
        if i == 1:
            raise OSError("gone")
        return np.full((4, 4), i, np.uint8)

    table = thumbnails_table(3, read, first_row=10)
    assert table.column("row").to_pylist() == [10, 12]


def test_a_build_stores_one_thumbnail_per_item(tmp_path):
    images = blob_images(n_per_class=20, n_classes=3, seed=4)
    store = open_store(build(tmp_path / "s"))
    assert store.has_thumbnails and store.thumbnails.num_rows == len(store) == 60
    assert store.manifest["params"]["thumbnail_size"] == 64
    for row in (0, 17, 59):
        assert np.array_equal(png_pixels(store.thumbnail(row)), images.image(row))  # 16 px images are kept as they are
    assert store.thumbnail(60) is None and store.thumbnail(-1) is None
    table = arrow_table(tmp_path / "s", "thumbnails")  # any Arrow tool reads it
    assert table.column("row").to_pylist() == list(range(60))


def test_thumbnail_size_zero_stores_none(tmp_path):
    store = open_store(build(tmp_path / "s", thumbnail_size=0))
    assert not store.has_thumbnails and store.thumbnails is None and store.thumbnail(0) is None
    assert "thumbnails" not in newest_manifest(tmp_path / "s")["tables"]


def test_an_add_writes_the_new_items_thumbnails_and_compact_merges_them(tmp_path):
    path = build(tmp_path / "s", thumbnail_size=8)
    new = new_blobs()
    add_to_store(path, new)
    store = open_store(path)
    assert len(newest_manifest(path)["tables"]["thumbnails"]) == 2
    assert store.thumbnails.num_rows == 66
    assert png_pixels(store.thumbnail(63)).shape == (8, 8)  # the size the store was built with
    assert np.array_equal(png_pixels(store.thumbnail(63)), png_pixels(thumbnail_png(new.image(3), 8)))
    before = [store.thumbnail(r) for r in range(66)]
    compact(path)
    merged = open_store(path)
    assert len(newest_manifest(path)["tables"]["thumbnails"]) == 1
    assert [merged.thumbnail(r) for r in range(66)] == before
    assert merged.dendrogram.num_rows == store.dendrogram.num_rows  # each table merged from its own fragments
    assert verify(path) == []


def _drop_thumbnails(path):
    """Commit a version as a store written before the thumbnails table existed: no table, and no
    thumbnail_size among the build's parameters."""

    def change(writer: Writer):
        manifest = dict(writer.base)
        manifest["tables"] = {k: v for k, v in manifest["tables"].items() if k != "thumbnails"}
        manifest["params"] = {k: v for k, v in manifest["params"].items() if k != "thumbnail_size"}
        return manifest

    write_version(path, change, operation="build")


def test_stores_without_the_table_open_and_adds_give_their_new_items_thumbnails(tmp_path):
    path = build(tmp_path / "s")
    _drop_thumbnails(path)
    old = graphret.open(path)
    assert not old.snapshot.has_thumbnails and old.snapshot.thumbnail(0) is None
    assert len(old.search(["blob-0000"], k=3, mode="flat").ids[0]) == 3
    add_to_store(path, new_blobs())
    store = open_store(path)
    assert store.has_thumbnails
    assert store.thumbnails.column("row").to_pylist() == list(range(60, 66))  # only the new items
    assert store.thumbnail(0) is None and store.thumbnail(60) is not None


def test_a_damaged_thumbnails_fragment_is_one_clear_error(tmp_path):
    path = build(tmp_path / "s")
    entry = newest_manifest(path)["tables"]["thumbnails"][0]
    target = path / entry["file"]
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    store = open_store(path)  # opening reads items only
    with pytest.raises(graphret.StoreError, match="checksum"):
        store.thumbnail(0)
    assert any("thumbnails" in problem for problem in verify(path))


def test_the_table_holds_row_and_png(tmp_path):
    store = open_store(build(tmp_path / "s"))
    assert store.thumbnails.schema.field("row").type == pa.int64()
    assert store.thumbnails.schema.field("png").type == pa.binary()
