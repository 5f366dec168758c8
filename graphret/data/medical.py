"""DICOM and NIfTI files inside folders and CSV manifests: one item per frame or slice.

Folders and manifests list *files*; a multi-frame DICOM file or a NIfTI volume holds many
images.  :func:`expand_files` turns the list of files into the list of items:

* a plain image file (PNG, JPEG, ...) is one item;
* a DICOM file is one item per frame (``frames="all"``) or one chosen frame (``"first"``,
  ``"middle"``, ``"last"`` or a frame number from 0, clamped to the file's frames), read as a
  viewer shows it (:mod:`graphret.data.dicom_pixels`); its non-identifying tags become
  metadata (:mod:`graphret.data.dicom_tags`) and its group is its hashed PatientID;
* a NIfTI volume is one item per slice along ``slice_axis`` (every ``slice_step``-th), its
  group the volume file (:mod:`graphret.data.nifti`).

A file without an image (a structured report, a DICOMDIR, a 4-D volume, a truncated file, an
undecodable transfer syntax) is skipped and counted with ``on_corrupt="skip"``, or raises one
:class:`~graphret.errors.InputError` line with ``on_corrupt="error"``; in a folder, DICOM
objects without pixel data are always passed over (a DICOMDIR belongs to every exported CD).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from graphret.data.dicom_files import (
    SKIP_NO_PIXELS,
    inspect_file,
    is_dicom_path,
    read_frame,
)
from graphret.data.dicom_pixels import Window, parse_window
from graphret.data.dicom_tags import (
    DEFAULT_TAGS,
    check_tags,
    patient_group,
    tag_columns,
    tags_of,
)
from graphret.data.nifti import (
    VolumeCache,
    inspect_volume,
    is_nifti_path,
    read_slice,
)
from graphret.data.pictures import FileReader
from graphret.data.problems import UnreadableFile
from graphret.errors import InputError

FRAME_CHOICES = ("all", "first", "middle", "last")


@dataclass(frozen=True)
class MedicalOptions:
    """How DICOM and NIfTI files become items (every field has a default):

    * ``window``: "file" (default: the file's VOI LUT / window, else each frame's range),
      "range", a preset ("lung", "mediastinum", "bone", "brain") or centre,width ("40,400" or
      a pair); NIfTI: "file" is the header's cal_min/cal_max, else the volume's range;
    * ``frames``: "all" (one item per frame, default), "first", "middle", "last" or a frame
      number from 0;
    * ``dicom_tags``: extra DICOM keywords to keep as metadata beyond :data:`DEFAULT_TAGS`
      (identifying tags such as PatientName enter only when named here);
    * ``slice_axis`` (0, 1 or 2; default 2) and ``slice_step`` (default 1): NIfTI slices;
    * ``verify``: decode the first and last frame of every DICOM file when the source is opened
      (default True), so that a bad file is found before any work starts.
    """

    window: Any = "file"
    frames: str | int = "all"
    dicom_tags: Sequence[str] | str | None = None
    slice_axis: int = 2
    slice_step: int = 1
    verify: bool = True

    def checked(self) -> "CheckedOptions":
        """The options validated (InputError naming the parameter otherwise)."""
        window = parse_window(self.window)
        frames = self.frames
        if isinstance(frames, str) and frames.strip().lstrip("-").isdigit():
            frames = int(frames)
        if isinstance(frames, str):
            frames = frames.strip().lower()
            if frames not in FRAME_CHOICES:
                raise InputError(f"unknown frames choice {self.frames!r}; use {{frames=all}}, first, middle, last or a frame number such as {{frames=0}}", param="frames")
        elif isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
            if frames < 0:
                raise InputError(f"{{frames}} must be a frame number from 0, got {frames} (use e.g. {{frames=0}})", param="frames")
            frames = int(frames)
        else:
            raise InputError(f"{{frames}} must be all, first, middle, last or a frame number, got {self.frames!r}", param="frames")
        if isinstance(self.slice_axis, bool) or self.slice_axis not in (0, 1, 2):
            raise InputError(f"{{slice_axis}} must be 0, 1 or 2 (an axis of the volume array), got {self.slice_axis!r}; use e.g. {{slice_axis=2}}", param="slice_axis")
        if isinstance(self.slice_step, bool) or not isinstance(self.slice_step, (int, np.integer)) or self.slice_step < 1:
            raise InputError(f"{{slice_step}} must be a whole number of at least 1, got {self.slice_step!r}; use e.g. {{slice_step=4}}", param="slice_step")
        return CheckedOptions(window=window, frames=frames, tags=DEFAULT_TAGS + check_tags(self.dicom_tags),
                              slice_axis=int(self.slice_axis), slice_step=int(self.slice_step), verify=bool(self.verify))


@dataclass(frozen=True)
class CheckedOptions:
    window: Window
    frames: str | int
    tags: tuple[str, ...]
    slice_axis: int
    slice_step: int
    verify: bool


def file_kind(path: str | Path) -> str:
    """"dicom", "nifti" or "image" (anything else the caller already chose as an image)."""
    if is_nifti_path(path):
        return "nifti"
    if is_dicom_path(path):
        return "dicom"
    return "image"


def chosen_frames(n: int, frames: str | int) -> list[int]:
    """The frame numbers taken from a file of ``n`` frames."""
    if frames == "all":
        return list(range(n))
    if frames == "first":
        return [0]
    if frames == "last":
        return [n - 1]
    if frames == "middle":
        return [(n - 1) // 2]
    return [min(int(frames), n - 1)]


class ItemReader:
    """``ImageSet.read`` for items that may be image files, DICOM frames or NIfTI slices.  A
    plain class, so that an ImageSet can be pickled into worker processes."""

    def __init__(self, paths: list[str], kinds: list[str], index: list[int], window: Window,
                 slice_axis: int = 2, ranges: list[tuple[float, float]] | None = None) -> None:
        self.paths = paths
        self.kinds = kinds
        self.index = index
        self.window = window
        self.slice_axis = slice_axis
        self.ranges = ranges or [(0.0, 0.0)] * len(paths)
        self.cache = VolumeCache()

    def __call__(self, i: int) -> np.ndarray:
        path, kind = self.paths[i], self.kinds[i]
        if kind == "image":
            return FileReader([path])(0)
        try:
            if kind == "dicom":
                return read_frame(path, self.index[i], self.window)
            lo, hi = self.ranges[i]
            return read_slice(path, self.slice_axis, self.index[i], lo, hi, self.window, self.cache)
        except FileNotFoundError as e:
            raise InputError(f"image file vanished: {path} (it was there when the source was opened)") from e
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001
            raise InputError(f"cannot read {path} item {self.index[i]} ({type(e).__name__}: {str(e)[:160]}); replace the file, or reopen the source") from e


@dataclass
class Expanded:
    """Items made from a list of files (see :func:`expand_files`)."""

    source_pos: np.ndarray  # per item: the position of its file in the input list
    index: np.ndarray  # per item: frame / slice number, -1 for a plain image
    suffix: list[str]  # per item: "" or "#f3" (frame 3) / "#s012" (slice 12) to add to its id
    kinds: list[str]  # per item
    paths: list[str]  # per item (the file)
    metadata: dict[str, np.ndarray]
    groups: list[str | None]  # per item; None for a plain image (no group of its own)
    group_by: str
    skipped: Counter = field(default_factory=Counter)
    reader: ItemReader | None = None

    @property
    def medical(self) -> bool:
        return any(k != "image" for k in self.kinds)


def expand_files(paths: Sequence[str], options: MedicalOptions | None, *, on_corrupt: str,
                 pass_over_no_pixels: bool = False) -> Expanded:
    """One entry per item for ``paths`` (module docstring).  ``pass_over_no_pixels``: skip
    DICOM objects without pixel data whatever ``on_corrupt`` says (folders)."""
    opts = (options or MedicalOptions()).checked()
    skipped: Counter = Counter()
    pos: list[int] = []
    index: list[int] = []
    suffix: list[str] = []
    kinds: list[str] = []
    item_paths: list[str] = []
    groups: list[str | None] = []
    ranges: list[tuple[float, float]] = []
    tag_texts: list[dict[str, str] | None] = []
    file_kinds = [file_kind(p) for p in paths]
    for k, (path, kind) in enumerate(zip(paths, file_kinds)):
        if kind == "image":
            pos.append(k); index.append(-1); suffix.append(""); kinds.append(kind)
            item_paths.append(path); groups.append(None); ranges.append((0.0, 0.0)); tag_texts.append(None)
            continue
        if kind == "dicom":
            info = inspect_file(path, window=opts.window, verify=opts.verify)
            if info.problem is not None:
                if on_corrupt == "error" and not (pass_over_no_pixels and info.problem.kind == SKIP_NO_PIXELS):
                    raise info.problem.error()
                skipped[info.problem.kind] += 1
                continue
            texts = tags_of(info.header, opts.tags)
            group = patient_group(info.header, fallback=f"file:{path}")
            frames = chosen_frames(info.frames, opts.frames)
            for f in frames:
                pos.append(k); index.append(f); suffix.append(f"#f{f}" if info.frames > 1 else "")
                kinds.append(kind); item_paths.append(path); groups.append(group); ranges.append((0.0, 0.0)); tag_texts.append(texts)
            continue
        try:
            vol = inspect_volume(path, axis=opts.slice_axis, step=opts.slice_step, window=opts.window)
        except UnreadableFile as error:
            if on_corrupt == "error":
                raise
            skipped[error.problem.kind] += 1
            continue
        width = max(3, len(str(vol.shape[opts.slice_axis] - 1)))
        for s in vol.slices:
            pos.append(k); index.append(s); suffix.append(f"#s{s:0{width}d}" if len(vol.slices) > 1 or vol.shape[opts.slice_axis] > 1 else "")
            kinds.append(kind); item_paths.append(path); groups.append(f"volume:{path}"); ranges.append((vol.lo, vol.hi)); tag_texts.append(None)

    metadata: dict[str, np.ndarray] = {}
    present = set(kinds)
    if "dicom" in present:
        values = {t: [(tt or {}).get(t, "") for tt in tag_texts] for t in opts.tags}
        metadata.update(tag_columns(values))
        metadata["frame"] = np.array([float(i) if k == "dicom" else np.nan for i, k in zip(index, kinds)], np.float64)
    if "nifti" in present:
        metadata["slice"] = np.array([float(i) if k == "nifti" else np.nan for i, k in zip(index, kinds)], np.float64)
    by = []
    if "dicom" in present:
        by.append("DICOM PatientID (hashed; the file where absent)")
    if "nifti" in present:
        by.append("NIfTI volume file")
    reader = ItemReader(item_paths, kinds, index, opts.window, opts.slice_axis, ranges)
    return Expanded(
        source_pos=np.array(pos, dtype=np.int64),
        index=np.array(index, dtype=np.int64),
        suffix=suffix,
        kinds=kinds,
        paths=item_paths,
        metadata=metadata,
        groups=groups,
        group_by=" / ".join(by),
        skipped=skipped,
        reader=reader,
    )


def item_groups(expanded: Expanded, ids: Sequence[str]) -> np.ndarray | None:
    """Per-item groups: the expansion's, with each plain image its own group (its id); None
    when no item came from a DICOM or NIfTI file."""
    if not expanded.medical:
        return None
    return np.array([g if g is not None else f"item:{i}" for g, i in zip(expanded.groups, ids)], dtype=object)
