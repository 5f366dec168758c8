"""The training loop shared by graphret's torch encoders.

One loop for every trainable encoder (CNN classifier, Siamese, denoising autoencoder):

* **Data**: items are read through :meth:`ImageSet.load` at the model's size and channel count;
  when the training + validation images fit in ``preload_bytes`` (default 1 GiB) they are read
  once and kept as uint8, otherwise each batch is read on demand (bounded memory).
* **Augmentation** suited to medical images (:class:`Augment`): horizontal flips (vertical
  flips off by default: anatomy has an up), small rotations (+-10 degrees), small
  scale / translation (a random crop of 90-100 % of the image, resampled), and intensity
  (brightness +-10 %, contrast x0.9-1.1).  All draws come from a seeded generator.
* **Early stopping** on a validation figure (accuracy, or a loss for label-free encoders):
  the best epoch's weights are kept; training stops after ``patience`` epochs without a gain
  (but not before ``min_epochs``, by default half the epochs: the learning rate follows a
  cosine schedule over all epochs, and small sets take few steps per epoch), or when
  ``time_limit`` seconds have passed: the limit is checked after every batch, and an epoch
  cut short is validated and recorded (``partial``) like a full one, so the weights kept are
  the best validated ones (or the last, without validation) whichever batch the limit hit.
* **Budget in work, not wall-clock**: a time limit makes the model depend on how busy the
  machine is.  ``work`` (megapixels of training images to process) fixes the training length
  from the set's size and image size alone (:func:`work_epochs`), so the same command on the
  same data gives the same model on a busy or a quiet machine.
* **Progress**: a tqdm bar per epoch with the running loss, and one line per epoch with the
  validation figure.
* **Checkpoint**: after every epoch the model, optimiser, best weights and history are written
  atomically to ``checkpoint``; with ``resume`` a run continues after the last finished epoch.
  Every epoch's randomness (shuffle, augmentation, dropout) is seeded from (seed, epoch), so a
  resumed run gives the same weights as an uninterrupted one.
* **Device**: ``"auto"`` takes CUDA when present, else the CPU; ``threads`` sets torch's CPU
  threads (default: torch's own choice, the number of physical cores).  With ``amp`` (default)
  training runs under bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512 BF16 / AMX),
  about 1.7x faster there; encoding always runs in float32.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.errors import InputError

#: Defaults tuned for a small CPU (see the benchmark in benchmarks/bench_encoders.py).
DEFAULT_BATCH_SIZE = 128
SMALL_SET_BATCH_SIZE, SMALL_SET_ITEMS = 64, 2000
DEFAULT_LR = 2e-3
#: Default training length: epochs enough to see about this many images (3 to 30 epochs),
#: a few CPU minutes at 28 px (MedMNIST: Breast 30, Retina 19, Pneumonia 4, blood cells 3).
AUTO_EPOCH_IMAGES = 20000
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 3, 30
#: Epochs a work budget may give (:func:`work_epochs`).
MIN_WORK_EPOCHS, MAX_WORK_EPOCHS = 1, 60
DEFAULT_PATIENCE = 5
#: Without an explicit image size a model takes the source's size, but at most this.
MAX_AUTO_SIZE = 224


def torch():  # noqa: D401 - a lazy import, so that `import graphret` does not pay for torch
    """The torch module (imported on first use)."""
    import torch as _torch

    return _torch


@dataclass
class TrainConfig:
    """How to train: every option of the shared loop."""

    epochs: int | None = None  # None: auto_epochs(items per epoch), about 20k images seen
    batch_size: int | None = None  # None: 64 below 2000 items per epoch (more steps), else 128
    lr: float = DEFAULT_LR
    weight_decay: float = 1e-4
    patience: int = DEFAULT_PATIENCE
    min_epochs: int | None = None  # no early stop before this epoch (default: half of epochs)
    augment: bool = True
    vflip: bool = False
    device: str = "auto"
    threads: int | None = None
    time_limit: float | None = None  # seconds of training, checked after every batch
    work: float | None = None  # megapixels of images to train on: epochs from size, not time
    checkpoint: str | None = None
    resume: bool = False
    progress: bool = True
    preload_bytes: int = 1 << 30
    amp: bool = True  # bf16 autocast for training where the CPU has native bf16 (or on CUDA)

    def validate(self) -> None:
        if self.epochs is not None and self.epochs < 1:
            raise InputError(f"epochs must be at least 1, got {self.epochs}; use e.g. {{epochs=10}}", param="epochs")
        if self.batch_size is not None and self.batch_size < 2:
            raise InputError(f"batch size must be at least 2, got {self.batch_size}; use e.g. {{batch_size=128}}", param="batch_size")
        if not self.lr > 0:
            raise InputError(f"learning rate must be positive, got {self.lr}; use e.g. {{lr=1e-3}}", param="lr")
        if self.patience < 1:
            raise InputError(f"patience must be at least 1, got {self.patience}")
        if self.resume and not self.checkpoint:
            raise InputError("{resume} needs a checkpoint file; pass {checkpoint=PATH}", param="resume")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError(f"time_limit must be a positive number of seconds, got {self.time_limit}; use e.g. {{time_limit=120}}", param="time_limit")
        if self.work is not None and not self.work > 0:
            raise InputError(f"work must be a positive number of megapixels, got {self.work}; use e.g. {{work=60}}", param="work")

    def to_json(self) -> dict[str, Any]:
        """The options that describe the model (runtime-only ones left out)."""
        d = asdict(self)
        for key in ("device", "threads", "checkpoint", "resume", "progress", "preload_bytes"):
            d.pop(key)
        return d


TRAIN_OPTIONS = tuple(TrainConfig.__dataclass_fields__)


def auto_epochs(items_per_epoch: int) -> int:
    """Epochs that show the model about AUTO_EPOCH_IMAGES items, within [3, 30]."""
    return int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(AUTO_EPOCH_IMAGES / max(items_per_epoch, 1)))))


def work_epochs(items_per_epoch: int, image_size: int, work: float, *, channels: int = 1) -> int:
    """Epochs that process about ``work`` megapixels of training images: ``work * 1e6 /
    (items_per_epoch * image_size**2 * channels)``, rounded, within [1, 60].

    Depends only on the set's size and the model's input size, never on the clock, so a build
    gives the same model on a busy or a quiet machine.  E.g. 60 megapixels over the demo set's
    1,260 training items at 32 px is 46 epochs; over 50,000 items at 64 px, 1 epoch."""
    per_epoch = max(int(items_per_epoch), 1) * int(image_size) ** 2 * max(int(channels), 1)
    return int(min(MAX_WORK_EPOCHS, max(MIN_WORK_EPOCHS, round(float(work) * 1e6 / per_epoch))))


def training_epochs(cfg: "TrainConfig", items_per_epoch: int, image_size: int | None = None, channels: int = 1) -> int:
    """The epochs a run trains: ``cfg.epochs``, else the ``cfg.work`` budget (needs the image
    size), else :func:`auto_epochs`."""
    if cfg.epochs is not None:
        return int(cfg.epochs)
    if cfg.work is not None and image_size is not None:
        return work_epochs(items_per_epoch, image_size, cfg.work, channels=channels)
    return auto_epochs(items_per_epoch)


def split_options(options: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """Split keyword options into a TrainConfig and the rest (the model's own options)."""
    train = {k: v for k, v in options.items() if k in TRAIN_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in TRAIN_OPTIONS}
    cfg = TrainConfig(**train)
    cfg.validate()
    return cfg, rest


# --------------------------------------------------------------------------- device & seeding


def choose_device(device: str = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; otherwise the named torch device."""
    t = torch()
    if device in (None, "", "auto"):
        return t.device("cuda" if t.cuda.is_available() else "cpu")
    try:
        dev = t.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not t.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but no CUDA GPU is available; use {{device=cpu}}", param="device")
    return dev


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads when asked (``None`` keeps torch's default)."""
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch().set_num_threads(int(threads))


def autocast_for(device, enabled: bool):
    """A bf16 autocast context for training on CUDA or on a CPU with native bf16 (AVX-512
    BF16 / AMX: about 1.7x faster there), else a no-op context."""
    import contextlib

    t = torch()
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        if t.cuda.is_bf16_supported():
            return t.autocast("cuda", dtype=t.bfloat16)
        return contextlib.nullcontext()  # fp16 would need a gradient scaler
    if device.type == "cpu":
        try:
            native = bool(t.cpu._is_avx512_bf16_supported()) or bool(getattr(t.cpu, "_is_amx_tile_supported", lambda: False)())
        except AttributeError:
            native = False
        if native:
            return t.autocast("cpu", dtype=t.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global generators (dropout, init)."""
    t = torch()
    t.manual_seed(int(seed))
    np.random.seed(int(seed) % (2**32))


def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """A numpy generator for one epoch: independent of how many epochs ran before."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(stream)]))


def torch_generator(seed: int, epoch: int, stream: int = 0):
    """A CPU torch generator for one epoch (augmentation draws)."""
    g = torch().Generator()
    g.manual_seed(int(np.random.SeedSequence([int(seed), int(epoch), int(stream), 7]).generate_state(1)[0]))
    return g


# --------------------------------------------------------------------------- data


def check_input_shape(images: ImageSet, indices: np.ndarray, *, size: int, channels: int, what: str) -> None:
    """Warn once when the source's images differ from what the model takes (they are resized
    and converted)."""
    if len(indices) == 0:
        return
    first = np.asarray(images.image(int(indices[0])))
    h, w = first.shape[:2]
    c = 1 if first.ndim == 2 else first.shape[2]
    c = 3 if c >= 3 else 1
    if (h, w) != (size, size) or c != channels:
        warnings.warn(
            f"{what} takes {size}x{size}x{channels} images; the source's are {h}x{w}x{c}, "
            f"so they are resized and converted",
            stacklevel=3,
        )


class ImageBatches:
    """uint8 images of some items at a fixed size / channel count, read once (when small) or
    per batch; ``get(rows)`` returns a float tensor (b, C, H, W) in [0, 1]."""

    def __init__(self, images: ImageSet, indices: np.ndarray, *, size: int, channels: int, preload_bytes: int = 1 << 30, progress: bool = False) -> None:
        self.images = images
        self.indices = np.asarray(indices, dtype=np.int64)
        self.size = size
        self.channels = channels
        self.cache: np.ndarray | None = None
        if len(self.indices) * size * size * channels <= preload_bytes:
            parts = []
            for start in range(0, len(self.indices), 4096):
                parts.append(images.load(self.indices[start : start + 4096], size=size, channels=channels))
            self.cache = np.concatenate(parts) if parts else np.zeros((0, size, size, channels), np.uint8)

    def __len__(self) -> int:
        return len(self.indices)

    def uint8(self, rows: np.ndarray) -> np.ndarray:
        """(b, H, W, C) uint8 of the items at positions ``rows`` of ``indices``."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.cache is not None:
            return self.cache[rows]
        return self.images.load(self.indices[rows], size=self.size, channels=self.channels)

    def get(self, rows: np.ndarray, device=None):
        return to_tensor(self.uint8(rows), device)


def to_tensor(batch: np.ndarray, device=None):
    """uint8 (b, H, W, C) -> float32 tensor (b, C, H, W) in [0, 1]."""
    t = torch()
    x = t.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div_(255.0)
    return x.to(device) if device is not None else x


def channel_stats(batches: ImageBatches, max_items: int = 20000) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of (up to ``max_items`` of) the images in [0,1]."""
    n = min(len(batches), max_items)
    rows = np.linspace(0, len(batches) - 1, n).astype(np.int64) if n else np.zeros(0, np.int64)
    total = np.zeros(batches.channels)
    square = np.zeros(batches.channels)
    count = 0
    for start in range(0, n, 4096):
        x = batches.uint8(rows[start : start + 4096]).astype(np.float64) / 255.0
        total += x.sum(axis=(0, 1, 2))
        square += (x**2).sum(axis=(0, 1, 2))
        count += x.shape[0] * x.shape[1] * x.shape[2]
    if count == 0:
        return [0.5] * batches.channels, [0.25] * batches.channels
    mean = total / count
    std = np.sqrt(np.maximum(square / count - mean**2, 1e-6))
    return [float(m) for m in mean], [float(s) for s in std]


class Normalise:
    """(x - mean) / std per channel, on a (b, C, H, W) tensor in [0, 1]."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean = list(mean)
        self.std = list(std)
        self._cache: dict[Any, Any] = {}

    def __call__(self, x):
        key = (x.device, x.dtype)
        if key not in self._cache:
            t = torch()
            m = t.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            s = t.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            self._cache[key] = (m, s)
        m, s = self._cache[key]
        return (x - m) / s


class Augment:
    """Random flips, small rotations, crops and intensity changes of a batch in [0, 1].

    ``rotation`` degrees (+-), ``crop`` the smallest fraction of the side kept (the crop is
    resampled to the full size, with a random offset), ``brightness`` (+-) and ``contrast``
    (x 1 +- c) of the intensity.
    """

    def __init__(self, *, hflip: bool = True, vflip: bool = False, rotation: float = 10.0, crop: float = 0.9, brightness: float = 0.1, contrast: float = 0.1) -> None:
        self.hflip = hflip
        self.vflip = vflip
        self.rotation = rotation
        self.crop = crop
        self.brightness = brightness
        self.contrast = contrast

    def __call__(self, x, generator, extra=None):
        """The augmented batch; with ``extra`` (a (b, C', H, W) tensor such as segmentation
        masks) also ``extra`` under the same geometric transform (no intensity change), as a
        pair.  The random draws are the same with or without ``extra``."""
        t = torch()
        import torch.nn.functional as F

        b = x.shape[0]

        def uniform(lo: float, hi: float):
            return lo + (hi - lo) * t.rand(b, generator=generator)

        angle = uniform(-self.rotation, self.rotation) * (math.pi / 180.0)
        scale = uniform(self.crop, 1.0)
        slack = 1.0 - scale
        tx = uniform(-1.0, 1.0) * slack
        ty = uniform(-1.0, 1.0) * slack
        sx = scale.clone()
        sy = scale.clone()
        if self.hflip:
            sx = sx * t.where(t.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        if self.vflip:
            sy = sy * t.where(t.rand(b, generator=generator) < 0.5, -1.0, 1.0)
        cos, sin = t.cos(angle), t.sin(angle)
        theta = t.stack(
            [t.stack([cos * sx, -sin * sy, tx], 1), t.stack([sin * sx, cos * sy, ty], 1)], 1
        ).to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        gain = uniform(1 - self.contrast, 1 + self.contrast).to(x.device, x.dtype).view(b, 1, 1, 1)
        shift = uniform(-self.brightness, self.brightness).to(x.device, x.dtype).view(b, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * gain + mean + shift).clamp_(0.0, 1.0)
        if extra is None:
            return x
        extra = F.grid_sample(extra.to(grid.dtype), grid.to(extra.device), mode="bilinear", padding_mode="zeros", align_corners=False)
        return x, extra


def holdout(train: np.ndarray, labels: np.ndarray | None, *, seed: int, fraction: float = 0.1, min_items: int = 20) -> tuple[np.ndarray, np.ndarray | None]:
    """Split ``train`` into (train, validation) with a seeded, stratified ``fraction`` held out
    for early stopping, when no validation split is given; None when too few items."""
    train = np.asarray(train, dtype=np.int64)
    if len(train) < min_items:
        return train, None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xFA1]))
    if labels is not None and np.asarray(labels).ndim == 1:
        strata = np.asarray(labels)[train]
    else:
        strata = np.zeros(len(train), np.int64)
    val_mask = np.zeros(len(train), bool)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        k = int(round(fraction * len(members)))
        if 0 < k < len(members):
            val_mask[rng.permutation(members)[:k]] = True
    if not val_mask.any():
        return train, None
    return train[~val_mask], train[val_mask]


# --------------------------------------------------------------------------- the loop


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val: float | None
    seconds: float
    partial: bool = False  # cut short by the time limit


@dataclass
class History:
    """What a run did: one record per epoch, the best epoch and why it stopped."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float | None = None
    stopped: str = ""
    val_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "stopped": self.stopped,
            "val_name": self.val_name,
            "seconds_per_epoch": self.seconds_per_epoch,
        }

    @property
    def seconds_per_epoch(self) -> float | None:
        if not self.epochs:
            return None
        return float(np.mean([e.seconds for e in self.epochs]))


def _state_copy(module) -> dict[str, Any]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


@dataclass
class _Best:
    """The best epoch so far: its weights, its validation key, the epochs since."""

    state: dict[str, Any] | None = None
    key: tuple[float, ...] | None = None
    bad_epochs: int = 0


def _resume(cfg: TrainConfig, fingerprint: dict[str, Any], module, optimiser, scheduler, history: History, best: _Best) -> int:
    """Load the checkpoint into the run when ``cfg.resume`` says so; the epoch to start at."""
    t = torch()
    if not cfg.resume:
        return 1
    if cfg.checkpoint and not os.path.exists(cfg.checkpoint):
        raise InputError(f"there is no checkpoint {cfg.checkpoint} to resume from; run without {{resume}} to start afresh", param="resume")
    try:
        ck = t.load(cfg.checkpoint, map_location="cpu", weights_only=True)
        ok = isinstance(ck, dict) and ck.get("format") == "graphret-checkpoint"
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same line
        raise InputError(f"checkpoint {cfg.checkpoint} is unreadable ({type(error).__name__}); delete it or run without {{resume}}", param="resume") from None
    if not ok:
        raise InputError(f"{cfg.checkpoint} is not a graphret training checkpoint; delete it or run without {{resume}}", param="resume")
    if ck.get("fingerprint") != fingerprint:
        raise InputError(f"checkpoint {cfg.checkpoint} is from another training run (other data or options); delete it or run without {{resume}}", param="resume")
    module.load_state_dict(ck["model"])
    optimiser.load_state_dict(ck["optimiser"])
    scheduler.load_state_dict(ck["scheduler"])
    best.state = ck["best_state"]
    best.bad_epochs = int(ck["bad_epochs"])
    best.key = tuple(ck["best_key"]) if ck.get("best_key") is not None else None
    h = ck["history"]
    history.epochs = [EpochRecord(**e) for e in h["epochs"]]
    history.best_epoch = h["best_epoch"]
    history.best_val = h["best_val"]
    _note(cfg, f"resuming from {cfg.checkpoint} after epoch {len(history.epochs)}")
    return len(history.epochs) + 1


def _save_checkpoint(cfg: TrainConfig, fingerprint: dict[str, Any], module, optimiser, scheduler, history: History, best: _Best) -> None:
    from graphret.atomic import atomic_path

    payload = {
        "format": "graphret-checkpoint",
        "fingerprint": fingerprint,
        "model": _state_copy(module),
        "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_state": best.state,
        "bad_epochs": best.bad_epochs,
        "best_key": list(best.key) if best.key is not None else None,
        "history": {"epochs": [asdict(e) for e in history.epochs], "best_epoch": history.best_epoch, "best_val": history.best_val},
    }
    with atomic_path(cfg.checkpoint) as tmp:
        torch().save(payload, tmp)


def _epoch_batches(n_train: int, batch_size: int) -> int:
    """Batches per epoch: the last incomplete batch is dropped, unless there is only one."""
    return 1 if n_train < batch_size else max(1, n_train // batch_size)


def _train_epoch(module, step, optimiser, *, cfg: TrainConfig, device, seed: int, epoch: int, n_train: int, batch_size: int,
                 bar, began: float) -> tuple[float, int, int, int]:
    """One epoch of steps: (summed loss, items seen, batches run, batches planned); stops early
    when the time limit passes (after at least one batch)."""
    t = torch()
    module.train()
    t.manual_seed(int(np.random.SeedSequence([int(seed), epoch, 3]).generate_state(1)[0]))
    order = epoch_rng(seed, epoch).permutation(n_train)
    n_batches = _epoch_batches(n_train, batch_size)
    generator = torch_generator(seed, epoch)
    total, seen = 0.0, 0
    for b in range(n_batches):
        rows = order[b * batch_size: (b + 1) * batch_size]
        with autocast_for(device, cfg.amp):
            loss = step(rows, generator)
        loss = loss.float()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise InputError(f"training diverged (loss {value}) in epoch {epoch}; lower the learning rate, e.g. {{lr={cfg.lr / 10:g}}}", param="lr")
        total += value * len(rows)
        seen += len(rows)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        if cfg.time_limit is not None and b + 1 < n_batches and time.monotonic() - began >= cfg.time_limit:
            return total, seen, b + 1, n_batches
    return total, seen, n_batches, n_batches


def _validation(module, validate, higher_is_better: bool) -> tuple[float | None, tuple[float, ...] | None]:
    """(the reported figure, the key compared across epochs) of the validation, or Nones."""
    if validate is None:
        return None, None
    module.eval()
    with torch().no_grad():
        got = validate()
    # a tuple (figure, tie-breaker, ...) is compared in order; the first is reported
    key = tuple(float(v) for v in got) if isinstance(got, (tuple, list)) else (float(got),)
    key = key if higher_is_better else tuple(-v for v in key)
    return (float(got[0]) if isinstance(got, (tuple, list)) else float(got)), key


def train_loop(
    module,
    *,
    n_train: int,
    step: Callable[[np.ndarray, Any], Any],
    validate: Callable[[], float] | None,
    cfg: TrainConfig,
    seed: int,
    fingerprint: dict[str, Any],
    val_name: str = "val",
    higher_is_better: bool = True,
    desc: str = "train",
    parameters=None,
    on_epoch: Callable[[int], None] | None = None,
    image_size: int | None = None,
    channels: int = 1,
) -> History:
    """Train ``module`` in place and leave the best validation epoch's weights in it.

    ``step(rows, generator)`` returns the loss of one batch (rows: positions 0..n_train-1 of
    the training items; generator: the epoch's torch generator for augmentation);
    ``validate()`` returns the validation figure (``higher_is_better`` says its direction), or
    a tuple (figure, tie-breaker, ...) compared in order (e.g. accuracy, then -loss).
    ``fingerprint`` (JSON-able) identifies the run; a checkpoint of another run is refused.
    ``on_epoch(epoch)`` runs before each epoch (e.g. to draw that epoch's pairs).
    ``image_size`` / ``channels``: the model's input, for a ``cfg.work`` budget.

    ``cfg.time_limit`` is checked after every batch: when it has passed, the epoch ends there
    (at least one batch runs), is validated and compared with the best as any epoch is, and
    training stops; no checkpoint is written for a cut epoch, so a resumed run starts again
    from the last whole epoch.
    """
    t = torch()
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = t.device("cpu")
    optimiser = t.optim.AdamW(parameters if parameters is not None else module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    epochs = training_epochs(cfg, n_train, image_size, channels)
    batch_size = cfg.batch_size or (SMALL_SET_BATCH_SIZE if n_train < SMALL_SET_ITEMS else DEFAULT_BATCH_SIZE)
    scheduler = t.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    history = History(val_name=val_name)
    min_epochs = cfg.min_epochs if cfg.min_epochs is not None else (epochs + 1) // 2
    fingerprint = _comparable(fingerprint)
    best = _Best()
    start_epoch = _resume(cfg, fingerprint, module, optimiser, scheduler, history, best)
    if best.bad_epochs >= cfg.patience and start_epoch - 1 >= min_epochs:
        start_epoch = epochs + 1  # it had already stopped early
    began = time.monotonic()
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.monotonic()
        if on_epoch is not None:
            on_epoch(epoch)
        bar = _bar(cfg, _epoch_batches(n_train, batch_size), f"{desc} epoch {epoch}/{epochs}")
        total, seen, done, planned = _train_epoch(module, step, optimiser, cfg=cfg, device=device, seed=seed, epoch=epoch,
                                                  n_train=n_train, batch_size=batch_size, bar=bar, began=began)
        scheduler.step()
        val, key = _validation(module, validate, higher_is_better)
        cut = done < planned
        history.epochs.append(EpochRecord(epoch=epoch, loss=total / max(seen, 1), val=val, seconds=time.monotonic() - t0, partial=cut))
        if val is None or (key is not None and (best.key is None or key > best.key)):
            best.key, best.state, best.bad_epochs = key, _state_copy(module), 0
            history.best_val, history.best_epoch = val, epoch
        else:
            best.bad_epochs += 1
        if bar is not None:
            post = {"loss": f"{total / max(seen, 1):.4f}"}
            if val is not None:
                post.update({val_name: f"{val:.4f}", "best": f"{history.best_val:.4f}@{history.best_epoch}"})
            bar.set_postfix(post)
            bar.close()
        if cut:
            history.stopped = f"time limit of {cfg.time_limit:g} s reached in epoch {epoch} (after {done} of {planned} batches)"
            break
        if cfg.checkpoint:
            _save_checkpoint(cfg, fingerprint, module, optimiser, scheduler, history, best)
        if best.bad_epochs >= cfg.patience and epoch >= min_epochs:
            history.stopped = f"early stop: no {val_name} gain for {best.bad_epochs} epochs"
            break
        if cfg.time_limit is not None and time.monotonic() - began >= cfg.time_limit and epoch < epochs:
            history.stopped = f"time limit of {cfg.time_limit:g} s reached"
            break
    if not history.stopped:
        history.stopped = f"{epochs} epochs done"
    if best.state is not None:
        module.load_state_dict(best.state)
    module.eval()
    return history


def _comparable(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A run's fingerprint without the options a resumed run may change (the time limit)."""
    out = dict(fingerprint)
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k != "time_limit"}
    return out


def _bar(cfg: TrainConfig, total: int, desc: str):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=True, file=sys.stderr, dynamic_ncols=True)


def _note(cfg: TrainConfig, text: str) -> None:
    if cfg.progress:
        print(text, file=sys.stderr)


def progress_batches(n: int, batch_size: int, *, progress: bool, desc: str):
    """Start offsets of the batches of n items, with a tqdm bar when ``progress``."""
    starts = range(0, n, batch_size)
    if progress and n > batch_size:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)
    return starts


def module_state(module) -> dict[str, Any]:
    """A module's state_dict on the CPU (for Encoder.state)."""
    return _state_copy(module)


def load_module_state(module, state: dict[str, Any], what: str) -> None:
    """Load a saved state_dict, turning a mismatch into a one-line InputError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"the saved {what} weights do not fit its architecture ({first[:160]}); retrain the model") from None


# --------------------------------------------------------------------------- shared encoder base


class TorchEncoder:
    """Mixin for graphret's torch encoders: input shape, normalisation and batched encoding.

    Subclasses set ``self.net`` (a module whose forward returns a dict of named activations),
    ``self.space_layers`` (code space name -> activation name, ``"default"`` included) and
    implement ``_outputs(batch) -> dict`` when forward needs more than the net.
    """

    image_size: int | None
    channels: int | None
    mean: list[float] | None
    std: list[float] | None
    train_cfg: TrainConfig
    history: History | None

    def _init_training(self, options: dict[str, Any]) -> None:
        self.train_cfg, rest = split_options(options)
        if rest:
            name = sorted(rest)[0]
            raise InputError(f"the {self.name} encoder has no option {name!r}; see `graphret train --help` for the options")  # type: ignore[attr-defined]
        self.history = None
        self.net = None
        self.code_centres: dict[str, list[float]] | None = None

    def _fingerprint(self, cfg: TrainConfig, seed: int, n_train: int) -> dict[str, Any]:
        """What a training run's checkpoint must match to be resumed: the encoder, its model
        configuration, the training settings, the seed and the training set's size."""
        return {"encoder": self.name, "model": self._model_config(), "train": cfg.to_json(), "seed": seed,  # type: ignore[attr-defined]
                "n_train": int(n_train)}

    def _resolve_shape(self, images: ImageSet, train: np.ndarray, image_size: int | None, channels: int | None) -> None:
        first = np.asarray(images.image(int(train[0])))
        if image_size is None:  # the source's size, at most MAX_AUTO_SIZE
            image_size = min(int(max(first.shape[:2])), MAX_AUTO_SIZE)
        if channels is None:
            channels = 1 if first.ndim == 2 or first.shape[2] < 3 else 3
        if image_size < 8:
            raise InputError(f"image size {image_size} is too small for a CNN; use {{image_size=28}} or more", param="image_size")
        if channels not in (1, 3):
            raise InputError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
        self.image_size = int(image_size)
        self.channels = int(channels)

    def _device(self):
        set_threads(self.train_cfg.threads)
        return choose_device(self.train_cfg.device)

    def _batches(self, images: ImageSet, indices: np.ndarray) -> ImageBatches:
        assert self.image_size is not None and self.channels is not None
        return ImageBatches(images, indices, size=self.image_size, channels=self.channels, preload_bytes=self.train_cfg.preload_bytes)

    def _require_fitted(self) -> None:
        if self.net is None:
            raise InputError(f"the {self.name} encoder is not trained; train it or load a saved model")  # type: ignore[attr-defined]

    def _encode_spaces(self, images: ImageSet, indices: np.ndarray | None, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Run the net over the items in batches: (named codes, logits or None).  Each space's
        activations are L2-normalised; where the encoder keeps a centre (``code_centres``),
        that mean unit code of the training items is subtracted and the rows normalised again."""
        from graphret.encoders.base import l2_normalise

        out, logits = self._encode_activations(images, indices, batch_size)
        centres = self.code_centres or {}
        codes = {}
        for space, a in out.items():
            a = l2_normalise(a)
            if space in centres:
                a = l2_normalise(a - np.asarray(centres[space], dtype=np.float32))
            codes[space] = a
        return codes, logits

    def _fit_code_centres(self, images: ImageSet, train: np.ndarray, *, seed: int, sample: int = 4096, batch_size: int = 256) -> None:
        """Record each code space's mean unit code over (a seeded sample of at most ``sample``)
        training items.  Cosine similarity is not translation-invariant: codes that share a
        large common direction (a linear bottleneck's offset, ReLU features' positive mean) look
        alike whatever their differences; subtracting the mean unit code and normalising again
        removes it (as PCA centres pixels).  Centring the unit codes rather than the raw
        activations keeps a few large-norm items from setting the centre; over five encoder
        and set pairs it never did worse than no centring, which centring the raw activations did."""
        from graphret.encoders.base import l2_normalise

        train = np.asarray(train, dtype=np.int64)
        if len(train) > sample:
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC3]))
            train = np.sort(rng.choice(train, size=sample, replace=False))
        self.code_centres = None
        out, _ = self._encode_activations(images, train, batch_size)
        self.code_centres = {space: l2_normalise(a).mean(axis=0, dtype=np.float64).astype(np.float32).tolist() for space, a in out.items()}

    def _encode_activations(self, images: ImageSet, indices: np.ndarray | None, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """The raw activations of each code space (not centred, not normalised), and logits."""
        self._require_fitted()
        t = torch()
        assert self.image_size is not None and self.channels is not None and self.mean is not None and self.std is not None
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        if getattr(self, "warn_on_resize", True):
            check_input_shape(images, indices, size=self.image_size, channels=self.channels, what=f"this {self.name} model")  # type: ignore[attr-defined]
        device = self._device()
        net = self._inference_net(device, len(indices))
        normalise = Normalise(self.mean, self.std)
        out: dict[str, np.ndarray] = {}
        logits: np.ndarray | None = None
        with t.no_grad():
            for start in progress_batches(len(indices), batch_size, progress=self.train_cfg.progress, desc=f"encode {self.name}"):  # type: ignore[attr-defined]
                batch = images.load(indices[start : start + batch_size], size=self.image_size, channels=self.channels)
                acts = net(normalise(to_tensor(batch, device)))
                for space, layer in self.space_layers.items():
                    a = acts[layer].float().cpu().numpy()
                    if space not in out:
                        out[space] = np.empty((len(indices), a.shape[1]), np.float32)
                    out[space][start : start + len(a)] = a
                if "logits" in acts and getattr(self, "has_classifier", False):
                    lg = acts["logits"].float().cpu().numpy()
                    if logits is None:
                        logits = np.empty((len(indices), lg.shape[1]), np.float32)
                    logits[start : start + len(lg)] = lg
        if not out:  # no items
            dims = self.space_dims()
            out = {space: np.zeros((0, dims[space]), np.float32) for space in self.space_layers}
        return out, logits

    def _inference_net(self, device, n_items: int):
        """What encodes a batch of ``n_items`` images: the net itself (a frozen encoder returns
        a faster engine, graphret.encoders.inference)."""
        return self.net.to(device).eval()

    def space_dims(self) -> dict[str, int]:
        """Code dimension of each space."""
        raise NotImplementedError

    def _common_config(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "channels": self.channels,
            "mean": self.mean,
            "std": self.std,
            "train": self.train_cfg.to_json(),
            "history": self.history.to_json() if self.history is not None else None,
            "spaces": {k: int(v) for k, v in self.space_dims().items()} if self.net is not None else None,
            "code_centres": self.code_centres,
        }

    def _restore_common(self, config: dict[str, Any]) -> None:
        self.image_size = int(config["image_size"])
        self.channels = int(config["channels"])
        self.mean = [float(v) for v in config["mean"]]
        self.std = [float(v) for v in config["std"]]
        self.code_centres = config.get("code_centres")
        if config.get("history"):
            h = config["history"]
            self.history = History(
                epochs=[EpochRecord(**e) for e in h.get("epochs", [])],
                best_epoch=h.get("best_epoch"),
                best_val=h.get("best_val"),
                stopped=h.get("stopped", ""),
                val_name=h.get("val_name", ""),
            )


# --------------------------------------------------------------------------- one call to train


def training_indices(images: ImageSet) -> tuple[np.ndarray, np.ndarray | None]:
    """(train, validation) row positions: the train split (every item when the source has no
    train split) and the val split when there is one."""
    splits = set(np.asarray(images.splits).astype(str))
    train = images.indices_of(["train"]) if "train" in splits else np.arange(len(images))
    validation = images.indices_of(["val"]) if "val" in splits else None
    if len(train) == 0:
        raise InputError(f"{images.source} has no images to train on; check the source")
    return train, validation


def train_encoder(images: ImageSet, name: str, *, seed: int = 0, **options: Any):
    """Make the encoder ``name`` with ``options`` and fit it on the source's train split (val
    split for early stopping): what `graphret train` runs."""
    from graphret.encoders import make_encoder

    encoder = make_encoder(name, **options)
    train, validation = training_indices(images)
    return encoder.fit(images, train, seed=seed, validation=validation)
