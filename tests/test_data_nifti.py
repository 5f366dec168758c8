"""NIfTI volumes as slices, on nibabel's shipped test volumes and small generated ones."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from graphret.data import open_source  # noqa: E402
from graphret.data.medical import MedicalOptions  # noqa: E402
from graphret.errors import InputError  # noqa: E402


def nib_file(name: str) -> Path:
    from nibabel.testing import data_path

    path = Path(data_path) / name
    if not path.exists():
        pytest.skip(f"nibabel test file {name} not installed")
    return path


def expected_slice(data: np.ndarray, axis: int, k: int, lo: float, hi: float) -> np.ndarray:
    plane = np.take(data, k, axis=axis).astype(np.float64)
    return np.rot90(np.rint(np.clip((plane - lo) * 255.0 / (hi - lo), 0, 255)).astype(np.uint8))


def test_volume_becomes_its_slices(tmp_path):
    src = nib_file("anatomical.nii")
    data = nib.load(src).get_fdata()
    assert data.shape == (33, 41, 25)
    s = open_source(str(src), split=False)
    assert len(s) == 25 and s.task == "unlabelled"
    assert s.ids[0] == "anatomical.nii#s000" and s.ids[-1] == "anatomical.nii#s024"
    assert list(s.metadata["slice"]) == list(range(25))
    lo, hi = data.min(), data.max()  # cal_min = cal_max = 0: the volume's range
    for k in (0, 12, 24):
        got = s.image(k)
        assert got.shape == (41, 33) and got.dtype == np.uint8
        assert np.abs(got.astype(int) - expected_slice(data, 2, k, lo, hi).astype(int)).max() <= 1
    assert set(s.groups) == {f"volume:{src.resolve()}"}


def test_axis_and_step(tmp_path):
    src = nib_file("anatomical.nii")
    s = open_source(str(src), split=False, medical=MedicalOptions(slice_axis=0, slice_step=4))
    assert len(s) == 9 and s.ids[1] == "anatomical.nii#s004"
    assert s.image(0).shape == (25, 41)
    for bad in ({"slice_axis": 3}, {"slice_step": 0}, {"slice_axis": True}):
        with pytest.raises(InputError) as e:
            open_source(str(src), medical=MedicalOptions(**bad))
        assert e.value.param in ("slice_axis", "slice_step")


def test_header_display_range_and_window(tmp_path):
    data = np.linspace(-1000, 1000, 8 * 9 * 4, dtype=np.float32).reshape(8, 9, 4)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header["cal_min"], img.header["cal_max"] = -100.0, 100.0
    path = tmp_path / "ct.nii.gz"
    nib.save(img, path)
    s = open_source(str(path), split=False)
    assert np.array_equal(s.image(1), expected_slice(data, 2, 1, -100.0, 100.0))
    r = open_source(str(path), split=False, medical=MedicalOptions(window="range"))
    assert np.array_equal(r.image(1), expected_slice(data, 2, 1, -1000.0, 1000.0))
    lung = open_source(str(path), split=False, medical=MedicalOptions(window="lung"))
    from graphret.data.dicom_pixels import voi_linear

    want = np.rot90(np.rint(voi_linear(data[:, :, 1].astype(np.float64), -600, 1500)).astype(np.uint8))
    assert np.array_equal(lung.image(1), want)


def test_four_dimensional_volume_is_refused_or_skipped(tmp_path):
    src = nib_file("example4d.nii.gz")
    with pytest.raises(InputError, match=r"is a 4-D NIfTI volume \(128, 96, 24, 2\); graphret reads 2-D and 3-D volumes") as e:
        open_source(str(src))
    assert "\n" not in str(e.value)
    root = tmp_path / "vols"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    shutil.copy(src, root / "a" / "fmri.nii.gz")
    shutil.copy(nib_file("anatomical.nii"), root / "a" / "anat.nii")
    shutil.copy(nib_file("standard.nii.gz"), root / "b" / "std.nii.gz")
    s = open_source(str(root), seed=0)
    assert s.skipped == {"NIfTI volumes with 4 or more dimensions": 1}
    assert s.class_names == ["a", "b"] and len(s) == 25 + 7
    assert s.ids[0] == "a/anat#s000" and s.ids[-1] == "b/std#s006"
    with pytest.raises(InputError, match="4-D NIfTI"):
        open_source(str(root), on_corrupt="error")


def test_truncated_volume(tmp_path):
    raw = gzip.decompress(nib_file("standard.nii.gz").read_bytes())
    bad = tmp_path / "cut.nii.gz"
    bad.write_bytes(gzip.compress(raw[: len(raw) - 60]))
    with pytest.raises(InputError, match="cut.nii.gz") as e:
        open_source(str(bad))
    assert "\n" not in str(e.value)


def test_volumes_stay_in_one_split(tmp_path):
    root = tmp_path / "vols"
    rng = np.random.default_rng(0)
    for cls in ("x", "y"):
        for v in range(5):
            (root / cls).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(rng.normal(size=(6, 6, 4)).astype(np.float32), np.eye(4)), root / cls / f"v{v}.nii.gz")
    s = open_source(str(root), seed=1)
    assert s.group_by == "NIfTI volume file"
    assert s.split_origin == "seeded 70/30 by group (NIfTI volume file; seed 1)"
    for g in set(s.groups):
        assert len(set(s.splits[s.groups == g])) == 1
    assert 0 < (s.splits == "test").sum() < len(s)
