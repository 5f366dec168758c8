"""DICOM header tags as item metadata, without leaking identity.

Only the tags in :data:`DEFAULT_TAGS` (the image's kind and geometry, sex and age, and the
study / series / instance UIDs) become metadata columns by default.  Names, birth dates,
patient IDs, addresses, accession numbers, institution and physician names and every other tag
enter the metadata only when the user names them in ``dicom_tags``.  The PatientID used to keep
a patient's images in one split is stored hashed (:func:`patient_group`), never as written.

Values (PS3.5 6.2 value representations): numbers (IS, DS, US ...) become float columns;
multi-valued tags (PixelSpacing "0.5\\0.5") keep DICOM's backslash-separated text; PatientAge
("045Y", "006M", "010W", "003D", PS3.5 Table 6.2-1 AS) becomes years as a float; a missing tag
is NaN in a numeric column and "" in a text column.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable, Sequence

import numpy as np

from graphret.errors import InputError

#: Non-identifying tags kept as metadata by default.
DEFAULT_TAGS: tuple[str, ...] = (
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "PixelSpacing",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)

#: Tags that identify a person or a visit (PS3.15 Annex E, a selection): never kept unless named.
IDENTIFYING_TAGS: frozenset[str] = frozenset({
    "PatientName", "PatientID", "PatientBirthDate", "PatientBirthTime", "PatientAddress",
    "PatientTelephoneNumbers", "OtherPatientIDs", "OtherPatientNames", "PatientMotherBirthName",
    "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "StudyID", "StudyDate", "StudyTime",
    "SeriesDate", "AcquisitionDate", "ContentDate", "DeviceSerialNumber", "StationName",
})


def check_tags(names: Iterable[str] | None) -> tuple[str, ...]:
    """The extra tag keywords asked for, checked against the DICOM dictionary (PS3.6); none
    asked for imports no pydicom (about 0.2 s: a query by a picture file needs none)."""
    if names is None:
        return ()
    if isinstance(names, str):
        names = [n for n in (p.strip() for p in names.split(",")) if n]
    names = list(names)
    if not names:
        return ()
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    out: list[str] = []
    for name in names:
        name = str(name).strip()
        tag = tag_for_keyword(name)
        if tag is None:
            raise InputError(
                f"unknown DICOM tag {name!r} in {{dicom_tags}}; use keywords from the DICOM "
                "dictionary such as {dicom_tags=Manufacturer,SliceThickness}",
                param="dicom_tags",
            )
        if dictionary_VR(tag) == "SQ":
            raise InputError(f"DICOM tag {name!r} is a sequence and cannot be a metadata column; name a plain tag in {{dicom_tags}}", param="dicom_tags")
        if name not in out and name not in DEFAULT_TAGS:
            out.append(name)
    return tuple(out)


def age_in_years(value: str) -> float:
    """A DICOM AS value ("045Y", "006M", "010W", "003D") in years; NaN when unreadable."""
    v = str(value).strip().upper()
    if len(v) < 2 or not v[:-1].strip().isdigit():
        return float("nan")
    number, unit = float(v[:-1]), v[-1]
    per_year = {"Y": 1.0, "M": 12.0, "W": 52.1775, "D": 365.25}.get(unit)
    return number / per_year if per_year else float("nan")


def _shared_group_value(ds: Any, keyword: str) -> Any:
    """``keyword`` inside the Shared Functional Groups Sequence of an enhanced multi-frame
    object (PS3.3 C.7.6.16: e.g. PixelSpacing in its Pixel Measures Sequence), or None."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    if not shared:
        return None
    for element in shared[0]:
        if element.VR == "SQ" and element.value:
            value = element.value[0].get(keyword)
            if value is not None:
                return value
    return None


def tag_text(ds: Any, keyword: str) -> str:
    """A tag's value as text ("" when absent); multiple values joined by a backslash.  Tags of
    enhanced multi-frame objects are also looked up in their shared functional groups."""
    element = ds.get(keyword)
    if element is None:
        element = _shared_group_value(ds, keyword)
    if element is None:
        return ""
    if isinstance(element, (list, tuple)) or type(element).__name__ == "MultiValue":
        return "\\".join(str(v) for v in element)
    if isinstance(element, bytes):
        return ""
    return str(element).strip()


def tag_columns(values: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Metadata columns from per-item tag texts: numeric tags (every present value a number)
    -> float64 with NaN for missing, PatientAge -> years, others -> str."""
    out: dict[str, np.ndarray] = {}
    for name, texts in values.items():
        if name == "PatientAge":
            out[name] = np.array([age_in_years(t) if t else np.nan for t in texts], np.float64)
            continue
        present = [t for t in texts if t != ""]
        numeric = bool(present)
        for t in present:
            try:
                float(t)
            except ValueError:
                numeric = False
                break
        if numeric:
            out[name] = np.array([float(t) if t != "" else np.nan for t in texts], np.float64)
        else:
            out[name] = np.array(texts, dtype=object).astype(str)
    return out


def patient_group(ds: Any, fallback: str) -> str:
    """The grouping key of a file: a hash of its PatientID ("pid:" + 16 hex digits), so that the
    ID itself is never stored; ``fallback`` (the file) when the file has no PatientID."""
    pid = tag_text(ds, "PatientID")
    if not pid:
        return fallback
    return "pid:" + hashlib.sha256(pid.encode("utf-8")).hexdigest()[:16]


def tags_of(ds: Any, keywords: Sequence[str]) -> dict[str, str]:
    """The texts of ``keywords`` in one header."""
    return {k: tag_text(ds, k) for k in keywords}
