"""Query images given as DICOM files or NIfTI volumes: ``store.search("scan.dcm")`` and
``graphret query STORE --image scan.dcm``, on the test files pydicom and pydicom-data ship.

Each query is checked against an independent path to the same codes: the data layer's source
for the file (``open_source``), encoded with the store's encoder and searched as codes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

import graphret  # noqa: E402
from graphret.data import open_source  # noqa: E402
from graphret.data.medical import MedicalOptions  # noqa: E402
from graphret.data.files import image_files  # noqa: E402
from graphret.data.problems import UnreadableFile  # noqa: E402
from graphret.errors import InputError  # noqa: E402
from graphret.query.queries import medical_options  # noqa: E402


def dicom_file(name: str) -> Path:
    """A test file shipped by pydicom or pydicom-data (never downloaded); skip when absent."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pip install pydicom-data)")
    return Path(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return graphret.build("demo:n=300,size=32", tmp_path_factory.mktemp("qmed") / "store", encoder="pixels", k=5,
                          communities=("leiden",))


@pytest.fixture(scope="module")
def lung_store(tmp_path_factory):
    """A store whose build recorded window="lung": DICOM queries are read with that window."""
    return graphret.build("demo:n=300,size=32", tmp_path_factory.mktemp("qmed") / "lung", encoder="pixels", k=5,
                          communities=("leiden",), window="lung")


def copy_of(tmp_path: Path, name: str, as_name: str | None = None) -> Path:
    target = tmp_path / (as_name or name)
    shutil.copy(dicom_file(name), target)
    return target


def same_as_codes(store, query_path: Path, result, **medical) -> None:
    """``result`` equals a flat search with the codes of the data layer's own reading of
    ``query_path`` (``open_source``), encoded by the store's encoder."""
    items = open_source(str(query_path), split=False, medical=MedicalOptions(**medical))
    codes = store.snapshot.encoder().encode(items).spaces["default"]
    expected = store.search(codes, k=result.k, mode="flat")
    assert np.array_equal(result.rows, expected.rows)
    assert np.allclose(result.scores, expected.scores, atol=1e-6)


def test_search_with_a_ct_dicom_file(store, tmp_path):
    scan = copy_of(tmp_path, "CT_small.dcm", "scan.dcm")
    result = store.search(str(scan), k=7, mode="flat")
    assert result.rows.shape == (1, 7) and len(set(result.rows[0])) == 7
    assert result.queries.paths == [str(scan)] and result.queries.ids == [None]
    assert np.all(np.diff(result.scores[0]) <= 1e-7)  # best first
    same_as_codes(store, scan, result)
    # the query image is the file's pixels as the data layer reads them (the file's window)
    picture = image_files([scan]).image(0)
    assert picture.dtype == np.uint8 and picture.shape == (128, 128)
    assert np.array_equal(picture, open_source(str(scan), split=False).image(0))
    frame = result.to_pandas()
    assert len(frame) == 7 and set(frame["rank"]) == set(range(1, 8))


def test_multi_frame_dicom_is_one_query_per_frame(store, tmp_path):
    scan = copy_of(tmp_path, "emri_small.dcm")
    result = store.search(str(scan), k=4, mode="flat")
    assert result.rows.shape == (10, 4)
    images = image_files([scan])
    assert images.ids == [f"{scan}#f{f}" for f in range(10)]
    assert not np.array_equal(images.image(0), images.image(9))
    same_as_codes(store, scan, result)


def test_extensionless_dicom_in_a_folder_and_a_png_beside_it(store, tmp_path):
    from PIL import Image

    folder = tmp_path / "queries"
    folder.mkdir()
    shutil.copy(dicom_file("MR_small.dcm"), folder / "IM0001")  # no extension: found by its DICM prefix
    Image.fromarray(np.arange(30 * 40, dtype=np.uint32).reshape(30, 40).astype(np.uint8)).save(folder / "a.png")
    (folder / "notes.txt").write_text("not an image")
    images = image_files([folder])
    assert images.ids == [str(folder / "IM0001"), str(folder / "a.png")]
    result = store.search(str(folder), k=3, mode="flat")
    assert result.rows.shape == (2, 3)


def test_nifti_volume_is_one_query_per_slice(store, tmp_path):
    data = np.linspace(-1000, 1000, 12 * 10 * 3, dtype=np.float32).reshape(12, 10, 3)
    volume = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), volume)
    result = store.search(str(volume), k=5, mode="flat")
    assert result.rows.shape == (3, 5)
    assert image_files([volume]).ids == [f"{volume}#s{s:03d}" for s in range(3)]
    same_as_codes(store, volume, result)


def test_queries_use_the_window_the_store_was_built_with(store, lung_store, tmp_path):
    scan = copy_of(tmp_path, "CT_small.dcm", "scan.dcm")
    assert medical_options(store.snapshot).window == "file"
    assert medical_options(lung_store.snapshot).window == "lung"
    lung = image_files([scan], medical_options(lung_store.snapshot)).image(0)
    assert np.array_equal(lung, open_source(str(scan), split=False, medical=MedicalOptions(window="lung")).image(0))
    assert not np.array_equal(lung, image_files([scan]).image(0))
    same_as_codes(lung_store, scan, lung_store.search(str(scan), k=5, mode="flat"), window="lung")


@pytest.mark.parametrize(
    "name, what",
    [
        ("MR_truncated.dcm", "corrupt or truncated DICOM pixel data in"),
        ("test-SR.dcm", "has no pixel data (it is"),
        ("JPGExtended.dcm", "needs python-gdcm"),
    ],
)
def test_an_unusable_dicom_query_is_one_clear_error(store, tmp_path, name, what):
    scan = copy_of(tmp_path, name)
    with pytest.raises(UnreadableFile) as e:
        store.search(str(scan), k=3)
    message = str(e.value)
    assert message.startswith("bad query image: ") and what in message and str(scan) in message
    assert "\n" not in message and "on_corrupt" not in message and e.value.params() == []


def test_garbage_query_files_are_one_clear_error(store, tmp_path):
    fake = tmp_path / "fake.dcm"
    fake.write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 4)
    broken_png = tmp_path / "cut.png"
    from PIL import Image

    Image.fromarray(np.zeros((20, 20), np.uint8)).save(broken_png)
    broken_png.write_bytes(broken_png.read_bytes()[:40])
    text = tmp_path / "scan.txt"
    text.write_text("hello")
    cut_volume = tmp_path / "cut.nii.gz"
    cut_volume.write_bytes(b"\x1f\x8b" + b"\0" * 30)
    for bad, what in [(fake, "fake.dcm"), (broken_png, "corrupt image: "), (text, "is not an image file graphret reads"),
                      (cut_volume, "cannot read NIfTI file")]:
        with pytest.raises(InputError) as e:
            store.search(str(bad), k=3)
        message = str(e.value)
        assert message.startswith("bad query image: ") and what in message, message
        assert "\n" not in message and "on_corrupt" not in message


def test_cli_query_with_a_dicom_image(store, tmp_path):
    from graphret.cli.main import main

    scan = copy_of(tmp_path, "CT_small.dcm", "scan.dcm")
    result = CliRunner().invoke(main, ["query", str(store.path), "--image", str(scan), "--k", "4", "--mode", "flat",
                                       "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert len(payload["queries"]) == 1 and payload["queries"][0]["query"]["path"] == str(scan)
    hits = payload["queries"][0]["results"]
    expected = store.search(str(scan), k=4, mode="flat")
    assert [h["id"] for h in hits] == [str(i) for i in expected.ids[0]]

    bad = copy_of(tmp_path, "MR_truncated.dcm")
    failed = CliRunner().invoke(main, ["query", str(store.path), "--image", str(bad), "--k", "4"])
    lines = [line for line in failed.output.splitlines() if line.strip()]
    assert failed.exit_code != 0 and isinstance(failed.exception, SystemExit)
    assert len(lines) == 1 and lines[0].startswith("Error: bad query image: corrupt or truncated DICOM pixel data")
