"""What graphret's torch encoders share: their training options, input shape, normalisation,
one call of the training loop, code centring, batched encoding and the saved config.

An encoder supplies its network (``self.net``: forward returns a dict of named activations),
its ``step`` (one batch's loss) and its ``validate`` (the figure early stopping follows); this
base does the rest once.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.config import TrainingConfig
from graphret.encoders.training.batches import (
    ImageBatches,
    Normalise,
    check_input_shape,
    progress_batches,
    to_tensor,
)
from graphret.encoders.training.budget import (
    DEFAULT_LR,
    DEFAULT_PATIENCE,
    MAX_AUTO_SIZE,
)
from graphret.encoders.training.device import choose_device, set_threads, torch
from graphret.encoders.training.history import History
from graphret.encoders.training.loop import Validation, train_loop
from graphret.errors import InputError

TRAIN_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainingConfig))


def split_options(options: dict[str, Any], *, lr: float = DEFAULT_LR, patience: int = DEFAULT_PATIENCE) -> tuple[TrainingConfig, dict[str, Any]]:
    """Split keyword options into a :class:`TrainingConfig` (its unset learning rate and
    patience given the encoder's defaults ``lr`` and ``patience``) and the rest (the model's
    own options)."""
    train = {k: v for k, v in options.items() if k in TRAIN_OPTIONS}
    rest = {k: v for k, v in options.items() if k not in TRAIN_OPTIONS}
    cfg = TrainingConfig(**train)
    return cfg.with_defaults(lr=lr, patience=patience), rest


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
    train_cfg: TrainingConfig
    history: History | None

    def _init_training(self, options: dict[str, Any], **defaults: Any) -> None:
        self.train_cfg, rest = split_options(options, **defaults)
        if rest:
            name = sorted(rest)[0]
            raise InputError(f"the {self.name} encoder has no option {name!r}; see `graphret train --help` for the options")  # type: ignore[attr-defined]
        self.history = None
        self.net = None
        self.code_centres: dict[str, list[float]] | None = None

    def _fingerprint(self, cfg: TrainingConfig, seed: int, n_train: int) -> dict[str, Any]:
        """What a training run's checkpoint must match to be resumed: the encoder, its model
        configuration, the training settings, the seed and the training set's size."""
        return {"encoder": self.name, "model": self._model_config(), "train": cfg.to_json(), "seed": seed,  # type: ignore[attr-defined]
                "n_train": int(n_train)}

    def _train(self, net, *, n_train: int, step: Callable[[np.ndarray, Any], Any], validate: Callable[[], Any] | None,
               seed: int, fingerprint: dict[str, Any] | None = None, centre_on: tuple[ImageSet, np.ndarray] | None = None,
               **loop_options: Any) -> None:
        """Run the shared loop on ``net`` (this encoder's network, on its device) with the
        encoder's ``step`` and ``validate``; keep the best weights on the CPU in ``self.net``
        and the run's history, then centre the codes on ``centre_on`` (images, training items)
        when the encoder centres.  ``loop_options``: val_name, higher_is_better, desc,
        on_epoch, parameters, input_shape (what the trained part takes, (side, channels), for a
        work budget; default the model's input image) (see :func:`train_loop`)."""
        fingerprint = fingerprint if fingerprint is not None else self._fingerprint(self.train_cfg, seed, n_train)
        figure = Validation(validate, loop_options.pop("val_name", "val"), loop_options.pop("higher_is_better", True))
        validation = figure if validate is not None else None
        input_shape = loop_options.pop("input_shape", (self.image_size, self.channels or 1))
        self.history = train_loop(net, n_train=n_train, step=step, validation=validation, cfg=self.train_cfg, seed=seed,
                                  fingerprint=fingerprint, input_shape=input_shape,
                                  **{"desc": self.name, **loop_options})  # type: ignore[attr-defined]
        self.net = net.cpu()
        if centre_on is not None and getattr(self, "centre", False):
            self._fit_code_centres(*centre_on, seed=seed)

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
            self.history = History.from_json(config["history"])
