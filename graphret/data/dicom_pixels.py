"""DICOM pixel values as a radiologist's viewer shows them, as 8-bit images for an encoder.

The grayscale pipeline of DICOM PS3.3 C.11 (and PS3.4 N.2), applied to one frame:

1. stored values -> **modality LUT** (C.11.1): ``RescaleSlope`` / ``RescaleIntercept`` or a
   Modality LUT Sequence (pydicom's ``apply_modality_lut``); for enhanced multi-frame objects
   the Pixel Value Transformation Sequence of the frame's functional groups (C.7.6.16.2.9);
2. -> **VOI LUT** (C.11.2), chosen by :class:`Window`:

   * ``"file"`` (default): the file's VOI LUT Sequence when it has one, else its first
     ``WindowCenter`` / ``WindowWidth`` pair (or the frame's Frame VOI LUT Sequence,
     C.7.6.16.2.10) with its ``VOILUTFunction`` (LINEAR, LINEAR_EXACT or SIGMOID, C.11.2.1.3),
     else the frame's own value range;
   * ``"range"``: the frame's own minimum to maximum (nothing clipped);
   * a preset for CT values in HU (:data:`WINDOW_PRESETS`: lung, mediastinum, bone, brain);
   * explicit ``(centre, width)`` values (``"40,400"`` as text);

3. -> **MONOCHROME1** inverted (C.7.6.3.1.2: the minimum value is white);
4. -> 8 bits: the VOI output range 0..255 (:func:`voi_linear` and friends map straight to it).

A window maps its range linearly and clips outside it, as a viewer does; without any window
the frame's full range is used, so 12- or 16-bit data never wrap around or saturate.

Colour images: RGB is kept; YBR_FULL, YBR_FULL_422, YBR_ICT and YBR_RCT are converted to RGB
by pydicom when decoding (C.7.6.3.1.2); more than 8 bits per sample are scaled by the stored
bit depth; PALETTE COLOR is looked up in the file's palette (C.7.6.3.1.5-6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from graphret.data.transforms import finite_range, span_to_255
from graphret.errors import InputError

#: Window presets for CT in Hounsfield units: (centre, width).  Common radiology defaults.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (50.0, 350.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
WINDOW_MODES = ("file", "range")
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class Window:
    """How stored values become display values: ``mode`` "file", "range" or "fixed" (with
    ``centre`` and ``width``, and ``name`` the preset or "C,W" text)."""

    mode: Literal["file", "range", "fixed"] = "file"
    centre: float | None = None
    width: float | None = None
    name: str = "file"

    def describe(self) -> str:
        if self.mode == "fixed":
            return f"{self.name} (centre {self.centre:g}, width {self.width:g})"
        return {"file": "the file's VOI LUT or window (else the frame's range)", "range": "each frame's full range"}[self.mode]


def parse_window(value: Any) -> Window:
    """A :class:`Window` from ``"file"``, ``"range"``, a preset name, ``"C,W"`` text or a
    ``(centre, width)`` pair; an :class:`InputError` naming the choices otherwise."""
    if isinstance(value, Window):
        return value
    if value is None:
        return Window()
    if isinstance(value, (tuple, list)) and len(value) == 2:
        centre, width = value
        return _fixed(centre, width, f"{centre},{width}")
    text = str(value).strip().lower()
    if text in WINDOW_MODES:
        return Window(mode=text, name=text)  # type: ignore[arg-type]
    if text in WINDOW_PRESETS:
        c, w = WINDOW_PRESETS[text]
        return Window(mode="fixed", centre=c, width=w, name=text)
    parts = [p.strip() for p in text.replace("/", ",").split(",")]
    if len(parts) == 2:
        return _fixed(parts[0], parts[1], text)
    raise InputError(
        f"unknown window {value!r}; use {{window=file}}, {{window=range}}, a preset "
        f"({', '.join(WINDOW_PRESETS)}) or centre,width values such as {{window=40,400}}",
        param="window",
    )


def _fixed(centre: Any, width: Any, name: str) -> Window:
    try:
        c, w = float(centre), float(width)
    except (TypeError, ValueError):
        raise InputError(f"window {name!r} needs two numbers, centre and width, e.g. {{window=40,400}}", param="window") from None
    if not (math.isfinite(c) and math.isfinite(w)) or w < 1:
        raise InputError(f"window {name!r}: the width must be at least 1 and both values finite, e.g. {{window=40,400}}", param="window")
    return Window(mode="fixed", centre=c, width=w, name=name)


# --------------------------------------------------------------------------- VOI functions


def voi_linear(x: np.ndarray, centre: float, width: float, *, ymin: float = 0.0, ymax: float = 255.0) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, the default LINEAR function (width >= 1)::

        x <= c - 0.5 - (w - 1) / 2  -> ymin
        x >  c - 0.5 + (w - 1) / 2  -> ymax
        else y = ((x - (c - 0.5)) / (w - 1) + 0.5) * (ymax - ymin) + ymin
    """
    x = np.asarray(x, dtype=np.float64)
    c, w = float(centre), max(float(width), 1.0)
    if w == 1.0:  # a threshold at c - 0.5
        return np.where(x <= c - 0.5, ymin, ymax)
    y = ((x - (c - 0.5)) / (w - 1.0) + 0.5) * (ymax - ymin) + ymin
    y = np.where(x <= c - 0.5 - (w - 1.0) / 2.0, ymin, y)
    y = np.where(x > c - 0.5 + (w - 1.0) / 2.0, ymax, y)
    return y


def voi_linear_exact(x: np.ndarray, centre: float, width: float, *, ymin: float = 0.0, ymax: float = 255.0) -> np.ndarray:
    """PS3.3 C.11.2.1.3.2, LINEAR_EXACT (width > 0): ``y = ((x - c) / w + 0.5) * (ymax - ymin)
    + ymin``, clipped to [ymin, ymax]."""
    x = np.asarray(x, dtype=np.float64)
    w = max(float(width), 1e-12)
    return np.clip(((x - float(centre)) / w + 0.5) * (ymax - ymin) + ymin, ymin, ymax)


def voi_sigmoid(x: np.ndarray, centre: float, width: float, *, ymin: float = 0.0, ymax: float = 255.0) -> np.ndarray:
    """PS3.3 C.11.2.1.3.1, SIGMOID: ``y = (ymax - ymin) / (1 + exp(-4 (x - c) / w)) + ymin``."""
    x = np.asarray(x, dtype=np.float64)
    w = max(float(width), 1e-12)
    z = np.clip(-4.0 * (x - float(centre)) / w, -700.0, 700.0)
    return (ymax - ymin) / (1.0 + np.exp(z)) + ymin


def value_range(x: np.ndarray) -> np.ndarray:
    """The frame's own minimum..maximum mapped linearly onto 0..255 (a flat frame -> 0)."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = finite_range(x) or (0.0, 0.0)
    return span_to_255(x, lo, hi)


# --------------------------------------------------------------------------- the pipeline


def _frame_item(ds: Any, frame: int, sequence: str) -> Any | None:
    """The first item of functional-group ``sequence`` for ``frame`` (per-frame, else shared)."""
    for groups_name, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_name)
        if groups is not None and len(groups) > index:
            seq = groups[index].get(sequence)
            if seq is not None and len(seq):
                return seq[0]
    return None


def _first(value: Any) -> float | None:
    if value is None:
        return None
    try:
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__"):
            value = value[0] if len(value) else None
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def modality_values(arr: np.ndarray, ds: Any, frame: int = 0) -> np.ndarray:
    """Stored values -> modality values (PS3.3 C.11.1), float64."""
    from pydicom.pixels import apply_modality_lut

    if "ModalityLUTSequence" in ds or ("RescaleSlope" in ds and "RescaleIntercept" in ds):
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    item = _frame_item(ds, frame, "PixelValueTransformationSequence")
    out = np.asarray(arr, dtype=np.float64)
    if item is not None:
        slope, intercept = _first(item.get("RescaleSlope")), _first(item.get("RescaleIntercept"))
        if slope is not None and intercept is not None:
            out = out * slope + intercept
    return out


def file_window(ds: Any, frame: int = 0) -> tuple[float, float, str] | None:
    """The file's first window (centre, width, VOI LUT function) for ``frame``, or None."""
    for source in (ds, _frame_item(ds, frame, "FrameVOILUTSequence")):
        if source is None:
            continue
        c, w = _first(source.get("WindowCenter")), _first(source.get("WindowWidth"))
        if c is not None and w is not None and w > 0:
            function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").upper()
            return c, w, function if function in VOI_FUNCTIONS else "LINEAR"
    return None


def _apply_window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    if function == "SIGMOID":
        return voi_sigmoid(values, centre, width)
    if function == "LINEAR_EXACT":
        return voi_linear_exact(values, centre, width)
    return voi_linear(values, centre, width)


def _voi_lut_sequence(values: np.ndarray, ds: Any) -> np.ndarray | None:
    """The file's first VOI LUT (C.11.2.1.1) applied and scaled by its output bit depth."""
    from pydicom.pixels import apply_voi

    seq = ds.get("VOILUTSequence")
    if not seq:
        return None
    item = seq[0]
    descriptor = item.get("LUTDescriptor")
    if np.all(np.isfinite(values)) and np.array_equal(values, np.round(values)):
        values = values.astype(np.int64)  # a LUT is indexed by whole stored values
    try:
        out = np.asarray(apply_voi(values, ds, index=0), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a malformed LUT falls back to the window / range
        return None
    bits = int(descriptor[2]) if descriptor is not None and len(descriptor) > 2 else 16
    top = float(2**bits - 1)
    data = item.get("LUTData")
    if data is not None and len(data) and max(data) <= 255 < top:  # 8-bit data in a 16-bit LUT
        top = 255.0
    return np.clip(out * (255.0 / top), 0.0, 255.0)


def grey_to_uint8(arr: np.ndarray, ds: Any, frame: int = 0, window: Window | None = None) -> np.ndarray:
    """One grayscale frame of stored values -> uint8 as displayed (module docstring)."""
    window = window or Window()
    values = modality_values(arr, ds, frame)
    display: np.ndarray | None = None
    if window.mode == "fixed":
        display = voi_linear(values, window.centre, window.width)  # type: ignore[arg-type]
    elif window.mode == "file":
        display = _voi_lut_sequence(values, ds)
        if display is None:
            found = file_window(ds, frame)
            if found is not None:
                display = _apply_window(values, *found)
    if display is None:
        display = value_range(values)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        display = 255.0 - display
    return np.clip(np.rint(display), 0, 255).astype(np.uint8)


def colour_to_uint8(arr: np.ndarray, ds: Any) -> np.ndarray:
    """A colour frame (RGB after pydicom's YBR conversion, or PALETTE COLOR indices) -> uint8
    (H, W, 3)."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        rgb = np.asarray(apply_color_lut(arr, ds))
        if rgb.dtype.itemsize > 1 and rgb.max(initial=0) > 255:
            return np.clip(np.rint(rgb.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return rgb.astype(np.uint8)
    a = np.asarray(arr)
    bits = int(ds.get("BitsStored", 8) or 8)
    if a.dtype.kind == "f":
        return value_range(a).astype(np.uint8)
    if bits <= 8 and a.dtype.itemsize == 1:
        return a.astype(np.uint8)
    scale = 255.0 / float(2**bits - 1)
    return np.clip(np.rint(a.astype(np.float64) * scale), 0, 255).astype(np.uint8)


def frame_to_uint8(arr: np.ndarray, ds: Any, frame: int = 0, window: Window | None = None) -> np.ndarray:
    """One decoded frame -> uint8 (H, W) grey or (H, W, 3) colour, as a viewer shows it."""
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    a = np.asarray(arr)
    if photometric == "PALETTE COLOR" or (a.ndim == 3 and a.shape[-1] in (3, 4)):
        return colour_to_uint8(a[..., :3] if a.ndim == 3 else a, ds)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return grey_to_uint8(a, ds, frame, window)
