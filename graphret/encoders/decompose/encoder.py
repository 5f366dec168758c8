"""The decomposing encoder itself (:class:`DecomposingEncoder`): options, labels and
supervision, two-stage training (warm-up, then k-means++ codebooks and the quantised objective),
the null-space projection of the normal code, encoding into the ``normal`` / ``abnormal`` /
``both`` spaces, the decoders' outputs, and save / load."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder, l2_normalise
from graphret.encoders.decompose.codes import composite_code
from graphret.encoders.decompose.options import DecomposeOptions
from graphret.encoders.decompose.spec import MAX_SET_CODE_FINDINGS, NetSpec
from graphret.encoders.training import (
    SMALL_SET_ITEMS,
    Augment,
    Normalise,
    batch_size_for,
    TorchEncoder,
    channel_stats,
    holdout,
    load_module_state,
    module_state,
    progress_batches,
    seed_everything,
    to_tensor,
    torch,
    Validation,
    train_loop,
    training_epochs,
)
from graphret.errors import InputError

#: Default training length: epochs enough to see this many images (:meth:`DecomposingEncoder._training_plan`).
DEFAULT_IMAGES_SEEN = 50_000
#: Default batch size below the shared small-set size (more steps: six objectives share them).
SMALL_SET_BATCH = 32
#: Context blocks of the segmentation decoder when the mask channels are the targets (``seg_context`` None).
DEFAULT_SEG_CONTEXT = 2
#: Class or label names read as "normal" when ``normal_class`` is not given (any case).
NORMAL_NAMES = ("normal", "no finding", "no_finding", "nofinding", "healthy", "negative")


class DecomposingEncoder(TorchEncoder, Encoder):
    """Normal and abnormal codes from one encoder (see the package docstring,
    :mod:`graphret.encoders.decompose`).

    Options: the model's, :class:`~graphret.encoders.decompose.options.DecomposeOptions` (given as
    ``options``, or by name as keywords, which override it), ``image_size`` and ``channels``
    (default: the training images'), and the training options of
    :class:`graphret.encoders.config.TrainingConfig`.
    """

    name: ClassVar[str] = "decompose"
    has_classifier: ClassVar[bool] = False

    def __init__(self, options: DecomposeOptions | None = None, *, image_size: int | None = None, channels: int | None = None,
                 **keywords: Any) -> None:
        names = {f.name for f in dataclasses.fields(DecomposeOptions)}
        chosen = {k: keywords.pop(k) for k in list(keywords) if k in names}
        self._init_training(keywords)
        #: the model's options (checked when made)
        self.options = dataclasses.replace(options or DecomposeOptions(), **chosen)
        self.warmup_history: dict[str, Any] | None = None
        self.normal_null: np.ndarray | None = None
        self.image_size = image_size
        self.channels = channels
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        # learned from the data at fit time
        self.mode: str | None = None  # "masks" or "labels"
        self.task: str | None = None
        self.target_names: list[str] = []
        self.seg_names: list[str] = []
        self.normal_index: int | None = None  # multi-class: the normal class; multi-label: the normal column or None
        self.target_kind: str | None = None  # "multilabel", "binary" or "multiclass"
        self.pos_weight: list[float] | None = None
        #: per target, the logit at which the detector decides "present" (probability 0.5 of
        #: the codes' gate): chosen on held-out items (:meth:`_calibrate`), else log(pos_weight)
        self.decision_logits: list[float] | None = None
        #: per segmentation channel, the logit above which a pixel is in the finding's mask
        #: (:meth:`segment_masks`): chosen on held-out items for the best Dice, else 0
        self.mask_logits: list[float] | None = None
        #: the abnormal code is the finding-set code (one mask channel per target and at most
        #: MAX_SET_CODE_FINDINGS of them; models saved before it keep their per-finding code)
        self.finding_sets = False
        #: the image-level logits come from the segmentation decoder (:meth:`_seg_detects`);
        #: models saved before it keep the rule of their time (one mask channel per target)
        self.seg_detector = False
        self.term_history: list[dict[str, float]] = []  # mean loss terms per epoch

    # ------------------------------------------------------------------ spaces

    @property
    def description(self) -> str:
        mode = self.mode or self.options.supervision
        return (f"decomposing encoder (normal / abnormal VQ codes, {self.options.latent_dim}-d entries, codebooks "
                f"{self.options.normal_codebook}/{self.options.abnormal_codebook}, {self.options.vq} updates, {mode} supervision), default = both, L2-normalised")

    @property
    def space_layers(self) -> dict[str, str]:
        return {"normal": "normal", "abnormal": "abnormal"}

    def space_dims(self) -> dict[str, int]:
        d = self.net.dims()
        return {"normal": d["normal"], "abnormal": d["abnormal"], "both": d["normal"] + d["abnormal"], DEFAULT_SPACE: d["normal"] + d["abnormal"]}

    @property
    def normal_dim(self) -> int:
        """Dimension of the ``normal`` space: where ``both`` codes split (:func:`split_both`)."""
        self._require_fitted()
        return int(self.net.dims()["normal"])

    # ------------------------------------------------------------------ labels

    def _resolve_normal(self, names: list[str]) -> int | None:
        wanted = self.options.normal_class
        if wanted is None:
            for i, n in enumerate(names):
                if str(n).strip().lower() in NORMAL_NAMES:
                    return i
            return None
        if isinstance(wanted, (int, np.integer)) and not isinstance(wanted, bool):
            if not 0 <= int(wanted) < len(names):
                raise InputError(f"normal_class={wanted} is not a class index (0..{len(names) - 1}); use {{normal_class=NAME}}", param="normal_class")
            return int(wanted)
        lowered = [str(n).strip().lower() for n in names]
        if str(wanted).strip().lower() in lowered:
            return lowered.index(str(wanted).strip().lower())
        if str(wanted).isdigit() and 0 <= int(wanted) < len(names):
            return int(wanted)
        raise InputError(f"normal_class={wanted!r} is not one of the classes ({', '.join(map(str, names))}); use {{normal_class=NAME}}", param="normal_class")

    def _targets(self, images: ImageSet) -> tuple[np.ndarray | None, np.ndarray]:
        """(discrimination targets for every item, abnormal flag (N,) int8: 1 / 0 / -1 unknown).

        Targets: multi-label (N, T) int8 with -1 unknown; binary (N, 1) int8; multi-class
        (N,) int64 with -1 unknown.  None when the set has no labels."""
        n = len(images)
        if images.labels is None or images.task == "unlabelled":
            return None, np.full(n, -1, np.int8)
        labels = np.asarray(images.labels)
        names = list(images.class_names) or [str(c) for c in range(labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1)]
        if images.task == "multilabel":
            normal = self._resolve_normal(names)
            keep = [c for c in range(labels.shape[1]) if c != normal]
            y = labels[:, keep].astype(np.int8)
            abnormal = np.full(n, -1, np.int8)
            abnormal[(y == 1).any(axis=1)] = 1
            abnormal[(y == 0).all(axis=1)] = 0
            if normal is not None:
                abnormal[(labels[:, normal] == 1) & ~(y == 1).any(axis=1)] = 0
            self.target_kind, self.normal_index = "multilabel", normal
            self.target_names = [names[c] for c in keep]
            return y, abnormal
        normal = self._resolve_normal(names)
        if normal is None:
            raise InputError(
                f"the decompose encoder must know which class is normal, and none of {', '.join(map(str, names))} is named so; "
                "pass {normal_class=NAME}", param="normal_class")
        self.normal_index = normal
        known = labels >= 0
        abnormal = np.where(known, (labels != normal).astype(np.int8), np.int8(-1)).astype(np.int8)
        if len(names) <= 2:
            self.target_kind = "binary"
            self.target_names = [f"not {names[normal]}"]
            return abnormal[:, None].copy(), abnormal
        self.target_kind = "multiclass"
        self.target_names = list(map(str, names))
        return labels.astype(np.int64), abnormal

    # ------------------------------------------------------------------ fit

    def _spec(self) -> NetSpec:
        assert self.image_size is not None and self.channels is not None
        return NetSpec(channels=self.channels, image_size=self.image_size, latent_dim=self.options.latent_dim,
                       normal_codebook=self.options.normal_codebook, abnormal_codebook=self.options.abnormal_codebook,
                       seg_channels=max(1, len(self.seg_names)), n_targets=len(self.target_names), width=self.options.width,
                       vq=self.options.vq, commitment=self.options.commitment, decay=self.options.ema_decay,
                       multiclass_targets=self.target_kind == "multiclass", normal_target=int(self.normal_index or 0),
                       abnormal_gate=self.options.abnormal_gate,
                       logit_shift=self._logit_shift(),
                       seg_detects=self.seg_detector,
                       mirror_average=self.seg_detector and bool(self.train_cfg.augment),
                       shift_average=self._shift_average(),
                       finding_sets=self.finding_sets, seg_context=self._seg_context())

    def _shift_average(self) -> bool:
        """Whether the detector's test-time views include the one-pixel shifts: ``shift_average``,
        by default on for multi-label findings with masks (the demo, where it was measured:
        :class:`~graphret.encoders.decompose.options.DecomposeOptions`), else off."""
        if self.options.shift_average is not None:
            return bool(self.options.shift_average)
        return self.seg_detector and self._cell_targets() == "channels" and self.target_kind == "multilabel"

    def _seg_context(self) -> int:
        """The segmentation decoder's context blocks: ``seg_context``, by default 2 wherever the
        segmentation decoder is the detector (:meth:`_seg_detects`: measured on the demo,
        benchmarks/results/decompose/variants.md; on PneumoniaMNIST, seeds 0 / 1, abnormal P@10
        0.850 / 0.835 -> 0.867 / 0.856, detection AUC 0.955 / 0.961 -> 0.975 / 0.965, normal
        +0.094 / +0.093 -> +0.094 / +0.117 above the base rate), else 0."""
        if self.options.seg_context is not None:
            return int(self.options.seg_context)
        return DEFAULT_SEG_CONTEXT if self._seg_detects() else 0

    def _logit_shift(self) -> tuple[float, ...]:
        """Per target, the logit the codes' gate subtracts before the sigmoid: the calibrated
        :attr:`decision_logits`, else ``log(pos_weight)`` (undoing the positives' weighting)."""
        if self.decision_logits:
            return tuple(self.decision_logits)
        return tuple(math.log(w) for w in self.pos_weight) if self.pos_weight else ()

    def _build(self):
        from graphret.encoders.decompose.networks import DecomposeNet  # imports torch

        return DecomposeNet(self._spec())

    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "DecomposingEncoder":
        """Train in steps: supervision from the labels and masks, a held-out validation split
        when none is given, the network, the objective over the batches, the two training
        stages, then the code spaces' centre and the normal code's null space."""
        from graphret.encoders.decompose.objective import Batches, Objective

        train = np.asarray(train, dtype=np.int64)
        if len(train) < 2:
            raise InputError("the decompose encoder needs at least 2 training images")
        targets, abnormal = self._supervision(images, train)
        if validation is None or len(validation) == 0:
            strata = abnormal if (abnormal >= 0).all() else None
            train, validation = holdout(train, strata, seed=seed)
        self.seg_detector = self._seg_detects()
        self.finding_sets = self.seg_detector and len(self.seg_names) <= MAX_SET_CODE_FINDINGS
        self._resolve_shape(images, train, self.image_size, self.channels)
        device = self._device()
        cfg = self.train_cfg
        data = self._batches(images, train)
        self.mean, self.std = channel_stats(data)
        seed_everything(seed)
        self.net = self._build()
        net = self.net.to(device)
        multiclass = self.target_kind == "multiclass"
        masks = images.masks if self.mode == "masks" else None
        common = dict(masks=masks, size=self.image_size, targets=targets, abnormal=abnormal, multiclass=multiclass, device=device)
        batches = Batches(data, train, augment=Augment(vflip=cfg.vflip) if cfg.augment else None, preload_bytes=cfg.preload_bytes, **common)
        val_batches = None
        if validation is not None and len(validation):
            validation = np.asarray(validation, dtype=np.int64)
            val_batches = Batches(self._batches(images, validation), validation, **common)
        objective = Objective(net, normalise=Normalise(self.mean, self.std), weights=self.options.weights, multiclass=multiclass,
                              pos_weight=None if multiclass else self.pos_weight, cell_targets=self._cell_targets(), device=device,
                              seg_class_weights=batches.mask_class_weights())
        self._train_stages(net, objective, batches, val_batches, seed=seed)
        self.net = net.cpu()
        self._calibrate(images, validation if validation is not None and len(validation) else train, targets)
        if self.options.centre:
            self._fit_code_centres(images, train, seed=seed)
        self.normal_null = None
        if self.options.null_directions > 0:
            self._fit_normal_null(images, train, targets, seed=seed)
        return self

    def _supervision(self, images: ImageSet, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decide the supervision mode and read the targets (see :meth:`_targets`; with masks and
        no labels, the labels are read off the masks) and the positives' weights; errors for a
        training set the encoder cannot learn from."""
        masks = getattr(images, "masks", None)
        has_masks = masks is not None and any(masks.has(int(i)) for i in train[: min(len(train), 2000)])
        if self.options.supervision == "masks" and not has_masks:
            raise InputError(f"{images.source} has no masks for its training images; attach them (graphret.data.masks) or use {{supervision=labels}}", param="supervision")
        self.mode = "masks" if (self.options.supervision == "masks" or (self.options.supervision == "auto" and has_masks)) else "labels"
        self.seg_names = list(masks.names) if self.mode == "masks" else ["abnormal"]
        targets, abnormal = self._targets(images)
        if targets is None:
            if self.mode != "masks":
                raise InputError(
                    f"the decompose encoder needs image-level labels (normal vs abnormal) or masks, and {images.source} has neither; "
                    "label the images or attach masks (graphret.data.masks)")
            targets, abnormal = self._targets_from_masks(images, train)
        self.task = images.task
        multiclass = self.target_kind == "multiclass"
        known = targets[train] >= 0 if multiclass else (targets[train] >= 0).any(axis=1)
        if not known.any() and self.mode == "labels":
            raise InputError("no training image has a label; label some as normal or abnormal, or attach masks")
        if not multiclass:
            if self.mode == "labels" and not ((abnormal[train] == 1).any() and (abnormal[train] == 0).any()):
                raise InputError("the training images are all normal or all abnormal; the decompose encoder needs both (or masks)")
            sub = targets[train]
            pos = (sub == 1).sum(axis=0).astype(np.float64)
            neg = (sub == 0).sum(axis=0).astype(np.float64)
            self.pos_weight = [float(v) for v in np.where(pos > 0, np.clip(neg / np.maximum(pos, 1), 0.1, 10.0), 1.0)]
        return targets, abnormal

    def _targets_from_masks(self, images: ImageSet, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Multi-label targets read off the masks of the training items: channel c is present
        when the mask has any of it (-1 for items without a mask)."""
        masks = images.masks
        present = np.full((len(images), len(self.seg_names)), -1, np.int8)
        for i in train:
            m = masks.get(int(i))
            if m is not None:
                present[i] = masks.decode(m).reshape(len(self.seg_names), -1).any(axis=1)
        abnormal = np.where((present >= 0).all(axis=1), (present == 1).any(axis=1).astype(np.int8), np.int8(-1)).astype(np.int8)
        self.target_kind, self.target_names, self.normal_index = "multilabel", list(self.seg_names), None
        return present, abnormal

    def _cell_targets(self) -> str | None:
        """How the masks supervise the discrimination head's cells: "channels" when the mask
        channels are the targets (e.g. the demo's findings), "union" when the target is one
        abnormal flag, None otherwise (or without masks)."""
        if self.mode != "masks" or self.target_kind == "multiclass":
            return None
        if [str(n) for n in self.seg_names] == [str(n) for n in self.target_names]:
            return "channels"
        return "union" if len(self.target_names) == 1 else None

    def _seg_detects(self) -> bool:
        """Whether the image-level logits come from the segmentation decoder (each target's
        channel's smooth maximum, mirror-averaged, and the finding-set abnormal code): with
        one mask channel per target (the demo's findings), and with labels only when the one
        target is normal vs abnormal (the one segmentation channel is then that target's).
        The segmentation decoder reads the trunk's continuous outputs through its skips, where
        the abnormal map's cells are one of ``abnormal_codebook`` entries: on PneumoniaMNIST
        (default build, seed 0) the smooth maximum of its logits, trained only by the
        multiple-instance term, already had test AUC 0.945 against the cell head's 0.929."""
        if self._cell_targets() == "channels":
            return True
        return self.mode == "labels" and self.target_kind == "binary" and len(self.target_names) == 1

    def _calibrate(self, images: ImageSet, rows: np.ndarray, targets: np.ndarray) -> None:
        """Set each target's decision logit where the accuracy on ``rows`` (the held-out split)
        is best (:func:`~graphret.encoders.decompose.calibration.accuracy_thresholds`); a target
        with too few known positives or negatives there keeps ``log(pos_weight)``.  Multi-class
        targets (a softmax over the classes) are left as they are.  Then the masks' cuts
        (:meth:`calibrate_masks`)."""
        from graphret.encoders.decompose.calibration import accuracy_thresholds

        self.calibrate_masks(images, rows)
        self.decision_logits = None
        if self.target_kind == "multiclass" or not self.pos_weight:
            return
        rows = np.asarray(rows, dtype=np.int64)
        found = accuracy_thresholds(self.image_logits(images, rows), targets[rows])
        self.decision_logits = [math.log(w) if t is None else t for t, w in zip(found, self.pos_weight)]
        self.net.spec = self._spec()

    def calibrate_masks(self, images: ImageSet, rows: np.ndarray) -> None:
        """Set each segmentation channel's mask cut (:attr:`mask_logits`) where the Dice of the
        items of ``rows`` that have masks is best
        (:func:`~graphret.encoders.decompose.calibration.dice_thresholds`); a channel present in
        too few of them keeps 0 (probability 0.5).  Without masks, every cut is 0."""
        from graphret.encoders.decompose.calibration import dice_thresholds

        self.mask_logits = None
        if self.mode != "masks":
            return
        rows = np.asarray(rows, dtype=np.int64)
        masks, known = images.masks.load(rows, size=self.image_size)
        if not known.any():
            return
        found = dice_thresholds(self._segment_logits(images, rows[known]), masks[known] >= 128)
        self.mask_logits = [0.0 if t is None else t for t in found]

    def _training_plan(self, n_train: int):
        """The training config with this encoder's defaults filled in: without ``epochs`` or
        ``work``, epochs enough to see :data:`DEFAULT_IMAGES_SEEN` images (within [3, 60]);
        without ``batch_size``, :data:`SMALL_SET_BATCH` below the shared small-set size.  The
        shared default (about 20k images in batches of 64) left the segmentation loss still
        falling on the demo set (16 epochs, 162 CPU s: nodule AUC 0.70, Dice 0.08)."""
        cfg = self.train_cfg
        if cfg.epochs is None and cfg.work is None:
            cfg = dataclasses.replace(cfg, epochs=int(min(60, max(3, round(DEFAULT_IMAGES_SEEN / max(n_train, 1))))))
        if cfg.batch_size is None and n_train < SMALL_SET_ITEMS:
            cfg = dataclasses.replace(cfg, batch_size=SMALL_SET_BATCH)
        return cfg

    def _train_stages(self, net, objective, batches, val_batches, *, seed: int) -> None:
        """Stage 1: ``vq_warmup`` of the epochs without quantisation (skipped when resuming a
        checkpoint), then both codebooks start from k-means++; stage 2: the whole objective
        with quantised codes, keeping the best validation epoch."""
        from graphret.encoders.decompose.objective import TermLog

        cfg = self._training_plan(len(batches))
        log = TermLog()

        def step(rows, generator):
            parts = objective.terms(batches.get(rows, generator))
            log.add(parts)
            return objective.total(parts)

        epochs = training_epochs(cfg, len(batches), self.image_size, self.channels)
        warm = min(int(round(self.options.vq_warmup * epochs)), epochs - 1)
        resuming = cfg.resume and cfg.checkpoint is not None and os.path.exists(cfg.checkpoint)
        self.warmup_history = None
        if not resuming:
            if warm > 0:
                warm_cfg = dataclasses.replace(cfg, epochs=warm, min_epochs=warm, checkpoint=None, resume=False)
                warm_seed = int(np.random.SeedSequence([int(seed), 0x3A4]).generate_state(1)[0] % (2**31))
                self.warmup_history = train_loop(net, n_train=len(batches), step=step, validation=None, cfg=warm_cfg, seed=warm_seed,
                                                 fingerprint={"encoder": self.name, "stage": "warm-up"}, desc="decompose warm-up",
                                                 on_epoch=log.close_epoch).to_json()
                log.close_epoch()
            self._start_codebooks(net, batches.data, seed=seed, device=self._device(), batch_size=batch_size_for(cfg, len(batches)))
        validation = self._epoch_selection(objective, val_batches)
        self.history = train_loop(net, n_train=len(batches), step=step, validation=validation, cfg=dataclasses.replace(cfg, epochs=epochs - warm),
                                  seed=seed, fingerprint=self._fingerprint(cfg, seed, len(batches)), desc="decompose",
                                  on_epoch=log.close_epoch)
        log.close_epoch()
        self.term_history = log.history

    def _epoch_selection(self, objective, val_batches):
        """The held-out figure that keeps the best epoch (``select_epoch``): the total loss, or
        (multi-label findings with masks) the exact-set accuracy
        (:func:`~graphret.encoders.decompose.calibration.exact_set_accuracy` at the held-out
        items' own accuracy-best cuts), ties broken by the mean per-finding accuracy."""
        from graphret.encoders.decompose.calibration import exact_set_accuracy

        if val_batches is None:
            return None
        if self.options.select_epoch == "loss" or self._cell_targets() != "channels" or self.target_kind != "multilabel":
            return Validation(lambda: objective.validation_loss(val_batches), "val_loss", higher_is_better=False)
        targets = val_batches.y.numpy()

        def score():
            # unshifted views: the shifted ones would cost ~4 CPU s an epoch on the demo
            logits = np.concatenate([objective.net.detect(objective.normalise(b.x), shifts=False).float().cpu().numpy() for b in val_batches.chunks()])
            return exact_set_accuracy(logits, targets)

        return Validation(score, "val_exact_set", higher_is_better=True)

    def _start_codebooks(self, net, data, *, seed: int, device, batch_size: int, sample: int = 1024) -> None:
        """Start both codebooks by k-means++ on the encoder's outputs for (a seeded sample of
        at most ``sample``) training images, and switch quantisation on."""
        t = torch()
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC0DE]))
        rows = np.sort(rng.choice(len(data), size=min(sample, len(data)), replace=False))
        normalise = Normalise(self.mean, self.std)
        outs: dict[str, list] = {"normal": [], "abnormal": []}
        net.eval()
        with t.no_grad():
            for start in range(0, len(rows), 256):
                for key, z in net.continuous_maps(normalise(data.get(rows[start : start + 256], device))).items():
                    outs[key].append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float())
        g = t.Generator().manual_seed(int(np.random.SeedSequence([int(seed), 0xC0DF]).generate_state(1)[0]))
        for key, vqm in (("normal", net.vq_normal), ("abnormal", net.vq_abnormal)):
            z = t.cat(outs[key]).cpu()
            vqm.start_codebook(z.to(vqm.embed.device), g, scale=batch_size / max(len(rows), 1))
        net.train()

    # ------------------------------------------------------------------ encode

    def _fit_normal_null(self, images: ImageSet, train: np.ndarray, targets: np.ndarray, *, seed: int, sample: int = 4096) -> None:
        """Iterative null-space projection (Ravfogel et al. 2020) of the normal code: fit ridge
        regressions of the labels on the (centred unit) normal codes of training items, remove
        those directions, and repeat ``null_directions`` times; the removed orthonormal
        directions are kept and projected out of every normal code."""
        train = np.asarray(train, dtype=np.int64)
        if self.target_kind == "multiclass":
            y_all = np.full((len(images), len(self.target_names)), np.nan)
            known = targets >= 0
            y_all[known] = np.eye(len(self.target_names))[targets[known]]
        else:
            y_all = np.where(targets >= 0, (targets == 1).astype(np.float64), np.nan)
        rows = train[~np.isnan(y_all[train]).all(axis=1)]
        if len(rows) > sample:
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4E11]))
            rows = np.sort(rng.choice(rows, size=sample, replace=False))
        if len(rows) < 10:
            return
        x = self._normal_codes(images, rows).astype(np.float64)
        y = y_all[rows]
        basis = np.zeros((0, x.shape[1]))
        usable = [c for c in range(y.shape[1]) if (~np.isnan(y[:, c])).sum() >= 10 and np.ptp(y[~np.isnan(y[:, c]), c]) > 0]
        groups: dict[bytes, list[int]] = {}  # targets known on the same rows share one ridge system (one solve)
        for c in usable:
            groups.setdefault((~np.isnan(y[:, c])).tobytes(), []).append(c)
        for _ in range(self.options.null_directions):
            xr = x - (x @ basis.T) @ basis if len(basis) else x
            dirs = []
            for cols in groups.values():
                ok = ~np.isnan(y[:, cols[0]])
                xc = xr[ok] - xr[ok].mean(axis=0)
                yc = y[ok][:, cols] - y[ok][:, cols].mean(axis=0)
                gram = xc.T @ xc
                w = np.linalg.solve(gram + 1e-3 * np.trace(gram) / len(gram) * np.eye(len(gram)), xc.T @ yc)
                dirs.extend(w.T)
            if not dirs:
                break
            d = np.array(dirs)
            d = d - (d @ basis.T) @ basis if len(basis) else d
            q, r = np.linalg.qr(d.T)
            keep = np.abs(np.diag(r)) > 1e-8 * max(1.0, np.abs(np.diag(r)).max())
            basis = np.vstack([basis, q[:, keep].T])
        self.normal_null = basis.astype(np.float32)

    def _normal_codes(self, images: ImageSet, indices: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Centred unit normal codes before the null-space projection."""
        null, self.normal_null = getattr(self, "normal_null", None), None
        try:
            spaces, _ = self._encode_spaces(images, indices, batch_size)
        finally:
            self.normal_null = null
        return spaces["normal"]

    def _fit_code_centres(self, images: ImageSet, train: np.ndarray, *, seed: int, **kw) -> None:
        """Centre the normal space only: the abnormal code has no shared offset to remove (its
        normal-looking cells are gated out), and every image without an abnormal cell has the
        same code, which centring would turn into a zero vector."""
        super()._fit_code_centres(images, train, seed=seed, **kw)
        if self.code_centres:
            self.code_centres.pop("abnormal", None)

    def _encode_spaces(self, images, indices, batch_size):
        spaces, logits = super()._encode_spaces(images, indices, batch_size)
        a = spaces["abnormal"]
        empty = np.linalg.norm(a, axis=1) < 1e-12  # abnormal cells whose features are all zero
        if empty.any():
            a[empty, -1] = 1.0
        null = getattr(self, "normal_null", None)
        if null is not None and len(null) and len(spaces["normal"]):
            x = spaces["normal"]
            spaces["normal"] = l2_normalise(x - (x @ null.T) @ null)
        return spaces, logits

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> Encoded:
        spaces, _ = self._encode_spaces(images, indices, batch_size)
        both = composite_code(spaces["normal"], spaces["abnormal"]) if len(spaces["normal"]) else np.zeros((0, self.space_dims()["both"]), np.float32)
        spaces["both"] = both
        spaces[DEFAULT_SPACE] = both  # the same array: "default" is "both"
        return Encoded(spaces=spaces)

    def _run(self, images: ImageSet, indices: np.ndarray | None, batch_size: int, fn) -> list:
        """fn(net, normalised batch, raw batch) per batch, in eval mode without gradients."""
        self._require_fitted()
        t = torch()
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        device = self._device()
        net = self.net.to(device).eval()
        normalise = Normalise(self.mean, self.std)
        out = []
        with t.no_grad():
            for start in progress_batches(len(indices), batch_size, progress=self.train_cfg.progress, desc=f"run {self.name}"):
                x = to_tensor(images.load(indices[start : start + batch_size], size=self.image_size, channels=self.channels), device)
                out.append(fn(net, normalise(x), x))
        return out

    @staticmethod
    def _to_uint8(y) -> np.ndarray:
        return np.clip(np.round(y.permute(0, 2, 3, 1).float().cpu().numpy() * 255.0), 0, 255).astype(np.uint8)

    def reconstruct(self, images: ImageSet, indices: np.ndarray | None = None, *, normal: bool = False, batch_size: int = 256) -> np.ndarray:
        """The image decoder's output for the items, uint8 (n, H, W, C) at the model's size:
        conditioned on the segmentation logits (the reconstruction), or, with ``normal``, on
        zeros (the normal-appearing image)."""

        def fn(net, x, _raw):
            qn, qa, _ = net.latents(x)
            cond = net.condition(net.segment(qa))
            return self._to_uint8(net.decode(qn, None if normal else cond))

        parts = self._run(images, indices, batch_size, fn)
        return np.concatenate(parts) if parts else np.zeros((0, self.image_size, self.image_size, self.channels), np.uint8)

    def normal_appearing(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The normal-appearing reconstruction of the items (segmentation logits zeroed):
        uint8 (n, H, W, C) at the model's size, for the montage of composite queries."""
        return self.reconstruct(images, indices, normal=True, batch_size=batch_size)

    def _segment_logits(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The segmentation logits, float32 (n, C, H, W), averaged with the mirror image's when
        the detector does so (``DecomposeNet.segment_image``)."""
        parts = self._run(images, indices, batch_size, lambda net, x, _raw: net.segment_image(x).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.seg_names), self.image_size, self.image_size), np.float32)

    def segment(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The segmentation decoder's abnormality probabilities, float32 (n, C, H, W) (C: the
        mask channels, ``seg_names``; one ``abnormal`` channel with labels-only supervision);
        see :meth:`segment_masks` for the decided masks."""
        return torch().sigmoid(torch().from_numpy(self._segment_logits(images, indices, batch_size=batch_size))).numpy()

    def segment_masks(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The predicted masks, bool (n, C, H, W): each channel's logit above its cut
        (:attr:`mask_logits`, calibrated for Dice on the held-out split; 0 when not calibrated)."""
        z = self._segment_logits(images, indices, batch_size=batch_size)
        cuts = np.asarray(self.mask_logits if self.mask_logits else [0.0] * z.shape[1], dtype=np.float32)
        return z > cuts[None, :, None, None]

    def composite_image(self, images: ImageSet, normal_of: np.ndarray, abnormal_of: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """Images decoded from item A's normal map conditioned on item B's segmentation logits
        (A's anatomy with B's abnormality where B has it), uint8 (n, H, W, C), one per pair
        (``normal_of[i]``, ``abnormal_of[i]``)."""
        a = np.asarray(normal_of, dtype=np.int64)
        b = np.asarray(abnormal_of, dtype=np.int64)
        if a.shape != b.shape:
            raise InputError(f"{len(a)} normal items and {len(b)} abnormal items; give one of each per composite")
        qn = self._run(images, a, batch_size, lambda net, x, _raw: net.latents(x)[0])
        cond = self._run(images, b, batch_size, lambda net, x, _raw: net.condition(net.segment(net.latents(x)[1])))
        t = torch()
        with t.no_grad():
            out = [self._to_uint8(self.net.decode(q, c)) for q, c in zip(qn, cond)]
        return np.concatenate(out) if out else np.zeros((0, self.image_size, self.image_size, self.channels), np.uint8)

    def image_logits(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The discrimination head's image-level logits per target (``target_names``), float32 (n, T)."""
        parts = self._run(images, indices, batch_size, lambda net, x, _raw: net.detect(x).float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.target_names)), np.float32)

    def discriminate(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> np.ndarray:
        """The discrimination head's probabilities per target (``target_names``), float32 (n, T):
        sigmoid per label (multi-label, binary), softmax over the classes (multi-class)."""
        t = torch()
        logits = t.from_numpy(self.image_logits(images, indices, batch_size=batch_size))
        return (t.softmax(logits, 1) if self.target_kind == "multiclass" else t.sigmoid(logits)).numpy()

    # ------------------------------------------------------------------ save / load

    def _model_config(self) -> dict[str, Any]:
        options = self.options.to_json()
        if isinstance(options["normal_class"], np.integer):
            options["normal_class"] = int(options["normal_class"])
        return {
            **options,
            "image_size": self.image_size,
            "channels": self.channels,
        }

    def config(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            **self._model_config(),
            **self._common_config(),
            "mode": self.mode,
            "task": self.task,
            "target_kind": self.target_kind,
            "target_names": self.target_names,
            "seg_names": self.seg_names,
            "normal_index": self.normal_index,
            "pos_weight": self.pos_weight,
            "decision_logits": self.decision_logits,
            "mask_logits": self.mask_logits,
            "finding_sets": self.finding_sets,
            "seg_detector": self.seg_detector,
            "normal_dim": self.normal_dim,
            "loss_terms": self.term_history,
            "warmup": self.warmup_history,
        }

    def state(self) -> dict[str, Any]:
        self._require_fitted()
        t = torch()
        state = {"net": module_state(self.net)}
        if getattr(self, "normal_null", None) is not None:
            state["normal_null"] = t.from_numpy(np.ascontiguousarray(self.normal_null))
        return state

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "DecomposingEncoder":
        keys = {f.name for f in dataclasses.fields(DecomposeOptions)}
        saved = {k: config[k] for k in keys if k in config}
        saved.setdefault("shift_average", False)  # saved before the option: its decision logits were calibrated without
        enc = cls(DecomposeOptions(**saved), **(config.get("train") or {}))
        enc._restore_common(config)
        enc.mode = config["mode"]
        enc.task = config.get("task")
        enc.target_kind = config["target_kind"]
        enc.target_names = list(config["target_names"])
        enc.seg_names = list(config["seg_names"])
        enc.normal_index = config.get("normal_index")
        enc.pos_weight = config.get("pos_weight")
        enc.decision_logits = config.get("decision_logits")
        enc.mask_logits = config.get("mask_logits")
        enc.finding_sets = bool(config.get("finding_sets", False))
        enc.seg_detector = bool(config.get("seg_detector", enc._cell_targets() == "channels"))
        enc.term_history = list(config.get("loss_terms") or [])
        enc.warmup_history = config.get("warmup")
        blocks = len({k.split(".")[1] for k in state["net"] if k.startswith("seg_context.")})
        if enc.options.seg_context is None and enc._seg_context() != blocks:  # "auto" saved under an earlier rule, or before the option
            enc.options = dataclasses.replace(enc.options, seg_context=blocks)
        enc.net = enc._build()
        load_module_state(enc.net, state["net"], "decompose")
        null = state.get("normal_null")
        enc.normal_null = None if null is None else null.numpy().astype(np.float32)
        enc.net.eval()
        return enc


__all__ = ["DecomposingEncoder"]
