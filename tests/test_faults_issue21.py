"""What a hostile afternoon still broke (issue 21): each defect reproduced, one test each.

Shared contract: a one-line error naming the problem and a fix, exit 1 or 2 on the command
line, no traceback, and nothing stored changed."""

import json
import shutil

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from graphret.errors import GraphretError, StoreError
from graphret.store import verify
from tests.stores import rewrite_fragment


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
def blob_store(blob_stores):
    """The session's CNM blob store that test_bad_input_more reads too (the tests copy it)."""
    return graphret.open(blob_stores(n_per_class=15, seed=2, dim=8, k=4, communities=("cnm",)))


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


# 10 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("codes, text", [(np.zeros(8), "is all zeros"), (np.ones((1, 8)) * 1j, "must be real numbers"),
                                         ([[1.0] * 8, [0.0] * 8], "query code 1 is all zeros")])
def test_zero_and_complex_query_codes_are_refused(test_last, codes, text):
    with pytest.raises(GraphretError, match=text):
        test_last.search(codes, k=3, mode="flat")


def test_zero_query_codes_on_the_server_are_a_400(test_last):
    from fastapi.testclient import TestClient

    from graphret.serve import ServeConfig, create_app

    with TestClient(create_app(test_last.path, ServeConfig())) as client:
        response = client.post("/search", json={"codes": [[0.0] * 8], "k": 3, "mode": "flat"})
    assert response.status_code == 400 and "all zeros" in response.json()["error"]


# 11 --------------------------------------------------------------------------------------
def test_an_npz_of_object_arrays_is_named(tmp_path):
    images = np.empty(12, dtype=object)
    images[:] = [np.zeros((4, 4), np.uint8)] * 11 + [np.zeros((5, 5), np.uint8)]
    np.savez(tmp_path / "objects.npz", images=images, labels=np.zeros(12, np.int64))
    one_line_error(CliRunner().invoke(main, ["build-graph", str(tmp_path / "objects.npz"), "-o", str(tmp_path / "s"), "--encoder", "pixels"]),
                   "images is an array of Python objects")


@pytest.mark.parametrize("edit, text", [(lambda m: m.update(format_version=1), "says format version 1"),
                                        (lambda m: m.pop("archive"), "does not list the archive's splits"),
                                        # found by the property suite: a section of the wrong type
                                        (lambda m: m["tables"].update(dendrogram=None), "lists no fragments for its tables"),
                                        (lambda m: m["communities"].update(cnm=None), "malformed communities section")])
def test_an_edited_manifest_is_named_by_verify_and_queries(test_last, tmp_path, edit, text):
    copy = tmp_path / "copy"
    shutil.copytree(test_last.path, copy)
    path = sorted((copy / "_versions").glob("*.json"))[-1]
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    checked = CliRunner().invoke(main, ["verify", str(copy)])
    assert checked.exit_code == 1 and text in checked.output
    one_line_error(CliRunner().invoke(main, ["query", str(copy), "--id", "0"]), text)


def test_string_arrays_are_ids_or_named_as_not_codes(test_last, tmp_path):
    assert test_last.search(np.array(["0", "1"]), k=3, mode="flat").rows.shape == (2, 3)  # an array of ids
    with pytest.raises(GraphretError, match="must be real numbers, got <U"):
        test_last.search(np.array([["a", "b"]]), k=3)
    with pytest.raises(GraphretError, match="must be real numbers"):
        graphret.build_from_codes(np.array([["0.1", "0.2"]] * 5), tmp_path / "s", k=2)
    with pytest.raises(GraphretError, match="rows of one length"):
        graphret.build_from_codes([[0.1, 0.2], [0.3]], tmp_path / "s", k=1)
    with pytest.raises(GraphretError, match="go up to 1000000000 for 5 codes"):
        graphret.build_from_codes(unit(np.ones((5, 2))), tmp_path / "s", labels=[0, 0, 1, 1, 10**9], k=2)
    assert not (tmp_path / "s").exists()


# 12 --------------------------------------------------------------------------------------
def test_nan_and_inf_pixels_read_without_warnings_and_a_blank_image_is_named(tmp_path):
    import warnings

    import nibabel as nib

    from graphret.data.config import SourceConfig

    rng = np.random.default_rng(0)
    images = rng.random((12, 8, 8)).astype(np.float32) * 1000
    images[0, 0, 0], images[1, 2, 2], images[2, 1, 1] = np.nan, np.inf, -np.inf
    np.savez(tmp_path / "nan.npz", images=images)
    volume = rng.random((8, 8, 6)) * 1000
    volume[0, 0, 0], volume[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "nan.nii.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        npz = SourceConfig().open(str(tmp_path / "nan.npz"))
        assert npz.image(1)[2, 2] == 255 and npz.image(2)[1, 1] == 0 and npz.image(0)[0, 0] == 0
        nifti = SourceConfig().open(str(tmp_path / "nan.nii.gz"))
        assert len(nifti) == 6 and max(int(nifti.image(i).max()) for i in range(6)) == 255
    images[3] = np.inf
    np.savez(tmp_path / "inf.npz", images=images)
    one_line_error(CliRunner().invoke(main, ["build-graph", str(tmp_path / "inf.npz"), "-o", str(tmp_path / "s"), "--encoder", "pixels"]),
                   "images[3] has no finite pixel values")
    nib.save(nib.Nifti1Image(np.full((8, 8, 6), np.inf), np.eye(4)), tmp_path / "inf.nii.gz")
    one_line_error(CliRunner().invoke(main, ["build-graph", str(tmp_path / "inf.nii.gz"), "-o", str(tmp_path / "s"), "--encoder", "pixels"]),
                   "has no finite voxel values")


# 13 --------------------------------------------------------------------------------------
def test_uploads_of_an_add_that_never_committed_are_removed(blob_store, tmp_path, monkeypatch):
    import os
    import time

    from fastapi.testclient import TestClient

    from graphret.serve import ServeConfig, create_app
    from tests.serving import png_bytes

    copy = tmp_path / "copy"
    shutil.copytree(blob_store.path, copy)
    config = ServeConfig(write_token="t0ken")
    auth = {"Authorization": "Bearer t0ken"}
    png = png_bytes(np.random.default_rng(0).integers(0, 255, (16, 16), dtype=np.uint8))
    with TestClient(create_app(copy, config)) as client:
        assert client.post("/add", files={"files": ("a.png", png, "image/png")}, headers=auth).status_code == 200
        def full_disk(*args, **kwargs):
            raise StoreError("cannot write to the store: No space left on device")

        monkeypatch.setattr("graphret.serve.routes.add.add_to_store", full_disk)
        failed = client.post("/add", files={"files": ("b.png", png, "image/png")}, headers=auth)
        assert failed.status_code >= 400
    uploads = copy / "uploads"
    (kept,) = list(uploads.iterdir())  # the failed add's folder went at once
    killed, running = uploads / "20260101T000000-deadbeef", uploads / "20260101T000001-cafecafe"
    for folder in (killed, running):
        folder.mkdir()
        (folder / "c.png").write_bytes(png)
    old = time.time() - 7200
    os.utime(killed, (old, old))
    os.utime(kept, (old, old))
    create_app(copy, config)
    assert sorted(p.name for p in uploads.iterdir()) == sorted([kept.name, running.name])


# 14 --------------------------------------------------------------------------------------
def test_a_text_file_named_dcm_is_not_dicom(tmp_path):
    (tmp_path / "notes.dcm").write_text("hello, this is a text file\nnot a scan\n")
    result = CliRunner().invoke(main, ["build-graph", str(tmp_path / "notes.dcm"), "-o", str(tmp_path / "s"), "--encoder", "pixels"])
    one_line_error(result, "is not a DICOM file")
    assert "unknown class" not in result.output


def test_an_all_missing_csv_names_a_fix_the_cli_has(tmp_path):
    (tmp_path / "list.csv").write_text("path,label\nx.png,a\ny.png,b\n")
    result = CliRunner().invoke(main, ["build-graph", str(tmp_path / "list.csv"), "-o", str(tmp_path / "s"), "--encoder", "pixels"])
    one_line_error(result, "none of the 2 images listed")
    assert "CsvOptions" not in result.output and "write them relative to it, or as absolute paths" in result.output


# found by the property suite (tests/test_contract_properties.py) -----------------------------
@pytest.mark.parametrize("option, value", [("--image-size", "1000000"), ("--dim", "100000"), ("--batch-size", "10000000")])
def test_encoder_sizes_are_bounded_before_anything_is_allocated(tmp_path, option, value):
    one_line_error(CliRunner().invoke(main, ["train", "demo:n=30,size=16", "-o", str(tmp_path / "e.pt"), "--encoder", "pixels", option, value]),
                   "must be at most")


def test_community_methods_of_the_wrong_type_are_named(test_last):
    with pytest.raises(GraphretError, match="must be community method names"):
        test_last.communities(3)
