"""Uploaded files: only images that decode, within the pixel limit, kept under safe names."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graphret.serve.uploads import TooLarge, Upload, UploadError, decode_upload, query_images, safe_name, saved_images
from tests.serving import png_bytes


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("name, safe", [("../../etc/passwd", "passwd"), ("C:\\x\\scan 01.png", "scan_01.png"),
                                        (".hidden.png", "hidden.png"), ("", "image"), ("..", "image"),
                                        ("a/b/ünïcode name.jpg", "n_code_name.jpg")])
def test_safe_names_are_base_names_without_odd_characters(name, safe):
    assert safe_name(name) == safe


def test_images_decode_as_uint8_pixels():
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    assert np.array_equal(decode_upload(Upload("g.png", png_bytes(grey)), max_pixels=100)[0], grey)
    rgb = np.zeros((5, 4, 3), np.uint8)
    rgb[..., 0] = 200
    for fmt in ("GIF", "BMP", "TIFF"):
        (pixels,) = decode_upload(Upload("c", encoded(rgb, fmt)), max_pixels=100)
        assert pixels.shape[:2] == (5, 4)


def test_what_is_not_an_image_is_refused():
    with pytest.raises(UploadError, match="notes.txt is not an image"):
        decode_upload(Upload("notes.txt", b"plain text"), max_pixels=100)
    with pytest.raises(UploadError, match="empty"):
        decode_upload(Upload("e.png", b""), max_pixels=100)
    whole = png_bytes(np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8))
    truncated = whole[: len(whole) // 2]
    with pytest.raises(UploadError):
        decode_upload(Upload("t.png", truncated), max_pixels=10_000)
    with pytest.raises(UploadError, match="PDF|not an image"):
        decode_upload(Upload("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n"), max_pixels=100)


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    with pytest.raises(TooLarge, match="40x30 pixels"):
        decode_upload(Upload("big.png", png_bytes(np.zeros((30, 40), np.uint8))), max_pixels=1000)


def test_dicom_uploads_decode_and_are_checked_from_their_header():
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    (pixels,) = decode_upload(Upload("ct.dcm", data), max_pixels=20_000)
    assert pixels.shape == (128, 128) and pixels.dtype == np.uint8
    with pytest.raises(TooLarge, match="128x128"):
        decode_upload(Upload("ct.dcm", data), max_pixels=10_000)


def test_query_images_keep_the_names_the_client_gave():
    images = query_images([Upload("a.png", png_bytes(np.zeros((4, 4), np.uint8))),
                           Upload("b.png", png_bytes(np.ones((4, 4), np.uint8)))], max_pixels=100)
    assert images.paths == ["a.png", "b.png"] and images.image(1).max() == 1


def test_saved_images_stay_inside_their_folder_with_distinct_ids(tmp_path):
    uploads = [Upload("../../x.png", png_bytes(np.zeros((4, 4), np.uint8))), Upload("x.png", png_bytes(np.ones((4, 4), np.uint8)))]
    images = saved_images(uploads, tmp_path / "uploads", max_pixels=100, label="b", class_names=["a", "b"])
    assert len(set(images.ids)) == 2 and all(i.startswith("upload/") for i in images.ids)
    files = sorted((tmp_path / "uploads").rglob("*.png"))
    assert len(files) == 2 and all(tmp_path / "uploads" in f.parents for f in files)
    assert list(tmp_path.glob("*.png")) == [] and images.labels.tolist() == [1, 1] and images.task == "multiclass"
    assert images.image(1).max() == 1
    with pytest.raises(UploadError):  # one bad file: nothing is written
        saved_images([uploads[0], Upload("bad.png", b"nope")], tmp_path / "other", max_pixels=100)
    assert not (tmp_path / "other").exists()
