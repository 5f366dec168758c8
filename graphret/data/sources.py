"""The one dispatcher from a source spec to an :class:`ImageSet`.

Specs:

* ``None``, ``"demo"``, ``"demo:anatomy"``, ``"demo:findings"``, with optional
  ``n=N`` and ``size=S`` parts (``"demo:anatomy,n=500"``): the embedded demo set;
* ``"medmnist:NAME"`` (``medmnist:breastmnist``, ``medmnist:blood``, ``medmnist:pathmnist_64``):
  the official MedMNIST file, fetched into the cache and MD5-verified (see
  :mod:`graphret.data.fetch`), then read as an npz;
* a path to an existing ``.npz`` file, ``.csv`` / ``.tsv`` manifest (also gzipped), or folder
  (also written ``npz:PATH``, ``csv:PATH``, ``folder:PATH``, the form ``ImageSet.source``
  records); folders and manifests may hold DICOM files and NIfTI volumes;
* a path to one DICOM file (``.dcm``, or the DICM prefix) or NIfTI volume (``.nii``,
  ``.nii.gz``), also ``dicom:PATH`` / ``nifti:PATH``: its frames or slices, unlabelled.

DICOM and NIfTI options (keywords of :func:`open_source`, see
:class:`graphret.data.medical.MedicalOptions`): ``window``, ``frames``, ``dicom_tags``,
``slice_axis``, ``slice_step``; grouping: ``group_column``; labels from a separate table for a
plain folder: ``labels``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from graphret.data._common import check_on_corrupt
from graphret.data.csv_manifest import CsvOptions, load_csv
from graphret.data.demo import DEFAULT_N, DEFAULT_SIZE, load_demo
from graphret.data.fetch import fetch_medmnist
from graphret.data.folder import load_folder
from graphret.data.imageset import ImageSet
from graphret.data.medical import MedicalOptions
from graphret.data.npz import load_npz
from graphret.errors import InputError

SCHEMES = ("demo", "medmnist", "npz", "csv", "folder", "dicom", "nifti")
_HELP = "use demo, demo:anatomy, medmnist:NAME, or a path to an .npz, a .csv, a folder, a DICOM file or a NIfTI volume"
_CSV_NAMES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")


def _demo(spec: str, *, seed: int, split: bool) -> ImageSet:
    labels, n, size = "findings", DEFAULT_N, DEFAULT_SIZE
    _, _, rest = spec.partition(":")
    for part in filter(None, (p.strip() for p in re.split(r"[,:]", rest))):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq and key in ("findings", "anatomy"):
            labels = key
        elif eq and key in ("n", "size"):
            try:
                number = int(value)
            except ValueError:
                raise InputError(f"bad demo option {part!r}: {key} must be a whole number (e.g. demo:{key}=500)") from None
            if key == "n":
                n = number
            else:
                size = number
        else:
            raise InputError(f"unknown demo option {part!r} (use demo, demo:anatomy, demo:findings, n=N, size=S)")
    return load_demo(labels=labels, n=n, seed=seed, size=size, split=split)


def _kind_of(p: Path) -> str:
    from graphret.data.dicom_files import is_dicom_path
    from graphret.data.nifti import is_nifti_path

    name = p.name.lower()
    if p.is_dir():
        return "folder"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(_CSV_NAMES):
        return "csv"
    if is_nifti_path(p):
        return "nifti"
    if is_dicom_path(p):
        return "dicom"
    raise InputError(f"unsupported source file {p} (expected an .npz, a .csv, a DICOM file, a NIfTI volume or a folder)")


def _single_file(p: Path, *, seed: int, split: bool, on_corrupt: str, medical: MedicalOptions) -> ImageSet:
    """One DICOM file or NIfTI volume: its frames or slices as an unlabelled set."""
    from graphret.data.medical import expand_files, item_groups
    from graphret.data.split import assign_splits

    expanded = expand_files([str(p.resolve())], medical, on_corrupt="error")
    stem = p.name
    ids = [stem + sfx for sfx in expanded.suffix]
    groups = item_groups(expanded, ids)
    splits, origin = assign_splits(len(ids), split=split, seed=seed, groups=groups, group_by=expanded.group_by)
    return ImageSet(
        ids=ids, paths=list(expanded.paths), splits=splits, labels=None, class_names=[], task="unlabelled",
        source=f"{expanded.kinds[0]}:{p.resolve()}", read=expanded.reader, split_origin=origin,
        metadata=expanded.metadata, groups=groups, group_by=expanded.group_by,
    )


def _path_source(path: Path, kind: str | None, *, seed: int, split: bool, on_corrupt: str,
                 csv: CsvOptions | None, medical: MedicalOptions, labels: str | Path | None) -> ImageSet:
    p = path.expanduser()
    if not p.exists():
        raise InputError(f"no such file or folder: {p} (check the path)")
    if kind is None:
        kind = _kind_of(p)
    if labels is not None and kind != "folder":
        raise InputError(f"{{labels}} joins a label table to a folder; {p} is not a folder (give a folder, or put the labels in the manifest)", param="labels")
    if kind == "folder":
        if labels is not None:
            from graphret.data.label_join import join_labels

            plain = load_folder(p, seed=seed, split=False, on_corrupt=on_corrupt, medical=medical)
            return join_labels(plain, labels, options=csv, seed=seed, split=split)
        images = load_folder(p, seed=seed, split=split, on_corrupt=on_corrupt, medical=medical)
        if csv is not None and csv.group_column is not None:
            raise InputError(f"{{group_column}} names a CSV column; {p} is a folder without a table (use {{labels}} to join one)", param="group_column")
        return images
    if csv is not None and csv.group_column is not None and kind != "csv":
        raise InputError(f"{{group_column}} names a column of a CSV manifest or label table; {p} has none (drop it)", param="group_column")
    if kind == "npz":
        return load_npz(p, seed=seed, split=split)
    if kind in ("dicom", "nifti"):
        return _single_file(p, seed=seed, split=split, on_corrupt=on_corrupt, medical=medical)
    return load_csv(p, options=csv, seed=seed, split=split, on_corrupt=on_corrupt, medical=medical)


def open_source(
    spec: str | Path | None,
    *,
    seed: int = 0,
    split: bool = True,
    on_corrupt: str = "skip",
    csv: CsvOptions | None = None,
    cache_dir: Path | None = None,
    medical: MedicalOptions | None = None,
    group_column: str | None = None,
    labels: str | Path | None = None,
) -> ImageSet:
    """Open the source named by ``spec`` (see the module docstring) as an :class:`ImageSet`.

    ``seed`` drives the demo set and every seeded 70/30 split; ``split=False`` puts every
    item in split "all"; ``on_corrupt`` ("skip" or "error") decides what a corrupt or missing
    image (or an undecodable DICOM, a 4-D NIfTI) does; ``csv`` sets CSV manifest options;
    ``cache_dir`` is the MedMNIST cache.

    ``medical``: how DICOM and NIfTI files become items (:class:`graphret.data.medical.MedicalOptions`:
    window, frames, extra DICOM tags, NIfTI slices; its defaults when None).  ``group_column``: the CSV column whose
    values are kept inside one split (a patient; overrides ``csv.group_column``).  ``labels``:
    a CSV table that labels a plain folder, joined on path or SOPInstanceUID.
    """
    check_on_corrupt(on_corrupt)
    medical = medical if medical is not None else MedicalOptions()
    medical.checked()
    if group_column is not None:
        if not isinstance(group_column, str) or not group_column.strip():
            raise InputError(f"{{group_column}} must be a column name, got {group_column!r}", param="group_column")
        csv = replace(csv or CsvOptions(), group_column=group_column)
    is_demo = spec is None or (not isinstance(spec, Path) and str(spec).strip().lower().partition(":")[0] == "demo")
    if is_demo:
        if group_column is not None or labels is not None:
            raise InputError("the demo set has no table to group or label by; drop {group_column} and {labels}", param="group_column")
    if spec is None:
        return load_demo(seed=seed, split=split)
    kw = dict(seed=seed, split=split, on_corrupt=on_corrupt, csv=csv, medical=medical, labels=labels)
    if isinstance(spec, Path):
        return _path_source(spec, None, **kw)
    text = str(spec).strip()
    if not text:
        raise InputError(f"empty source ({_HELP})")
    scheme, colon, rest = text.partition(":")
    scheme_l = scheme.lower()
    if scheme_l == "demo":  # "demo" or "demo:...": a folder named demo is "./demo"
        return _demo(text, seed=seed, split=split)
    if colon and scheme_l == "medmnist":
        if not rest.strip():
            raise InputError(f"medmnist: needs a name, e.g. medmnist:breastmnist ({_HELP})")
        path = fetch_medmnist(rest.strip(), cache_dir=cache_dir)
        return load_npz(path, seed=seed, split=split)
    if colon and scheme_l in ("npz", "csv", "folder", "dicom", "nifti"):
        return _path_source(Path(rest), scheme_l, **kw)
    path = Path(text)
    # "x:..." that is not an existing path and not a Windows drive ("C:\\") is a scheme.
    if colon and not path.expanduser().exists() and len(scheme) > 1 and "/" not in scheme and "\\" not in scheme:
        raise InputError(f"unknown source scheme {scheme + ':'!r} in {text!r} ({_HELP})")
    return _path_source(path, None, **kw)
