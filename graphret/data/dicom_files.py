"""DICOM files: recognising them, checking their pixel data, reading one frame.

A file is DICOM when its name ends in ``.dcm`` / ``.dicom`` / ``.dic`` (any case), or when it
has no extension and holds the ``DICM`` prefix after the 128-byte preamble (PS3.10 7.1), as
files from a CD's DICOMDIR tree do.  Objects without pixel data (structured reports, DICOMDIR
media directories, RT plans ...) have no image to read.

Compressed transfer syntaxes (PS3.5 A.4) are decoded by pydicom's plugins: JPEG baseline and
extended (8-bit) through Pillow or python-gdcm, JPEG lossless (process 14) and JPEG-LS through
python-gdcm, JPEG 2000 and HTJ2K through pylibjpeg-openjpeg, RLE through pylibjpeg-rle (or
pydicom's own decoder).  All are permissively licensed; the GPL plugin pylibjpeg-libjpeg is
not used, so 12-bit JPEG Extended files cannot be read (:data:`DECODERS` says which package
decodes what, and :func:`decode_failure` names it in the error).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphret.data.dicom_pixels import Window, frame_to_uint8
from graphret.data.problems import Problem

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic"})

#: Transfer syntax UID -> the packages that decode it (what an error message suggests).
DECODERS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "Pillow or python-gdcm",
    "1.2.840.10008.1.2.4.51": "python-gdcm (8-bit; 12-bit needs the GPL plugin pylibjpeg-libjpeg, which graphret does not use)",
    "1.2.840.10008.1.2.4.57": "python-gdcm",
    "1.2.840.10008.1.2.4.70": "python-gdcm",
    "1.2.840.10008.1.2.4.80": "python-gdcm or pyjpegls",
    "1.2.840.10008.1.2.4.81": "python-gdcm or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg with pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg with pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg with pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg with pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg with pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.5": "pylibjpeg with pylibjpeg-rle",
}


def has_dicom_prefix(path: str | Path) -> bool:
    """True when the file holds "DICM" at byte 128 (PS3.10 7.1)."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def is_dicom_path(path: str | Path) -> bool:
    """A DICOM file by name (``.dcm``, ``.dicom``, ``.dic``) or, without an extension, by its
    DICM prefix."""
    name = os.path.basename(str(path))
    suffix = os.path.splitext(name)[1].lower()
    if suffix in DICOM_SUFFIXES:
        return True
    if suffix == "" and not name.startswith("."):
        return has_dicom_prefix(path)
    return False


def read_header(path: str | Path) -> Any:
    """The header (every element before the pixel data) of a DICOM file.  A file without the
    ``DICM`` marker is read as a headerless DICOM object only when it holds elements the DICOM
    dictionary knows; anything else (a text file named ``.dcm``) is :class:`NotDicom`."""
    import warnings

    import pydicom
    from pydicom.datadict import dictionary_has_tag

    if has_dicom_prefix(path):
        return pydicom.dcmread(str(path), stop_before_pixels=True)
    with warnings.catch_warnings():  # forced reads of non-DICOM bytes warn about every made-up element
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        if not any(dictionary_has_tag(tag) for tag in ds.keys()):
            raise NotDicom(f"{path} is not a DICOM file (no DICM marker and no DICOM elements)")
    return ds


class NotDicom(ValueError):
    """A file named like DICOM whose bytes are not DICOM."""


def transfer_syntax(ds: Any) -> tuple[str, str]:
    """(UID, name) of a header's transfer syntax; ("", "unknown") when it has none."""
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        return "", "unknown"
    return str(uid), getattr(uid, "name", str(uid))


def has_pixels(path: str | Path) -> bool:
    """True when the file has a Pixel Data, Float Pixel Data or Double Float Pixel Data element."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), defer_size=64, force=not has_dicom_prefix(path))
    except Exception:  # noqa: BLE001 - the caller reports an unreadable file
        return False
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def object_kind(ds: Any) -> str:
    """What a DICOM object is, for messages: its SOP class name (e.g. "Comprehensive SR
    Storage", "Media Storage Directory Storage" for a DICOMDIR)."""
    uid = ds.get("SOPClassUID")
    meta = getattr(ds, "file_meta", None)
    if uid is None and meta is not None:
        uid = meta.get("MediaStorageSOPClassUID")
    return getattr(uid, "name", str(uid)) if uid is not None else "an object of unknown class"


def frame_count(ds: Any) -> int:
    """Frames in the pixel data (NumberOfFrames, 1 when absent)."""
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


SKIP_NO_PIXELS = "DICOM files without pixel data"
SKIP_UNDECODABLE = "DICOM files that cannot be decoded"
SKIP_UNREADABLE = "unreadable DICOM files"


def decode_failure(path: str | Path, ds: Any, error: BaseException) -> Problem:
    """The Problem for a frame that failed to decode: names the transfer syntax and the package
    that decodes it, or calls the data truncated / corrupt."""
    uid, name = transfer_syntax(ds)
    text = str(error).strip().splitlines()
    detail = " ".join(t.strip() for t in text)[:200] if text else type(error).__name__
    compressed = uid in DECODERS
    low = detail.lower()
    # pydicom: "... all plugins are missing dependencies" (no decoder installed) or
    # "... does not support ..." (installed decoders cannot do this variant)
    missing = isinstance(error, (RuntimeError, NotImplementedError)) and (
        "missing dependencies" in low or "not support" in low or "no pixel data handler" in low
    )
    if compressed and missing:
        return Problem(
            SKIP_UNDECODABLE,
            f"cannot decode {path}: transfer syntax {name} ({uid}) needs {DECODERS[uid]} ({detail})",
            "install the decoder or convert the file",
        )
    if uid and not compressed and uid not in _NATIVE and missing:
        return Problem(
            SKIP_UNDECODABLE,
            f"cannot decode {path}: graphret has no decoder for transfer syntax {name} ({uid})",
            "convert the file to an image transfer syntax",
        )
    return Problem(
        SKIP_UNREADABLE,
        f"corrupt or truncated DICOM pixel data in {path} (transfer syntax {name}: {detail})",
        "replace the file",
    )


_NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})


def no_pixels(path: str | Path, ds: Any) -> Problem:
    return Problem(SKIP_NO_PIXELS, f"{path} has no pixel data (it is {object_kind(ds)})", "give image files")


def decode_frame(path: str | Path, frame: int, *, header: Any = None) -> tuple[np.ndarray, Any]:
    """Decode frame ``frame`` of ``path``: (stored values, with YBR converted to RGB, the
    header).  pydicom's frame reader reads only that frame's data; where it cannot (see
    :func:`whole_dataset_frame`) the whole dataset is decoded instead, and when that fails too
    the frame reader's error is raised."""
    from pydicom.pixels import pixel_array

    ds = header if header is not None else read_header(path)
    try:
        arr = pixel_array(str(path), index=int(frame))
    except Exception as error:  # noqa: BLE001 - decoders raise many kinds
        try:
            arr = whole_dataset_frame(path, frame)
        except Exception:  # noqa: BLE001 - the first error says more
            raise error from None
    return arr, ds


def whole_dataset_frame(path: str | Path, frame: int) -> np.ndarray:
    """Frame ``frame`` decoded through the whole dataset (``Dataset.pixel_array``), which takes
    what pydicom's frame reader does not: the Deflated Explicit VR Little Endian transfer syntax
    (PS3.5 A.5), encapsulated data with a malformed Basic Offset Table, and files without file
    meta information (no Transfer Syntax UID), whose transfer syntax is inferred from how the
    dataset is encoded (implicit or explicit VR, little or big endian)."""
    import pydicom
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    ds = pydicom.dcmread(str(path), force=True)
    if ds.file_meta.get("TransferSyntaxUID") is None:
        implicit, little = ds.original_encoding
        if implicit is None or little is None:
            raise ValueError("no Transfer Syntax UID and no known encoding")
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    arr = ds.pixel_array
    return arr[int(frame)] if frame_count(ds) > 1 else arr


def read_frame(path: str | Path, frame: int, window: Window, *, header: Any = None) -> np.ndarray:
    """Frame ``frame`` of a DICOM file as uint8 (H, W) or (H, W, 3), as a viewer shows it."""
    arr, ds = decode_frame(path, frame, header=header)
    return frame_to_uint8(arr, ds, frame, window)


@dataclass
class FileInfo:
    """What a scan learns about one DICOM file: its header, frame count, or the problem."""

    header: Any = None
    frames: int = 0
    problem: Problem | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def inspect_file(path: str | Path, *, window: Window, verify: bool = True) -> FileInfo:
    """Read a DICOM file's header and check it has pixels that decode (the first and last
    frame, when ``verify``)."""
    try:
        ds = read_header(path)
    except NotDicom as error:
        return FileInfo(problem=Problem(SKIP_UNREADABLE, str(error), "replace it or give it the right extension"))
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for bad files
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        return FileInfo(problem=Problem(SKIP_UNREADABLE, f"cannot read DICOM file {path} ({first})", "replace it"))
    if not has_pixels(path):
        return FileInfo(header=ds, problem=no_pixels(path, ds))
    n = frame_count(ds)
    if verify:
        for frame in sorted({0, n - 1}):
            try:
                read_frame(path, frame, window, header=ds)
            except Exception as error:  # noqa: BLE001 - decoders raise many kinds
                return FileInfo(header=ds, frames=n, problem=decode_failure(path, ds, error))
    return FileInfo(header=ds, frames=n)
