"""DICOM sources on the real test files that pydicom and pydicom-data ship.

Pixel values are checked against independent computations: the PS3.3 C.11.2.1.2.1 linear VOI
function written out here per pixel, MONOCHROME1 inverted by hand, the lossless compressed
copies of one image giving the uncompressed image's values exactly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from graphret.data import open_source  # noqa: E402
from graphret.data.medical import MedicalOptions  # noqa: E402
from graphret.data.dicom_files import decode_failure, is_dicom_path  # noqa: E402
from graphret.data.dicom_pixels import WINDOW_PRESETS, parse_window, voi_linear  # noqa: E402
from graphret.data.dicom_tags import DEFAULT_TAGS, age_in_years  # noqa: E402
from graphret.errors import InputError  # noqa: E402


def dicom_file(name: str) -> Path:
    """A test file shipped by pydicom or pydicom-data (never downloaded); skip when absent."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pip install pydicom-data)")
    return Path(path)


def linear_by_hand(x: float, c: float, w: float) -> float:
    """PS3.3 C.11.2.1.2.1 for one value, output range 0..255, as the standard writes it."""
    if x <= c - 0.5 - (w - 1) / 2:
        return 0.0
    if x > c - 0.5 + (w - 1) / 2:
        return 255.0
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0


def by_hand(values: np.ndarray, c: float, w: float) -> np.ndarray:
    flat = [linear_by_hand(float(v), c, w) for v in values.ravel()]
    return np.rint(np.array(flat).reshape(values.shape)).astype(np.uint8)


def folder_of(tmp_path: Path, *names: str, sub: str = "") -> Path:
    root = tmp_path / "dicom"
    (root / sub).mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(dicom_file(name), root / sub / name)
    return root


def one(tmp_path: Path, name: str, **medical):
    """The items of one test file opened as a single-file source."""
    return open_source(str(folder_of(tmp_path, name) / name), split=False, medical=MedicalOptions(**medical))


# --------------------------------------------------------------------------- windows


def test_parse_window_choices_and_errors():
    assert parse_window("file").mode == "file" and parse_window(None).mode == "file"
    assert parse_window("RANGE").mode == "range"
    lung = parse_window("lung")
    assert (lung.centre, lung.width) == WINDOW_PRESETS["lung"]
    assert (parse_window("40,400").centre, parse_window("40,400").width) == (40.0, 400.0)
    assert parse_window((-600, 1500)).width == 1500.0
    for bad in ("soft", "40", "40,0", "a,b"):
        with pytest.raises(InputError) as e:
            parse_window(bad)
        assert e.value.param == "window"


def test_voi_linear_matches_the_standard_by_hand():
    x = np.arange(-1200, 1600, 7, dtype=np.float64)
    for c, w in [(40, 400), (-600, 1500), (0.5, 2), (300, 1)]:
        got = np.rint(voi_linear(x, c, w)).astype(np.uint8)
        assert np.array_equal(got, by_hand(x, c, w)), (c, w)


# --------------------------------------------------------------------------- grey pipeline


def test_mr_window_from_the_file(tmp_path):
    s = one(tmp_path, "MR_small.dcm")
    ds = pydicom.dcmread(dicom_file("MR_small.dcm"))
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    assert "RescaleSlope" not in ds
    got = s.image(0)
    assert got.dtype == np.uint8 and got.shape == (64, 64)
    assert np.array_equal(got, by_hand(ds.pixel_array.astype(np.float64), c, w))


def test_ct_rescale_then_range_or_preset(tmp_path):
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    assert "WindowCenter" not in ds
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # no window in the file: the frame's own range, nothing clipped
    s = one(tmp_path, "CT_small.dcm")
    expected = np.rint((hu - hu.min()) * 255.0 / (hu.max() - hu.min())).astype(np.uint8)
    assert np.array_equal(s.image(0), expected)
    for preset in ("lung", "bone"):
        c, w = WINDOW_PRESETS[preset]
        s = one(tmp_path, "CT_small.dcm", window=preset)
        assert np.array_equal(s.image(0), by_hand(hu, c, w))
    s = one(tmp_path, "CT_small.dcm", window="40,400")
    assert np.array_equal(s.image(0), by_hand(hu, 40, 400))


def test_monochrome1_is_inverted(tmp_path):
    ds = pydicom.dcmread(dicom_file("RG1_UNCR.dcm"))
    assert ds.PhotometricInterpretation == "MONOCHROME1" and ds.Modality == "CR"
    c, w = float(ds.WindowCenter if not isinstance(ds.WindowCenter, pydicom.multival.MultiValue) else ds.WindowCenter[0]), float(
        ds.WindowWidth if not isinstance(ds.WindowWidth, pydicom.multival.MultiValue) else ds.WindowWidth[0])
    s = one(tmp_path, "RG1_UNCR.dcm")
    got = s.image(0)
    crop = (slice(900, 940), slice(800, 850))  # a patch, by hand per pixel
    expected = 255 - by_hand(ds.pixel_array[crop].astype(np.float64), c, w)
    assert np.array_equal(got[crop], expected)
    assert s.metadata["Modality"][0] == "CR"


def test_sixteen_bit_without_window_uses_the_full_range(tmp_path):
    # RTDOSE: 32-bit unsigned, no window: scaled by its own range, never wrapped
    s = one(tmp_path, "rtdose_1frame.dcm")
    ds = pydicom.dcmread(dicom_file("rtdose_1frame.dcm"))
    raw = ds.pixel_array.astype(np.float64)
    expected = np.rint((raw - raw.min()) * 255.0 / (raw.max() - raw.min())).astype(np.uint8)
    assert np.array_equal(s.image(0), expected)


def test_modality_and_voi_lut_sequences(tmp_path):
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    ds = pydicom.dcmread(dicom_file("mlut_18.dcm"))
    assert "ModalityLUTSequence" in ds
    values = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    expected = np.rint((values - values.min()) * 255.0 / (values.max() - values.min())).astype(np.uint8)
    assert np.array_equal(one(tmp_path, "mlut_18.dcm").image(0), expected)

    ds = pydicom.dcmread(dicom_file("vlut_04.dcm"))
    assert "VOILUTSequence" in ds
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    out = apply_voi_lut(ds.pixel_array, ds, index=0).astype(np.float64)
    top = 255.0 if max(ds.VOILUTSequence[0].LUTData) <= 255 < 2**bits - 1 else float(2**bits - 1)
    expected = np.clip(np.rint(out * 255.0 / top), 0, 255).astype(np.uint8)
    got = one(tmp_path, "vlut_04.dcm").image(0)
    assert np.array_equal(got, expected)


def test_lossless_compressed_copies_give_identical_pixels(tmp_path):
    reference = one(tmp_path, "MR_small.dcm").image(0)
    # RLE (pylibjpeg-rle / pydicom), JPEG 2000 lossless (pylibjpeg-openjpeg), JPEG-LS (gdcm)
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_bigendian.dcm"):
        assert np.array_equal(one(tmp_path, name).image(0), reference), name


def test_jpeg_baseline_and_lossless_process14_decode(tmp_path):
    a = one(tmp_path, "SC_rgb_jpeg_dcmtk.dcm").image(0)  # JPEG baseline, YBR_FULL
    assert a.shape == (100, 100, 3) and a.dtype == np.uint8
    b = one(tmp_path, "JPGLosslessP14SV1_1s_1f_8b.dcm").image(0)  # JPEG lossless SV1 (python-gdcm)
    assert b.shape == (768, 1024)


# --------------------------------------------------------------------------- colour


def test_rgb_ybr_and_palette(tmp_path):
    from pydicom.pixels import apply_color_lut, convert_color_space

    rgb = pydicom.dcmread(dicom_file("US1_UNCR.dcm"))
    assert np.array_equal(one(tmp_path, "US1_UNCR.dcm").image(0), rgb.pixel_array)
    ybr = pydicom.dcmread(dicom_file("SC_ybr_full_uncompressed.dcm"))
    assert ybr.PhotometricInterpretation == "YBR_FULL"
    raw = ybr.pixel_array if False else pydicom.pixels.pixel_array(dicom_file("SC_ybr_full_uncompressed.dcm"), raw=True)
    as_rgb = convert_color_space(raw, "YBR_FULL", "RGB")  # PS3.3 C.7.6.3.1.2, by pydicom's formula
    got = one(tmp_path, "SC_ybr_full_uncompressed.dcm").image(0)
    assert np.array_equal(got, as_rgb)
    # the same picture stored as RGB: equal up to the YCbCr round trip
    assert np.abs(got.astype(int) - pydicom.dcmread(dicom_file("SC_rgb.dcm")).pixel_array.astype(int)).max() <= 8
    pal = pydicom.dcmread(dicom_file("OBXXXX1A.dcm"))
    assert pal.PhotometricInterpretation == "PALETTE COLOR"
    expected = apply_color_lut(pal.pixel_array, pal)
    if expected.dtype != np.uint8:
        expected = np.rint(expected / 257.0).astype(np.uint8)
    assert np.array_equal(one(tmp_path, "OBXXXX1A.dcm").image(0), expected)
    sixteen = one(tmp_path, "SC_rgb_16bit.dcm").image(0)
    assert np.abs(sixteen.astype(int) - pydicom.dcmread(dicom_file("SC_rgb.dcm")).pixel_array.astype(int)).max() <= 1


# --------------------------------------------------------------------------- frames


def test_multiframe_one_item_per_frame_or_a_chosen_frame(tmp_path):
    ds = pydicom.dcmread(dicom_file("emri_small.dcm"))
    assert int(ds.NumberOfFrames) == 10
    s = one(tmp_path, "emri_small.dcm")
    assert len(s) == 10 and s.ids[0] == "emri_small.dcm#f0" and s.ids[9] == "emri_small.dcm#f9"
    assert list(s.metadata["frame"]) == list(range(10))
    frames = ds.pixel_array.astype(np.float64)
    for f in (0, 4, 9):  # each frame on its own range (1 apart at most where x.5 rounds)
        x = frames[f]
        expected = np.rint((x - x.min()) * 255.0 / (x.max() - x.min()))
        assert np.abs(s.image(f).astype(int) - expected).max() <= 1
    middle = one(tmp_path, "emri_small.dcm", frames="middle")
    assert middle.ids == ["emri_small.dcm#f4"] and np.array_equal(middle.image(0), s.image(4))
    assert one(tmp_path, "emri_small.dcm", frames=2).ids == ["emri_small.dcm#f2"]
    assert one(tmp_path, "emri_small.dcm", frames=99).ids == ["emri_small.dcm#f9"]
    assert one(tmp_path, "emri_small.dcm", frames="last").ids == ["emri_small.dcm#f9"]
    for bad in ("some", -1, 1.5):
        with pytest.raises(InputError) as e:
            one(tmp_path, "emri_small.dcm", frames=bad)
        assert e.value.param == "frames"


def test_compressed_multiframe_ybr(tmp_path):
    s = one(tmp_path, "examples_ybr_color.dcm", frames="first")  # JPEG baseline YBR_FULL_422, 30 frames
    assert len(s) == 1 and s.image(0).shape == (240, 320, 3)


# --------------------------------------------------------------------------- folders, detection, bad files


def test_folder_of_dicom_with_extensionless_files_and_bad_ones(tmp_path):
    root = folder_of(tmp_path, "CT_small.dcm", "MR_small.dcm", "MR_truncated.dcm", "test-SR.dcm", "JPGExtended.dcm")
    shutil.copy(dicom_file("MR_small_RLE.dcm"), root / "IM0001")  # no extension, DICM prefix
    shutil.copy(Path(dicom_file("CT_small.dcm")).parent / "dicomdirtests" / "DICOMDIR", root / "DICOMDIR")
    (root / "README").write_text("not dicom")
    assert is_dicom_path(root / "IM0001") and not is_dicom_path(root / "README")
    s = open_source(str(root), seed=0)
    assert sorted(s.ids) == ["CT_small", "IM0001", "MR_small"]
    assert s.task == "unlabelled"
    assert s.skipped == {
        "DICOM files that cannot be decoded": 1,  # 12-bit JPEG Extended
        "DICOM files without pixel data": 2,  # the SR and the DICOMDIR
        "non-image files": 1,
        "unreadable DICOM files": 1,  # truncated
    }
    # on_corrupt="error": the first bad file is one line naming its problem
    with pytest.raises(InputError) as e:
        open_source(str(root), on_corrupt="error")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "name,pattern",
    [
        ("MR_truncated.dcm", r"corrupt or truncated DICOM pixel data .*MR_truncated"),
        ("test-SR.dcm", r"has no pixel data \(it is .*SR Storage\)"),
        ("JPGExtended.dcm", r"transfer syntax JPEG Extended \(Process 2 and 4\) \(1\.2\.840\.10008\.1\.2\.4\.51\) needs python-gdcm .*pylibjpeg-libjpeg"),
    ],
)
def test_bad_single_files_are_one_clear_line(tmp_path, name, pattern):
    with pytest.raises(InputError, match=pattern) as e:
        one(tmp_path, name)
    assert "\n" not in str(e.value)


def test_dicomdir_alone_is_refused(tmp_path):
    path = tmp_path / "DICOMDIR"
    shutil.copy(Path(dicom_file("CT_small.dcm")).parent / "dicomdirtests" / "DICOMDIR", path)
    with pytest.raises(InputError, match=r"no pixel data \(it is Media Storage Directory Storage\)"):
        open_source(str(path))


def test_missing_decoder_message_names_the_package():
    ds = pydicom.dcmread(dicom_file("JPGLosslessP14SV1_1s_1f_8b.dcm"), stop_before_pixels=True)
    error = RuntimeError("Unable to decompress 'JPEG Lossless' pixel data because all plugins are missing dependencies:\n\tgdcm - requires gdcm")
    problem = decode_failure("x.dcm", ds, error)
    assert problem.kind == "DICOM files that cannot be decoded"
    assert "JPEG Lossless, Non-Hierarchical, First-Order Prediction" in problem.message and "needs python-gdcm" in problem.message


# --------------------------------------------------------------------------- metadata and identity


def test_default_metadata_never_holds_identity(tmp_path):
    root = folder_of(tmp_path, "CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm")
    s = open_source(str(root), split=False)
    assert set(DEFAULT_TAGS) <= set(s.metadata) and "frame" in s.metadata
    for name in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "AccessionNumber"):
        assert name not in s.metadata
    values = {str(v) for column in s.metadata.values() for v in column}
    for name in ("CT_small.dcm", "MR_small.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm"):
        ds = pydicom.dcmread(dicom_file(name), stop_before_pixels=True)
        for tag in ("PatientName", "PatientID", "PatientBirthDate"):
            if ds.get(tag):
                assert str(ds.get(tag)) not in values
                assert not any(str(ds.get(tag)) in str(g) for g in s.groups)
    ct = s.ids.index("CT_small")
    assert s.metadata["Modality"][ct] == "CT" and s.metadata["Rows"][ct] == 128.0
    assert s.metadata["PixelSpacing"][ct].count("\\") == 1
    assert s.metadata["Rows"].dtype == np.float64 and s.metadata["SOPInstanceUID"].dtype.kind == "U"


def test_identifying_tags_only_when_named(tmp_path):
    root = folder_of(tmp_path, "CT_small.dcm", "MR_small.dcm")
    s = open_source(str(root), split=False, medical=MedicalOptions(dicom_tags=["PatientName", "Manufacturer"]))
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"), stop_before_pixels=True)
    assert s.metadata["PatientName"][s.ids.index("CT_small")] == str(ds.PatientName)
    assert "Manufacturer" in s.metadata and "PatientID" not in s.metadata
    with pytest.raises(InputError) as e:
        open_source(str(root), medical=MedicalOptions(dicom_tags="PatientNmae"))
    assert e.value.param == "dicom_tags"


def test_patient_age_in_years():
    assert age_in_years("045Y") == 45.0 and age_in_years("006M") == 0.5
    assert np.isnan(age_in_years("")) and np.isnan(age_in_years("abc"))


def _patients(tmp_path, n_patients=6, per_patient=4):
    """Copies of MR_small under several PatientIDs (new instance UIDs)."""
    from pydicom.uid import generate_uid

    root = tmp_path / "patients"
    root.mkdir()
    base = pydicom.dcmread(dicom_file("MR_small.dcm"))
    for p in range(n_patients):
        for k in range(per_patient):
            base.PatientID = f"PAT-{p:03d}"
            base.PatientName = f"Doe^Patient{p}"
            base.SOPInstanceUID = generate_uid(entropy_srcs=[str(p), str(k)])
            base.save_as(root / f"p{p}_{k}.dcm")
    return root


def test_patient_split_keeps_each_patient_in_one_split(tmp_path):
    root = _patients(tmp_path)
    s = open_source(str(root), seed=3)
    assert s.group_by.startswith("DICOM PatientID")
    assert s.split_origin == "seeded 70/30 by group (DICOM PatientID (hashed; the file where absent); seed 3)"
    assert len(set(s.groups)) == 6 and all(g.startswith("pid:") for g in s.groups)
    for g in set(s.groups):
        assert len(set(s.splits[s.groups == g])) == 1
    assert (s.splits == "test").sum() in (4, 8)  # whole patients: 30 % of 24 items is 7.2
    assert not any("PAT-" in g for g in s.groups)


def test_csv_manifest_of_dicom_files_and_label_join_on_sop_uid(tmp_path):
    root = _patients(tmp_path, n_patients=4, per_patient=2)
    files = sorted(p.name for p in root.glob("*.dcm"))
    manifest = tmp_path / "patients" / "labels.csv"
    manifest.write_text("path,finding\n" + "".join(f"{f},{'a' if k % 2 else 'b'}\n" for k, f in enumerate(files)))
    s = open_source(str(manifest), seed=0)
    assert s.task == "multiclass" and len(s) == 8 and s.class_names == ["a", "b"]
    assert "Modality" in s.metadata and s.group_by.startswith("DICOM PatientID")
    # a plain folder labelled by a table joined on SOPInstanceUID
    uids = [str(pydicom.dcmread(root / f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    table = tmp_path / "by_uid.csv"
    table.write_text("SOPInstanceUID,finding\n" + "".join(f"{u},{'x' if k < 3 else 'y'}\n" for k, u in enumerate(uids[:6])))
    manifest.unlink()
    joined = open_source(str(root), labels=str(table), seed=0)
    assert len(joined) == 6 and joined.skipped == {"items not in the label table": 2}
    assert sorted(joined.label_names(i) for i in range(6)) == ["x", "x", "x", "y", "y", "y"]
    by_id = {i: joined.label_names(k) for k, i in enumerate(joined.ids)}
    assert by_id[files[0][:-4]] == "x" and by_id[files[5][:-4]] == "y"
    # joined on the path column (relative to the table's folder)
    by_path = tmp_path / "by_path.csv"
    by_path.write_text("path,finding\n" + "".join(f"patients/{f},{'x' if k else 'y'}\n" for k, f in enumerate(files[:2])))
    on_path = open_source(str(root), labels=str(by_path), split=False)
    assert [on_path.label_names(k) for k in range(2)] == ["y", "x"] and len(on_path) == 2
    with pytest.raises(InputError) as e:
        open_source(str(manifest.parent / files[0]), labels=str(by_path))
    assert e.value.param == "labels"


def test_class_folders_of_dicom_under_a_wrapper(tmp_path):
    root = tmp_path / "Download"
    for split in ("Train", "Test"):
        for cls, name in (("ct", "CT_small.dcm"), ("mr", "MR_small.dcm")):
            (root / "Study Set" / split / cls).mkdir(parents=True)
            shutil.copy(dicom_file(name), root / "Study Set" / split / cls / name)
    s = open_source(str(root))
    assert s.class_names == ["ct", "mr"] and s.split_origin == "source"
    assert sorted(set(s.splits)) == ["test", "train"]
    assert "wrapper folder 'Study Set'" in s.layout


def test_enhanced_multiframe_rescale_window_and_spacing_from_functional_groups(tmp_path):
    ds = pydicom.dcmread(dicom_file("eCT_Supplemental.dcm"))
    shared = ds.SharedFunctionalGroupsSequence[0]
    pvt, voi = shared.PixelValueTransformationSequence[0], shared.FrameVOILUTSequence[0]
    assert "RescaleSlope" not in ds and "WindowCenter" not in ds
    s = one(tmp_path, "eCT_Supplemental.dcm", frames=1)
    hu = ds.pixel_array[1].astype(np.float64) * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
    assert np.array_equal(s.image(0), by_hand(hu, float(voi.WindowCenter), float(voi.WindowWidth)))
    assert s.metadata["PixelSpacing"][0] == "\\".join(str(v) for v in shared.PixelMeasuresSequence[0].PixelSpacing)


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm", "SC_rgb_jpeg_lossy_gdcm.dcm",
                                  "SC_rgb_rle.dcm", "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_gdcm_KY.dcm"])
def test_every_colour_encoding_of_one_picture_reads_as_its_rgb(tmp_path, name):
    """The same test picture stored as RGB, YBR_FULL, YBR_FULL_422, JPEG baseline, RLE and
    JPEG 2000: each reads back close to the plain RGB file (a colour conversion done twice, or
    not at all, would be off by tens of levels everywhere)."""
    reference = pydicom.dcmread(dicom_file("SC_rgb.dcm")).pixel_array.astype(int)
    got = one(tmp_path, name).image(0).astype(int)
    assert got.shape == reference.shape
    assert np.abs(got - reference).mean() < 4.0


# --------------------------------------------------------------------------- the whole-dataset route


def test_files_the_frame_reader_cannot_take_are_decoded_whole(tmp_path):
    import zlib

    # Deflated Explicit VR Little Endian (PS3.5 A.5): inflated by hand here, 8-bit grey spanning
    # 0..255, so the displayed image is the stored bytes
    path = dicom_file("image_dfl.dcm")
    raw = path.read_bytes()
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert header.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
    meta_end = 132 + 12 + int(header.file_meta.FileMetaInformationGroupLength)
    body = zlib.decompress(raw[meta_end:], -zlib.MAX_WBITS)
    n = int(header.Rows) * int(header.Columns)
    stored = np.frombuffer(body[-n:], np.uint8).reshape(int(header.Rows), int(header.Columns))
    assert (stored.min(), stored.max()) == (0, 255)
    assert np.array_equal(one(tmp_path, "image_dfl.dcm").image(0), stored)

    # a JPEG baseline file whose Basic Offset Table is malformed: the same pixels as dcmtk's
    # decompressed copy of it
    jpeg = one(tmp_path, "SC_rgb_jpeg.dcm").image(0)
    assert jpeg.shape == (256, 256, 3)
    assert np.array_equal(jpeg, one(tmp_path, "SC_rgb_jpeg_dcmd.dcm").image(0))

    # no file meta information: implicit VR little endian inferred; 8-bit palette indices read
    # straight from the Pixel Data bytes, looked up in the file's palette
    from pydicom.pixels import apply_color_lut

    face = dicom_file("OT-PAL-8-face.dcm")
    ds = pydicom.dcmread(face, force=True)
    assert ds.file_meta.get("TransferSyntaxUID") is None
    indices = np.frombuffer(ds.PixelData, np.uint8).reshape(int(ds.Rows), int(ds.Columns))
    rgb = np.asarray(apply_color_lut(indices, ds)).astype(np.float64)
    expected = np.rint(rgb / 257.0).astype(np.uint8) if rgb.max() > 255 else rgb.astype(np.uint8)
    assert np.array_equal(one(tmp_path, "OT-PAL-8-face.dcm").image(0), expected)

    # a truncated file still fails both ways, with the frame reader's error
    with pytest.raises(InputError, match=r"corrupt or truncated DICOM pixel data .*MR_truncated"):
        one(tmp_path, "MR_truncated.dcm")
