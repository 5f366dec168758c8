"""What a hostile afternoon still broke (issue 21): each defect reproduced, one test each.

Shared contract: a one-line error naming the problem and a fix, exit 1 or 2 on the command
line, no traceback, and nothing stored changed."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from graphret.errors import GraphretError, StoreError
from graphret.store import verify
from tests.stores import newest_manifest


def one_line_error(result, text):
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert result.exit_code in (1, 2), result.output
    assert len(lines) == 1 and text in lines[0], result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (MemoryError, IndexError))


def unit(rows):
    rows = np.asarray(rows, np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def test_last(tmp_path_factory):
    """A fresh build whose last rows are the test split: outside the graph, so the CSR over
    every item ends in rows with no edges."""
    codes = unit(np.random.default_rng(0).normal(size=(60, 8)))
    return graphret.build_from_codes(codes, tmp_path_factory.mktemp("i21") / "s", splits=["train"] * 48 + ["test"] * 12, k=4)


def rewrite_fragment(store: Path, table: str, new: pa.Table) -> None:
    """Replace the newest version's (single) ``table`` fragment by ``new``, with a matching
    size and checksum in the manifest: damage no checksum can see."""
    path = sorted((store / "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    entry = manifest["tables"][table][0]
    target = store / entry["file"]
    target.chmod(0o644)
    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_file(sink, new.schema) as writer:
        writer.write_table(new)
    entry.update(bytes=target.stat().st_size, sha256=hashlib.sha256(target.read_bytes()).hexdigest(), rows=new.num_rows)
    path.write_text(json.dumps(manifest))


# 1 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["region", "graph", "probe", "flat"])
def test_archive_all_on_a_fresh_build_searches_every_item(test_last, mode):
    result = test_last.search(["0"], k=5, mode=mode, archive=["all"])
    assert result.rows.shape == (1, 5) and 0 not in result.rows[0]
    assert CliRunner().invoke(main, ["query", str(test_last.path), "--id", "0", "--archive", "all", "--mode", mode]).exit_code == 0


def test_row_sums_of_a_csr_with_empty_rows_at_either_end():
    from graphret.graph.segments import row_sums

    indptr = np.array([0, 0, 2, 2, 5, 5, 5])
    values = np.array([1, 2, 3, 4, 5])
    assert row_sums(values, indptr).tolist() == [0, 3, 0, 12, 0, 0]
    assert row_sums(np.zeros(0), np.zeros(4, np.int64)).tolist() == [0, 0, 0]


# 2 ---------------------------------------------------------------------------------------
def test_build_when_the_last_item_has_no_positive_neighbour(tmp_path):
    rng = np.random.default_rng(1)
    codes = unit(np.vstack([np.abs(rng.normal(size=(199, 6))), -np.abs(rng.normal(size=(1, 6)))]))
    store = graphret.build_from_codes(codes, tmp_path / "s", k=5)
    assert len(store) == 200
    assert store.search(["199"], k=3, mode="graph").rows.shape == (1, 3)


# 3 ---------------------------------------------------------------------------------------
def test_verify_names_an_edge_to_a_negative_row(test_last, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(test_last.path, copy)
    edges = graphret.open(copy).snapshot.edges
    dst = edges.column("dst").to_numpy().copy()
    dst[3] = -7
    rewrite_fragment(copy, "edges", edges.set_column(edges.schema.get_field_index("dst"), "dst", pa.array(dst, edges.schema.field("dst").type)))
    problems = verify(copy)
    assert len(problems) == 1 and "outside the 60 items" in problems[0]
    checked = CliRunner().invoke(main, ["verify", str(copy)])
    assert checked.exit_code == 1 and "outside the 60 items" in checked.output and "Traceback" not in checked.output
    with pytest.raises(StoreError, match="outside the 60 items"):
        graphret.open(copy).search(["0"], k=3, mode="region")


# 4 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [10**9, 10**12])
def test_a_huge_k_is_refused_before_anything_is_allocated(test_last, k):
    one_line_error(CliRunner().invoke(main, ["query", str(test_last.path), "--split", "test", "--k", str(k)]),
                   "is larger than the archive")
    with pytest.raises(GraphretError, match="larger than the archive"):
        test_last.search("test", k=k, mode="flat")


# 5 ---------------------------------------------------------------------------------------
def test_versions_of_a_missing_path_or_a_plain_folder(tmp_path):
    one_line_error(CliRunner().invoke(main, ["versions", str(tmp_path / "nowhere")]), "no such store")
    one_line_error(CliRunner().invoke(main, ["versions", str(tmp_path)]), "is not a graphret store")
    with pytest.raises(StoreError, match="no such store"):
        graphret.store.history(tmp_path / "nowhere")


# 6 ---------------------------------------------------------------------------------------
def test_archive_as_a_string_names_splits_not_letters(test_last):
    by_string = test_last.search(["0"], k=5, mode="flat", archive="all")
    assert by_string.rows.tolist() == test_last.search(["0"], k=5, mode="flat", archive=["all"]).rows.tolist()
    assert test_last.search(["0"], k=3, mode="flat", archive="train,test").rows.shape == (1, 3)
    with pytest.raises(GraphretError, match="must be split names") as error:
        test_last.search(["0"], k=3, archive=7)
    assert error.value.param == "archive"


# 7 ---------------------------------------------------------------------------------------
def test_a_source_of_identical_images_is_named_as_such(tmp_path):
    import nibabel as nib
    from PIL import Image

    folder = tmp_path / "same"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((16, 16), 90, np.uint8)).save(folder / f"copy{i}.png")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 12), np.float32), np.eye(4)), tmp_path / "zero.nii.gz")
    for source in (folder, tmp_path / "zero.nii.gz"):
        result = CliRunner().invoke(main, ["build-graph", str(source), "-o", str(tmp_path / "s"), "--encoder", "pixels", "--k", "3"])
        one_line_error(result, "the encoder sees no difference between them")
        assert "not L2-normalised" not in result.output and not (tmp_path / "s").exists()


# 8 ---------------------------------------------------------------------------------------
def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height grey pixels (a decompression bomb's first bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_upload_is_too_large_not_unreadable(tmp_path):
    from fastapi.testclient import TestClient

    from graphret.serve import ServeConfig, create_app
    from graphret.serve.uploads import TooLarge, Upload, decode_upload

    with pytest.raises(TooLarge, match="over the server's limit"):
        decode_upload(Upload("bomb.png", png_header_only(20000, 20000)), max_pixels=50_000_000)
    codes = unit(np.random.default_rng(3).normal(size=(20, 4)))
    graphret.build_from_codes(codes, tmp_path / "s", k=3, communities=())
    with TestClient(create_app(tmp_path / "s", ServeConfig())) as client:
        response = client.post("/search/image", files={"files": ("bomb.png", png_header_only(20000, 20000), "image/png")})
    assert response.status_code == 413, response.text


# 9 ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blob_store(tmp_path_factory):
    from tests.synthetic import blob_images

    return graphret.build(blob_images(n_per_class=10, n_classes=3, seed=5), tmp_path_factory.mktemp("blob") / "s",
                          encoder="pixels", image_size=16, dim=8, k=4, communities=("cnm",))


def test_a_query_whose_version_a_vacuum_removed_says_so(blob_store, tmp_path):
    from graphret.errors import VersionRemoved
    from tests.synthetic import blob_images

    copy = tmp_path / "copy"
    shutil.copytree(blob_store.path, copy)
    writer = graphret.open(copy)
    extra = blob_images(n_per_class=2, n_classes=3, seed=6)
    extra.ids = [f"extra-{i}" for i in range(len(extra))]
    writer.add(extra)  # version 2, in fragments
    reader = graphret.open(copy)  # reads version 2's items, the rest when it searches
    writer.compact()
    graphret.open(copy).vacuum(grace=0)  # version 2's fragments go
    with pytest.raises(VersionRemoved, match="version 2 of .* was removed .* run it again") as error:
        reader.search(["blob-0001"], k=3, mode="region")
    assert "damaged" not in str(error.value)
    assert graphret.open(copy).search(["blob-0001"], k=3, mode="region").rows.shape == (1, 3)
    assert verify(copy) == []
