"""What every model you bring shares: preprocessing, the file's identity, batched frozen codes.

An :class:`ExternalEncoder` learns nothing.  Its code of an image is the model's output (or the
output / layer named by ``layer``) reduced to one vector by :func:`pooled` and L2-normalised.
The input is the image conformed to ``image_size`` x ``image_size`` x ``channels`` (PIL
bilinear, grey repeated to colour or colour to luma), scaled to [0, 1] and normalised per
channel, ``(x - mean) / std``, as a float32 (N, C, H, W) batch.  Each of those values comes from
the option when given, else the model's own config (:meth:`ExternalEncoder._load` returns what
the model says), else ImageNet's (224 px, 3 channels, ImageNet mean / std).

The saved encoder (a store's ``encoder.pt``) holds the model's path, its SHA-256 and the
resolved preprocessing, never the model: loading it checks the file first, so ``add``,
``query --image`` and the server's uploads encode exactly as the build did, and a model file
that is missing or has changed since is a one-line error.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder, l2_normalise
from graphret.encoders.training import progress_batches, set_threads
from graphret.errors import InputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
DEFAULT_CHANNELS = 3
DEFAULT_BATCH = 32


def folder_files(path: Path) -> list[Path]:
    """The files of a model folder that identify it, in order (hidden ones left out)."""
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder: of each file's relative path and SHA-256, in order
    (a Hugging Face model folder: config, weights and preprocessing together)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for child in folder_files(path):
            digest.update(child.relative_to(path).as_posix().encode() + b"\0" + file_sha256(child).encode() + b"\n")
        return digest.hexdigest()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: Path) -> tuple | None:
    """What a cheap look at a model file (or each file of a folder) sees: size and modification
    time in ns; None when it is missing.  A model checked by :func:`file_sha256` whose stamp is
    unchanged is taken as unchanged (a write changes the modification time)."""
    if path.is_dir():
        stamps = tuple((child.relative_to(path).as_posix(), file_stamp(child)) for child in folder_files(path))
        return None if any(stamp is None for _, stamp in stamps) else stamps  # a file gone since the listing
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns)


def one_line(error: BaseException) -> str:
    """The first line of an outside library's error, short and without braces (which graphret's
    messages read as parameter names)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:200].replace("{", "(").replace("}", ")")


def pooled(activation: Any, what: str) -> np.ndarray:
    """One float32 vector per image from a model output: (N, D) as it is; (N, C, H, W) averaged
    over the image (global average pooling); (N, T, D) its first token (a transformer's class
    token).  Anything else, or an output that is not floating point, is a one-line error."""
    a = activation.detach().cpu().numpy() if hasattr(activation, "detach") else np.asarray(activation)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{what} is {a.dtype}, not a float feature; choose a feature output or layer with {{layer}}", param="layer")
    if a.ndim == 2:
        return a.astype(np.float32)
    if a.ndim == 4:
        return a.astype(np.float32).mean(axis=(2, 3))
    if a.ndim == 3:
        return a[:, 0, :].astype(np.float32)
    raise InputError(f"{what} has shape {tuple(a.shape)}: not one feature vector per image (N, D), a feature map (N, C, H, W) "
                     "or tokens (N, T, D); choose another output with {layer}", param="layer")


def _floats(value: Any, name: str) -> tuple[float, ...] | None:
    """A per-channel option as floats (the command line gives strings)."""
    if value is None:
        return None
    items = [value] if isinstance(value, (int, float, str)) else list(value)
    try:
        return tuple(float(v) for v in items)
    except (TypeError, ValueError):
        raise InputError(f"{{{name}}} must be numbers, one per channel, got {value!r}; use e.g. {{{name}=0.5,0.5,0.5}}", param=name) from None


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input (see the module docstring)."""

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def check(self) -> "Preprocessing":
        if self.image_size < 1:
            raise InputError(f"{{image_size}} must be at least 1, got {self.image_size}", param="image_size")
        if self.channels not in (1, 3):
            raise InputError(f"graphret feeds 1-channel (grey) or 3-channel (colour) images, not {self.channels}; set {{channels=3}} or {{channels=1}}", param="channels")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) != self.channels:
                raise InputError(f"{{{name}}} has {len(values)} values for {self.channels}-channel input; give one per channel", param=name)
        if not all(s > 0 for s in self.std):
            raise InputError(f"{{std}} must be positive, got {list(self.std)}", param="std")
        return self

    def batch(self, images: ImageSet, indices: np.ndarray) -> np.ndarray:
        """float32 (n, C, H, W): the items conformed, in [0, 1], normalised."""
        x = images.load(indices, size=self.image_size, channels=self.channels).astype(np.float32) / np.float32(255.0)
        x -= np.asarray(self.mean, np.float32)
        x /= np.asarray(self.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def to_json(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std)}


class ExternalEncoder(Encoder):
    """Frozen codes from a model file (see the module docstring).  Subclasses open one kind of
    model: :meth:`_load` reads it (one-line errors for what is not such a model) and returns the
    preprocessing values the model states, :meth:`_forward` runs a float32 batch and returns
    the chosen output, :meth:`_check_input` refuses preprocessing the model cannot take."""

    #: what the model file is, for messages ("ONNX model file")
    noun: ClassVar[str] = "model file"
    #: how to make one, for messages
    how_to_make: ClassVar[str] = ""

    def __init__(self, model: str | None = None, *, layer: str | None = None, image_size: int | None = None,
                 channels: int | None = None, mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                 device: str = "auto", threads: int | None = None, progress: bool = True, batch_size: int | None = None) -> None:
        if not model or not str(model).strip():
            raise InputError(f"the {self.name} encoder needs its {self.noun}: use {{encoder={self.name}:PATH}}", param="encoder")
        if device not in ("auto", "cpu"):
            raise InputError(f"models you bring run on the CPU here, not {device!r}; use {{device=cpu}}", param="device")
        if threads is not None and int(threads) < 1:
            raise InputError(f"{{threads}} must be at least 1, got {threads}", param="threads")
        self.model = str(model).strip()
        self.layer = layer
        self.options = {"image_size": image_size, "channels": channels, "mean": _floats(mean, "mean"), "std": _floats(std, "std")}
        self.threads = threads
        self.progress = progress
        self.batch_size = batch_size or DEFAULT_BATCH
        self.prep: Preprocessing | None = None
        self.sha256: str | None = None
        self.expected_sha256: str | None = None
        self.stamp: tuple | None = None  # the file's size and mtime when its SHA-256 was taken (file_stamp)
        self.output: str | None = None  # the output / layer the codes come from, once resolved
        self.dim: int | None = None
        self.sources: dict[str, str] = {}

    # -- what a subclass provides -------------------------------------------------------------
    def _path(self) -> Path:
        """The file (or folder) whose SHA-256 identifies the model."""
        return Path(self.model).expanduser()

    def _load(self) -> dict[str, Any]:
        """Read the model; return the preprocessing values it states (image_size, channels,
        mean, std: any may be missing) and ``"source"``, where they came from."""
        raise NotImplementedError

    def _forward(self, x: np.ndarray) -> Any:
        """The chosen output of the model for a float32 (n, C, H, W) batch."""
        raise NotImplementedError

    def _check_input(self, prep: Preprocessing) -> None:
        """Refuse preprocessing the model cannot take (a fixed input size or channel count)."""

    def _extra_config(self) -> dict[str, Any]:
        return {}

    def _prepare(self, n_items: int) -> None:
        """Get ready to encode ``n_items`` images (a torch model picks its engine)."""

    # -- opening --------------------------------------------------------------------------------
    def _check_file(self) -> None:
        """The model file is there and, for a saved encoder, the one recorded (its SHA-256);
        remembers its SHA-256 and stamp."""
        path = self._path()
        stamp = file_stamp(path)  # taken first: a write during the hashing shows at the next look
        if stamp is None or not path.exists():
            if self.expected_sha256:
                raise InputError(f"the {self.noun} {path} that this encoder was built with is missing; put it back "
                                 f"(sha256 {self.expected_sha256[:16]}) or rebuild the store with another model")
            raise InputError(f"no such {self.noun}: {path}; give the path of {self.how_to_make or 'one'}")
        sha256 = file_sha256(path)
        if self.expected_sha256 and sha256 != self.expected_sha256:
            raise InputError(f"the {self.noun} {path} has changed since this encoder was built (sha256 {sha256[:16]}, "
                             f"built with {self.expected_sha256[:16]}); restore that file or rebuild the store with the new one")
        self.sha256, self.stamp = sha256, stamp

    def open(self) -> "ExternalEncoder":
        """Check the file (and, for a saved encoder, that it is the one recorded), load the
        model, resolve the preprocessing and run one probe image through it."""
        self._check_file()
        if self.threads is not None:
            set_threads(int(self.threads))
        stated = self._load()
        chosen = {}
        for key, fallback in (("image_size", DEFAULT_SIZE), ("channels", DEFAULT_CHANNELS), ("mean", None), ("std", None)):
            if self.options[key] is not None:
                chosen[key], self.sources[key] = self.options[key], "option"
            elif stated.get(key) is not None:
                chosen[key], self.sources[key] = stated[key], stated.get("source", "the model")
            else:
                chosen[key], self.sources[key] = fallback, "default"
        channels = int(chosen["channels"])
        for key, imagenet in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            if chosen[key] is None:
                chosen[key] = imagenet if channels == 3 else (float(np.mean(imagenet)),)
        prep = Preprocessing(int(chosen["image_size"]), channels, tuple(float(v) for v in chosen["mean"]), tuple(float(v) for v in chosen["std"]))
        self._check_input(prep.check())
        self.prep = prep
        return self

    @property
    def is_open(self) -> bool:
        return self.prep is not None

    def _require_open(self) -> None:
        """Open the model once; once open, look at its file again (size and mtime, no hashing)
        and check it anew only when that changed: an encoder kept between queries refuses a
        file changed or removed since, and re-hashes nothing while it stays as it was."""
        if self.prep is None:
            self.open()
        elif file_stamp(self._path()) != self.stamp:
            loaded = self.sha256
            self._check_file()  # refuses a changed file when a SHA-256 was recorded
            if self.sha256 != loaded:  # (none recorded: a model being built from) another model: load it
                self.open()

    # -- the Encoder interface ------------------------------------------------------------------
    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "ExternalEncoder":
        """Nothing is learned: open the model and run the first training image through it, so
        a model that does not take the input fails here, before any store is written."""
        self._require_open()
        if len(train):
            self._codes(self.prep.batch(images, np.asarray(train[:1], dtype=np.int64)))  # type: ignore[union-attr]
        return self

    def _codes(self, x: np.ndarray) -> np.ndarray:
        """Raw features (n, D) of one preprocessed batch; a model that fails on it is one line."""
        try:
            out = self._forward(x)
        except InputError:
            raise
        except Exception as error:  # noqa: BLE001 - a runtime's failures vary; any is one line
            raise InputError(f"the {self.noun} {self._path().name} failed on a float32 batch of shape {tuple(x.shape)} "
                             f"({one_line(error)}); set {{image_size}} and {{channels}} to the input it takes") from None
        features = pooled(out, f"the output {self.output!r} of {self._path().name}")
        if self.dim is None:
            self.dim = int(features.shape[1])
        elif features.shape[1] != self.dim:
            raise InputError(f"the {self.noun} {self._path().name} gave {features.shape[1]}-d features, not the {self.dim} it gave before")
        return features

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int | None = None) -> Encoded:
        self._require_open()
        assert self.prep is not None
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        step = int(batch_size or self.batch_size)
        self._prepare(len(indices))
        parts = [self._codes(self.prep.batch(images, indices[start : start + step]))
                 for start in progress_batches(len(indices), step, progress=self.progress, desc=f"encode {self.name}")]
        if not parts:
            return Encoded(spaces={DEFAULT_SPACE: np.zeros((0, self.dim or 0), np.float32)})
        return Encoded(spaces={DEFAULT_SPACE: l2_normalise(np.concatenate(parts))})

    @property
    def description(self) -> str:
        if self.prep is None:
            return f"{self.name} model {self.model} (not opened)"
        p = self.prep
        return (f"{self.name} model {self._path().name} (sha256 {self.sha256[:12] if self.sha256 else '?'}), output {self.output}, "
                f"frozen, {p.image_size}px x {p.channels}, L2-normalised")

    def config(self) -> dict[str, Any]:
        self._require_open()
        assert self.prep is not None
        return {"model": str(self._path().resolve()), "sha256": self.sha256, "layer": self.layer, "output": self.output,
                **self.prep.to_json(),
                "preprocessing_from": dict(self.sources), "spaces": {DEFAULT_SPACE: self.dim}, **self._extra_config()}

    def state(self) -> dict[str, Any]:
        return {}  # the model stays in its file, identified by its SHA-256

    @classmethod
    def _options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "ExternalEncoder":
        enc = cls(config["model"], layer=config.get("layer"), image_size=int(config["image_size"]), channels=int(config["channels"]),
                  mean=config["mean"], std=config["std"], progress=False, **cls._options_from_config(config))
        enc.expected_sha256 = config["sha256"]
        spaces = config.get("spaces") or {}
        enc.dim = int(spaces[DEFAULT_SPACE]) if spaces.get(DEFAULT_SPACE) else None
        enc.open()
        enc.sources = dict(config.get("preprocessing_from") or enc.sources)
        return enc
