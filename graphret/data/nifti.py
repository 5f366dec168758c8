"""NIfTI volumes (``.nii``, ``.nii.gz``) read with nibabel: one item per slice.

A 3-D volume becomes its 2-D slices along ``slice_axis`` (0, 1 or 2, an axis of the stored
array; 2 is the axial axis of most scanner exports), every ``slice_step``-th slice.  A 2-D
image is one slice; a 4-D volume (fMRI, DWI: a time or direction axis) is refused unless its
extra axes have length 1.  Every slice's group is its volume file, so that a volume never
straddles a train/test split.

Values: nibabel applies the header's ``scl_slope`` / ``scl_inter`` (NIfTI-1 header fields, the
analogue of DICOM's modality LUT).  The 8-bit mapping is the same for every slice of a volume,
chosen by the window (:class:`graphret.data.dicom_pixels.Window`): ``"file"`` takes the header's
display range ``cal_min`` / ``cal_max`` when set, else the volume's minimum to maximum;
``"range"`` the volume's minimum to maximum; a preset or centre/width values the linear VOI
function of DICOM PS3.3 C.11.2.1.2.1 (presets are in HU, for CT volumes).  A slice is shown
rotated by 90 degrees (``np.rot90``), the usual display of an array stored x-first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graphret.data.dicom_pixels import Window, voi_linear
from graphret.data.problems import Problem, UnreadableFile
from graphret.data.transforms import finite_range, span_to_255

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SKIP_BAD_VOLUME = "NIfTI files that cannot be read"
SKIP_NIFTI_4D = "NIfTI volumes with 4 or more dimensions"


def is_nifti_path(path: str | Path) -> bool:
    """A ``.nii`` or ``.nii.gz`` file name (any case)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def strip_nifti_suffix(name: str) -> str:
    low = name.lower()
    for suffix in (".nii.gz", ".nii"):
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class VolumeInfo:
    """One volume: its 3-D shape (a 2-D image gets a last axis of 1), the slices taken along
    the axis, and the value range (lo, hi) mapped to 0..255 (or the window)."""

    shape: tuple[int, int, int]
    slices: tuple[int, ...]
    lo: float
    hi: float


def _load(path: str | Path):
    import nibabel as nib

    try:
        return nib.load(str(path))
    except Exception as error:  # noqa: BLE001 - nibabel raises many kinds for bad files
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise Problem(SKIP_BAD_VOLUME, f"cannot read NIfTI file {path} ({first})", "replace it").error() from None


def volume_shape(path: str | Path, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The shape as 3-D: trailing axes of length 1 dropped, a 2-D image given a third axis of
    1; an :class:`~graphret.data.problems.UnreadableFile` error for 4 or more real dimensions."""
    dims = list(shape)
    while len(dims) > 3 and dims[-1] == 1:
        dims.pop()
    if len(dims) > 3:
        raise Problem(
            SKIP_NIFTI_4D,
            f"{path} is a {len(dims)}-D NIfTI volume {tuple(int(d) for d in shape)}; graphret reads 2-D and 3-D volumes",
            "split it into 3-D volumes first (e.g. nibabel's four_to_three)",
        ).error()
    if len(dims) == 2:
        dims.append(1)
    if len(dims) != 3:
        raise Problem(SKIP_BAD_VOLUME, f"{path} has {len(dims)} dimension(s) and a NIfTI image needs 2 or 3", "replace it").error()
    return (int(dims[0]), int(dims[1]), int(dims[2]))


def volume_data(img, shape3: tuple[int, int, int]) -> np.ndarray:
    """The whole volume as float32 (H, W, D)."""
    return np.asarray(img.get_fdata(dtype=np.float32)).reshape(shape3)


def inspect_volume(path: str | Path, *, axis: int, step: int, window: Window) -> VolumeInfo:
    """Read a volume once: its shape, the slice indices taken and the value range for 8 bits."""
    img = _load(path)
    shape3 = volume_shape(path, tuple(img.shape))
    try:
        data = volume_data(img, shape3)
    except UnreadableFile:
        raise
    except Exception as error:  # noqa: BLE001 - truncated gzip, short file ...
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        raise Problem(SKIP_BAD_VOLUME, f"cannot read the voxels of NIfTI file {path} ({first})", "replace it").error() from None
    span = finite_range(data)
    if span is None:
        raise Problem(SKIP_BAD_VOLUME, f"NIfTI file {path} has no finite voxel values (all NaN or infinite)", "replace it").error()
    lo, hi = span
    if window.mode == "file":
        cal_min, cal_max = float(img.header.get("cal_min", 0) or 0), float(img.header.get("cal_max", 0) or 0)
        if cal_max > cal_min:
            lo, hi = cal_min, cal_max
    slices = tuple(range(0, shape3[axis], step))
    return VolumeInfo(shape=shape3, slices=slices, lo=lo, hi=hi)


def slice_to_uint8(plane: np.ndarray, lo: float, hi: float, window: Window) -> np.ndarray:
    """A 2-D slice of values -> uint8, rotated for display."""
    x = np.asarray(plane, dtype=np.float64)
    if window.mode == "fixed":
        y = voi_linear(x, window.centre, window.width)  # type: ignore[arg-type]
    else:
        y = span_to_255(x, lo, hi)
    return np.ascontiguousarray(np.rot90(np.clip(np.rint(y), 0, 255).astype(np.uint8)))


class VolumeCache:
    """The last volume read, kept so that reading its slices in order loads it once."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.data: np.ndarray | None = None

    def get(self, path: str) -> np.ndarray:
        if self.path != path or self.data is None:
            img = _load(path)
            self.data = volume_data(img, volume_shape(path, tuple(img.shape)))
            self.path = path
        return self.data

    def __getstate__(self) -> dict:  # never pickle a volume into a worker
        return {"path": None, "data": None}

    def __setstate__(self, state: dict) -> None:
        self.path, self.data = None, None


def read_slice(path: str, axis: int, index: int, lo: float, hi: float, window: Window, cache: VolumeCache | None = None) -> np.ndarray:
    """Slice ``index`` along ``axis`` of a volume as uint8 (H, W)."""
    data = (cache or VolumeCache()).get(path)
    plane = np.take(data, int(index), axis=int(axis))
    return slice_to_uint8(plane, lo, hi, window)
