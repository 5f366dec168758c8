"""Uploaded images: checked, decoded and turned into an :class:`~graphret.data.imageset.ImageSet`.

An upload must be an image: PNG, JPEG, TIFF, BMP, GIF or WebP that Pillow decodes, or a DICOM
file (the ``DICM`` marker after the 128-byte preamble) that graphret's DICOM reader decodes
with the store's defaults (the file's window, every frame).  Anything else is an
:class:`UploadError` (HTTP 415); an image larger than ``max_pixels`` (a DICOM file with frames
that large, or more than :data:`MAX_FRAMES` of them) is refused before it is decoded (413).  Query uploads are decoded in memory (DICOM through a temporary file that is removed at
once); uploads to add are kept as files under the uploads folder, so the stored paths stay valid.
"""

from __future__ import annotations

import io
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from graphret.data.config import SourceConfig
from graphret.data.imageset import ImageSet
from graphret.data.pictures import pil_to_array
from graphret.errors import GraphretError, InputError

__all__ = ["MAX_FRAMES", "Upload", "UploadError", "TooLarge", "decode_upload", "query_images", "saved_images", "safe_name",
           "batch_of", "remove_orphan_batches"]

#: most frames one uploaded DICOM file may hold
MAX_FRAMES = 64
PIL_FORMATS = frozenset({"PNG", "JPEG", "MPO", "TIFF", "BMP", "GIF", "WEBP"})
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "TIFF": ".tif", "BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp"}


class UploadError(InputError):
    """An upload that is not an image graphret can read (HTTP 415)."""


class TooLarge(InputError):
    """An upload over the size or pixel limit (HTTP 413)."""


@dataclass
class Upload:
    """One uploaded file: the name the client gave and its bytes."""

    name: str
    data: bytes


def safe_name(name: str | None, fallback: str = "image") -> str:
    """The upload's base name reduced to letters, digits, ``.``, ``-`` and ``_`` (never a path,
    never hidden)."""
    base = re.split(r"[\\/]", name or "")[-1]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._")
    return clean[:100] or fallback


def is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def _pil_pixels(upload: Upload, max_pixels: int) -> np.ndarray:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(upload.data)) as image:
            if image.format not in PIL_FORMATS:
                raise UploadError(f"{upload.name} is a {image.format} image; upload PNG, JPEG, TIFF, BMP, GIF, WebP or DICOM")
            width, height = image.size
            if width * height > max_pixels:
                raise TooLarge(f"{upload.name} is {width}x{height} pixels, over the server's limit of {max_pixels}")
            image.load()
            if image.format == "JPEG":
                image = ImageOps.exif_transpose(image)
            return pil_to_array(image)
    except GraphretError:
        raise
    except Image.DecompressionBombError:  # Pillow's own bound, met before the header's size is checked
        raise TooLarge(f"{upload.name} is over {2 * Image.MAX_IMAGE_PIXELS} pixels, over the server's limit of {max_pixels}; "
                       "upload a smaller image") from None
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds for data that is not an image
        raise UploadError(f"{upload.name} is not an image graphret can read ({type(error).__name__}); "
                          "upload PNG, JPEG, TIFF, BMP, GIF, WebP or DICOM") from None


def _check_dicom_size(path: Path, name: str, max_pixels: int) -> None:
    """Refuse, from the header alone, frames over ``max_pixels`` or more than :data:`MAX_FRAMES`."""
    from graphret.data.dicom_files import frame_count, read_header

    try:
        header = read_header(path)
        rows, columns = int(header.get("Rows", 0) or 0), int(header.get("Columns", 0) or 0)
        frames = frame_count(header)
    except Exception:  # noqa: BLE001 - an unreadable header is the reader's to report
        return
    if rows * columns > max_pixels:
        raise TooLarge(f"{name} has {columns}x{rows} pixel frames, over the server's limit of {max_pixels}")
    if frames > MAX_FRAMES:
        raise TooLarge(f"{name} has {frames} frames; upload at most {MAX_FRAMES} frames per file")


def _dicom_images(path: Path, name: str) -> ImageSet:
    try:
        images = SourceConfig(split=False, on_corrupt="error").open(str(path))
    except GraphretError as error:
        raise UploadError(f"{name} is a DICOM file graphret cannot read: {error}") from None
    if len(images) == 0:
        raise UploadError(f"{name} is a DICOM file without an image")
    return images


def decode_upload(upload: Upload, *, max_pixels: int) -> list[np.ndarray]:
    """The pixels of an uploaded image (one array; one per frame for multi-frame DICOM)."""
    if not upload.data:
        raise UploadError(f"{upload.name or 'the upload'} is empty; upload an image file")
    if not is_dicom(upload.data):
        return [_pil_pixels(upload, max_pixels)]
    with tempfile.TemporaryDirectory(prefix="graphret-upload-") as folder:
        path = Path(folder) / "upload.dcm"
        path.write_bytes(upload.data)
        _check_dicom_size(path, upload.name, max_pixels)
        images = _dicom_images(path, upload.name)
        return [np.asarray(images.image(i)) for i in range(len(images))]


def query_images(uploads: list[Upload], *, max_pixels: int) -> ImageSet:
    """Uploaded query images as an in-memory ImageSet (paths: the names the client gave)."""
    pixels: list[np.ndarray] = []
    names: list[str] = []
    for upload in uploads:
        frames = decode_upload(upload, max_pixels=max_pixels)
        pixels.extend(frames)
        names.extend([upload.name] if len(frames) == 1 else [f"{upload.name}#{i}" for i in range(len(frames))])
    return ImageSet(ids=names, paths=names, splits=np.array(["all"] * len(names), dtype=object), labels=None, class_names=[],
                    task="unlabelled", source="uploaded images", read=lambda i: pixels[i], split_origin="none")


def _batch_folder(root: Path) -> tuple[Path, str]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
    folder = root / stamp
    folder.mkdir(parents=True, exist_ok=False)
    return folder, stamp


def saved_images(uploads: list[Upload], root: Path, *, max_pixels: int, split: str = "train",
                 label: str | None = None, class_names: list[str] | None = None) -> ImageSet:
    """Uploaded images to add: each checked to decode, then kept under a new folder of ``root``
    (named by time and a random suffix); ids ``upload/<folder>/<name>`` (``#<frame>`` for
    DICOM frames).  ``label`` (a class of the store, ``class_names``) labels them all."""
    decoded = [(upload, decode_upload(upload, max_pixels=max_pixels)) for upload in uploads]  # refuse before writing
    folder, stamp = _batch_folder(root)
    ids: list[str] = []
    paths: list[str] = []
    frames: list[tuple[Path, int]] = []  # (saved file, frame) of each item
    used: set[str] = set()
    for upload, pixels in decoded:
        name = safe_name(upload.name)
        suffix = ".dcm" if is_dicom(upload.data) else ""
        stem = name if suffix == "" or name.lower().endswith(suffix) else name + suffix
        while stem in used:
            stem = f"{len(used)}-{stem}"
        used.add(stem)
        path = folder / stem
        path.write_bytes(upload.data)
        for i in range(len(pixels)):
            ids.append(f"upload/{stamp}/{stem}" + (f"#{i}" if len(pixels) > 1 else ""))
            paths.append(str(path))
            frames.append((path, i))
    cache: dict[Path, list[np.ndarray]] = {}

    def read(i: int) -> np.ndarray:
        path, frame = frames[i]
        if path not in cache:
            cache.clear()
            cache[path] = decode_upload(Upload(path.name, path.read_bytes()), max_pixels=max_pixels)
        return cache[path][frame]

    labels = None
    names: list[str] = []
    task = "unlabelled"
    if label is not None:
        names = list(class_names or [])
        labels = np.full(len(ids), names.index(label), np.int64)
        task = "multiclass"
    return ImageSet(ids=ids, paths=paths, splits=np.array([split] * len(ids), dtype=object), labels=labels, class_names=names,
                    task=task, source=f"uploaded images ({folder})", read=read, split_origin="source")


def batch_of(item_id: str) -> str | None:
    """The batch folder an uploaded item's id names (``upload/<batch>/<name>``), else None."""
    parts = item_id.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "upload" else None


def remove_orphan_batches(root: Path, committed: set[str], *, grace: float, now: float | None = None) -> int:
    """Remove the batch folders under ``root`` that no committed item comes from (``committed``:
    their names) once older than ``grace`` seconds (an add still running keeps its folder): the
    uploads of an add killed before its commit.  Returns how many went."""
    root = Path(root)
    if not root.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for folder in root.iterdir():
        try:
            stale = folder.is_dir() and folder.name not in committed and now - folder.stat().st_mtime >= grace
        except OSError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
