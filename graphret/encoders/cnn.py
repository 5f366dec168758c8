"""Supervised CNN classifier encoder (Haq et al.; Qayyum et al.).

A CNN is trained to classify the images; the code is an inner layer's activation, L2-normalised:
the pooled penultimate feature by default (DenseNet-121: 1024-d, ResNet-18: 512-d, ResNet-50:
2048-d), FC1 / FC2 / FC3 for Qayyum et al.'s DCNN (:mod:`graphret.encoders.dcnn`).  The
classifier's predicted class and probabilities are kept per item for class-filtered search.

* Multi-class: cross-entropy; validation accuracy drives early stopping.
* Multi-label: binary cross-entropy with each label's positive examples weighted by its
  negative / positive ratio (Haq et al.), uncertain or unknown entries (-1) masked out of the
  loss (the CheXpert convention); the validation AUROC over every known (item, label) entry
  pooled drives early stopping (:func:`graphret.metrics.classification.pooled_auroc`; the masked
  loss breaking ties).  On the NIH chest X-rays the loss kept the first epoch of every run (small
  CNN test AUROC 0.481; 0.605 on an AUROC), and the labels' mean AUROC over 70 validation images,
  where some labels have a single positive, fell while test AUROC and retrieval rose
  (benchmarks/results/pretrained/README.md).  The
  "predicted class" of an item is its most probable label; ``probabilities`` are per-label.

Backbone ``"small"`` (:mod:`graphret.encoders.smallcnn`) is a 0.15 M-parameter VGG-style CNN for
quick CPU builds (the demo store in under a minute on two busy cores).

**Backbones** are torchvision's ResNet-18, ResNet-50 and DenseNet-121, trained from scratch (or
started from a local ImageNet state_dict with ``weights=PATH``), adapted to the input:

* the first convolution takes the images' channel count (1 grey, 3 colour); a loaded 3-channel
  ImageNet kernel is summed over its colour channels for grey input;
* the stem follows the image size: below 64 px the 7x7 stride-2 convolution becomes 3x3
  stride 1 (the max-pool stays, so a 28 px image enters the first block at 14x14: four times
  cheaper than MedMNIST's no-pool variant on a CPU, at no measurable loss); from 64 px to
  127 px the 7x7 stride-2 convolution stays and the max-pool goes; from 128 px the network is
  torchvision's unchanged.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder
from graphret.encoders.config import DEFAULT_BACKBONE, PRETRAINED_FROM_SIZE, SMALL_IMAGE_BACKBONE
from graphret.encoders import efficientnet_lite
from graphret.encoders.finetune import DEFAULT_TUNE_FROM, ENCODE_BATCH, FeatureCache, FitMaps, freeze_below, part_of, trained_input
from graphret.encoders.inference import frozen_runner
from graphret.encoders.training import (
    MAX_AUTO_SIZE,
    Augment,
    Normalise,
    TorchEncoder,
    channel_stats,
    holdout,
    load_module_state,
    module_state,
    seed_everything,
    torch,
)
from graphret.errors import InputError
from graphret.metrics.classification import pooled_auroc

BACKBONES = ("efficientnet_lite0", "resnet18", "resnet50", "densenet121", "dcnn", "small")
TORCHVISION_BACKBONES = ("resnet18", "resnet50", "densenet121")
#: Backbones that start from installed ImageNet weights and are fine-tuned (graphret.encoders.finetune).
PRETRAINED_BACKBONES = ("efficientnet_lite0",)
#: A pretrained backbone sees images at 224 px, its ImageNet training size (smaller ones upsampled,
#: larger ones reduced), unless ``image_size`` says otherwise.  Fine-tuned EfficientNet-Lite0 at
#: 224 against 64 px on the 28 px sets, default budget (benchmarks/results/pretrained): Acc@1
#: higher on all four (Breast +0.019, Retina +0.045, Pneumonia +0.003, blood cells +0.101), P@10
#: on three (blood +0.129; Breast -0.037), for 1-5x the build time.
PRETRAINED_IMAGE_SIZE = 224




def source_size(images: ImageSet, row: int = 0) -> int:
    """The larger side of the source's image at ``row`` (its first, by default)."""
    return int(max(np.asarray(images.image(int(row))).shape[:2]))


def default_backbone(images: ImageSet) -> str:
    """The backbone of a default build: DEFAULT_BACKBONE (ImageNet EfficientNet-Lite0, fine-tuned)
    for images of PRETRAINED_FROM_SIZE px and more, SMALL_IMAGE_BACKBONE (from scratch) for
    smaller ones (graphret.encoders.config says why)."""
    return DEFAULT_BACKBONE if len(images) and source_size(images) >= PRETRAINED_FROM_SIZE else SMALL_IMAGE_BACKBONE


def stem_for(image_size: int) -> str:
    """``"small"`` (< 64 px), ``"medium"`` (64-127 px) or ``"imagenet"`` (128 px and up)."""
    if image_size < 64:
        return "small"
    if image_size < 128:
        return "medium"
    return "imagenet"


def _adapt_conv(old, channels: int, kernel: int, stride: int, padding: int):
    nn = torch().nn
    return nn.Conv2d(channels, old.out_channels, kernel, stride, padding, bias=old.bias is not None)


def _torchvision_net_class():
    nn = torch().nn

    class _Net(nn.Module):
        """A torchvision backbone adapted to the input; forward -> {"penultimate", "logits"}."""

        def __init__(self, backbone: str, *, channels: int, image_size: int, num_outputs: int, stem: str | None = None, dropout: float = 0.0) -> None:
            super().__init__()
            import torchvision

            if backbone not in TORCHVISION_BACKBONES:
                raise InputError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
            model = getattr(torchvision.models, backbone)(weights=None)
            stem = stem or stem_for(image_size)
            self.backbone = backbone
            self.stem = stem
            if backbone.startswith("resnet"):
                if stem == "small":
                    model.conv1 = _adapt_conv(model.conv1, channels, 3, 1, 1)
                elif channels != 3:
                    model.conv1 = _adapt_conv(model.conv1, channels, 7, 2, 3)
                if stem == "medium":
                    model.maxpool = nn.Identity()
                dim = model.fc.in_features
                model.fc = nn.Identity()
                self.trunk = model
                self._resnet = True
            else:
                f = model.features
                if stem == "small":
                    f.conv0 = _adapt_conv(f.conv0, channels, 3, 1, 1)
                elif channels != 3:
                    f.conv0 = _adapt_conv(f.conv0, channels, 7, 2, 3)
                if stem == "medium":
                    f.pool0 = nn.Identity()
                dim = model.classifier.in_features
                model.classifier = nn.Identity()
                self.trunk = model
                self._resnet = False
            self.dim = dim
            self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
            self.head = nn.Linear(dim, num_outputs) if num_outputs else None

        def forward(self, x):
            f = self.trunk(x)  # pooled, flattened (ResNet: avgpool+flatten; DenseNet: relu+pool)
            out = {"penultimate": f}
            if self.head is not None:
                out["logits"] = self.head(self.drop(f))
            return out

        def dims(self) -> dict[str, int]:
            return {"penultimate": self.dim}

    return _Net


def build_network(backbone: str, *, channels: int, image_size: int, num_outputs: int, fc_width: int | None = None, dropout: float | None = None):
    """A classifier network whose forward returns a dict of named activations
    (``"penultimate"``, ``"logits"`` when ``num_outputs``; FC1-3 for the DCNN)."""
    if backbone == "dcnn":
        from graphret.encoders.dcnn import DCNN

        return DCNN(channels=channels, image_size=image_size, num_outputs=num_outputs, fc_width=fc_width, dropout=0.5 if dropout is None else dropout)
    if backbone == "efficientnet_lite0":
        return efficientnet_lite.efficientnet_lite0(num_classes=num_outputs, dropout=0.2 if dropout is None else dropout)
    if backbone == "small":
        from graphret.encoders.smallcnn import SmallCNN

        return SmallCNN(channels=channels, num_outputs=num_outputs, image_size=image_size, dropout=dropout or 0.0)
    if backbone not in TORCHVISION_BACKBONES:
        raise InputError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    return _torchvision_net_class()(backbone, channels=channels, image_size=image_size, num_outputs=num_outputs, dropout=dropout or 0.0)


def load_imagenet_weights(net, path: str) -> int:
    """Start a torchvision-backbone net from a local ImageNet state_dict file: every tensor
    whose name and shape fit is copied (a 3-channel first kernel is summed to grey); returns how
    many tensors were taken."""
    t = torch()
    try:
        state = t.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"no such weights file: {path}") from None
    except Exception as error:  # noqa: BLE001
        raise InputError(f"{path} is not a readable torch state_dict ({type(error).__name__}); give a file saved with torch.save(model.state_dict())") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path} does not hold a state_dict; save one with torch.save(model.state_dict(), path)")
    own = net.trunk.state_dict()
    taken = {}
    for key, value in state.items():
        if key not in own or not hasattr(value, "shape"):
            continue
        if value.shape == own[key].shape:
            taken[key] = value
        elif value.ndim == 4 and own[key].ndim == 4 and value.shape[1] == 3 and own[key].shape[1] == 1 and value.shape[2:] == own[key].shape[2:]:
            taken[key] = value.sum(dim=1, keepdim=True)
    if len(taken) < len(own) // 2:
        raise InputError(f"{path} does not look like {net.backbone} weights ({len(taken)} of {len(own)} tensors fit); give the matching backbone's state_dict")
    net.trunk.load_state_dict(taken, strict=False)
    return len(taken)


def masked_bce(logits, targets, pos_weight=None):
    """Class-weighted binary cross-entropy over the known entries of a multi-label target
    (1 positive, 0 negative, -1 uncertain / unknown: left out of the loss):

    ``L = sum_{known (i,c)} -[w_c y log s(z) + (1 - y) log(1 - s(z))] / #known``, with w_c the
    positive weight of label c (its negative / positive ratio in training)."""
    t = torch()
    mask = (targets >= 0).float()
    target = (targets == 1).float()
    raw = t.nn.functional.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
    return (raw * mask).sum() / mask.sum().clamp(min=1.0)


def check_labels(images: ImageSet, train: np.ndarray, what: str) -> np.ndarray:
    """The training items that carry a label; one clear InputError when there are none or
    only one class."""
    if images.labels is None or images.task == "unlabelled":
        raise InputError(
            f"the {what} encoder needs class labels, but {images.source} has none; "
            "use {encoder=siamese} with a pair list ({pairs}) or {encoder=dae}, which need no labels"
        )
    labels = np.asarray(images.labels)
    if images.task == "multilabel":
        known = (labels[train] >= 0).any(axis=1)
        kept = train[known]
        if len(kept) == 0:
            raise InputError(f"no training item of {images.source} has a known label; use {{encoder=siamese}} or {{encoder=dae}}", param="encoder")
        sub = labels[kept]
        if not ((sub == 1).any(axis=0) & (sub == 0).any(axis=0)).any():
            raise InputError("no label has both positive and negative training items; a classifier cannot learn (use {encoder=dae})", param="encoder")
        return kept
    kept = train[labels[train] >= 0]
    if len(kept) == 0:
        raise InputError(
            f"no training item of {images.source} has a label; use {{encoder=siamese}} with a pair list or {{encoder=dae}}"
        )
    classes = np.unique(labels[kept])
    if len(classes) < 2:
        name = images.class_names[int(classes[0])] if images.class_names and 0 <= classes[0] < len(images.class_names) else str(classes[0])
        raise InputError(
            f"the training split has a single class ({name}); a classifier needs at least two: "
            "add images of other classes, or use {encoder=dae}"
        )
    if len(kept) < len(train):
        warnings.warn(f"{len(train) - len(kept)} training items have no label and are left out of classifier training", stacklevel=3)
    return kept


class CNNEncoder(TorchEncoder, Encoder):
    """A CNN classifier whose inner layer is the code (see the module docstring).

    Options: ``backbone`` (resnet18 | resnet50 | densenet121 | dcnn | small), ``layer`` (the code's
    layer: ``penultimate``, or ``fc1`` / ``fc2`` / ``fc3`` for the DCNN; default penultimate =
    fc3 for the DCNN), ``image_size`` and ``channels`` (default: those of the first training
    image, the size capped at 224), ``fc_width`` (DCNN only), ``dropout``, ``weights`` (a local ImageNet state_dict to
    start a torchvision backbone from), ``all_spaces`` (DCNN: also emit the FC layers other than
    ``layer`` as code spaces named ``fc1`` / ``fc2`` / ``fc3``; the chosen layer is the
    ``default`` space and is not stored twice), ``centre`` (centre each code space on the
    training items' mean unit code; default: on for the DCNN, off for the torchvision
    backbones), and the training options of
    :class:`graphret.encoders.config.TrainingConfig` (epochs, batch_size, lr, weight_decay,
    patience, augment, vflip, device, threads, time_limit, work, checkpoint, resume, progress).
    """

    name: ClassVar[str] = "cnn"
    has_classifier: ClassVar[bool] = True

    def __init__(
        self,
        *,
        backbone: str = "resnet18",
        layer: str = "penultimate",
        image_size: int | None = None,
        channels: int | None = None,
        fc_width: int | None = None,
        dropout: float | None = None,
        weights: str | None = None,
        all_spaces: bool = True,
        centre: bool | None = None,
        tune_from: int | None = None,
        **train_options: Any,
    ) -> None:
        if backbone == "dcnn" and "lr" not in train_options:
            train_options["lr"] = 1e-3  # the DCNN's three wide FC layers train better slower
        self._init_training(train_options)
        if backbone not in BACKBONES:
            raise InputError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        layers = ("penultimate", "fc1", "fc2", "fc3") if backbone == "dcnn" else ("penultimate",)
        if layer not in layers:
            raise InputError(f"layer {layer!r} is not available for {backbone}; choose one of {', '.join(layers)}")
        if weights is not None and backbone not in TORCHVISION_BACKBONES + PRETRAINED_BACKBONES:
            raise InputError("{weights} starts a backbone from ImageNet; the DCNN and the small CNN have none (drop {weights})", param="weights")
        self.pretrained = backbone in PRETRAINED_BACKBONES
        self.warn_on_resize = not self.pretrained  # an ImageNet network resizes by design
        if tune_from is not None and not (self.pretrained and 0 < tune_from < efficientnet_lite.N_BLOCKS):
            raise InputError(f"tune_from is the first fine-tuned block of a pretrained backbone, 1 to {efficientnet_lite.N_BLOCKS - 1}", param="tune_from")
        self.tune_from = int(tune_from) if tune_from is not None else DEFAULT_TUNE_FROM
        self.weights_source: str | None = None
        self.backbone = backbone
        self.layer = layer
        self.image_size = image_size
        self.channels = channels
        self.fc_width = fc_width
        self.dropout = dropout
        self.weights = weights
        self.all_spaces = all_spaces
        # the DCNN's wide ReLU FC codes share a direction that centring removes (BreastMNIST
        # Acc@1 0.808 -> 0.814); a ResNet's pooled codes barely gain from it (0.853 -> 0.859)
        self.centre = (backbone == "dcnn") if centre is None else bool(centre)
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.task: str | None = None
        self.class_names: list[str] = []
        self.num_classes: int | None = None
        self.pos_weight: list[float] | None = None
        self._runners: dict = {}  # inference engines of a pretrained backbone, by engine and size (frozen_runner)
        self._fit_maps: FitMaps | None = None  # the early-block maps of the items the last fit saw

    # ------------------------------------------------------------------ description & spaces

    @property
    def description(self) -> str:
        size = f"{self.image_size}px" if self.image_size else "source size"
        start = f", fine-tuned from {self.weights_source}" if self.pretrained and self.weights_source else ""
        return f"CNN classifier ({self.backbone}{start}, {size}, {self.task or 'untrained'}), code = {self.layer} layer, L2-normalised"

    @property
    def space_layers(self) -> dict[str, str]:
        spaces = {DEFAULT_SPACE: self.layer}
        if self.all_spaces and self.backbone == "dcnn":
            chosen = "fc3" if self.layer == "penultimate" else self.layer
            for name in ("fc1", "fc2", "fc3"):
                if name != chosen:  # the chosen layer is "default", not stored twice
                    spaces[name] = name
        return spaces

    def space_dims(self) -> dict[str, int]:
        dims = self.net.dims()
        return {space: dims[layer] for space, layer in self.space_layers.items()}

    # ------------------------------------------------------------------ fit

    def _build(self):
        assert self.image_size is not None and self.channels is not None and self.num_classes is not None
        return build_network(
            self.backbone,
            channels=self.channels,
            image_size=self.image_size,
            num_outputs=self.num_classes,
            fc_width=self.fc_width,
            dropout=self.dropout,
        )

    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "CNNEncoder":
        t = torch()
        F = t.nn.functional
        train = np.asarray(train, dtype=np.int64)
        if len(train) == 0:
            raise InputError("no training images; check the source and its train split")
        train = check_labels(images, train, self.name)
        if validation is not None and len(validation):
            validation = np.asarray(validation, dtype=np.int64)
            validation = validation[(np.asarray(images.labels)[validation] >= 0).reshape(len(validation), -1).any(axis=1)]
        else:
            train, validation = holdout(train, images.labels if images.task == "multiclass" else None, seed=seed)
        if self.pretrained:  # ImageNet networks take colour at a size they can see
            self.channels = 3
            self.image_size = self.image_size or PRETRAINED_IMAGE_SIZE
        self._resolve_shape(images, train, self.image_size, self.channels)
        self.task = images.task
        labels = np.asarray(images.labels)
        if self.task == "multilabel":
            self.num_classes = labels.shape[1]
        else:
            self.num_classes = max(len(images.class_names), int(labels[train].max()) + 1)
        self.class_names = list(images.class_names) or [str(c) for c in range(self.num_classes)]
        device = self._device()
        cfg = self.train_cfg
        data = self._batches(images, train)
        vdata = self._batches(images, validation) if validation is not None and len(validation) else None
        seed_everything(seed)
        self.net = self._build()
        if self.pretrained:
            self.mean, self.std = list(efficientnet_lite.MEAN), list(efficientnet_lite.STD)
            self.weights_source = efficientnet_lite.load_imagenet(self.net, self.weights)
            net = self.net.to(device)
            tune_from = self.tune_from
            normalise = Normalise(self.mean, self.std)
            # the frozen blocks run once, on the inference engine a frozen encoder uses
            # (onnxruntime for many images where installed: ~3x torch's speed on the CPU)
            early = frozen_runner(part_of(net, stop=tune_from), device=device, size=self.image_size, channels=3, threads=cfg.threads,
                                  n_items=len(data) + (len(vdata) if vdata is not None else 0))
            cache = FeatureCache(early, data, normalise, device=device, preload_bytes=cfg.preload_bytes, progress=cfg.progress)
            vcache = FeatureCache(early, vdata, normalise, device=device, preload_bytes=cfg.preload_bytes) if vdata is not None else None
            del early
            parameters = freeze_below(net, tune_from, cfg.lr)

            def train_logits(rows, generator):
                return net(cache.get(rows, device, generator if cfg.augment else None), start=tune_from)["logits"]

            def val_logits(rows):
                return net(vcache.get(rows, device), start=tune_from)["logits"]
        else:
            self.mean, self.std = channel_stats(data)
            if self.weights:
                load_imagenet_weights(self.net, self.weights)
            net = self.net.to(device)
            normalise = Normalise(self.mean, self.std)
            augment = Augment(vflip=cfg.vflip) if cfg.augment else None
            parameters = None

            def train_logits(rows, generator):
                x = data.get(rows)
                if augment is not None:
                    x = augment(x, generator)
                return net(normalise(x.to(device)))["logits"]

            def val_logits(rows):
                return net(normalise(vdata.get(rows, device)))["logits"]
        y_train = labels[train]
        if self.task == "multilabel":
            known = y_train >= 0
            pos = ((y_train == 1) & known).sum(axis=0).astype(np.float64)
            neg = ((y_train == 0) & known).sum(axis=0).astype(np.float64)
            self.pos_weight = [float(v) for v in np.where(pos > 0, neg / np.maximum(pos, 1), 1.0)]
            pos_weight = t.tensor(self.pos_weight, dtype=t.float32, device=device)

            def loss_of(logits, y):
                return masked_bce(logits, y, pos_weight)

            y_all = t.from_numpy(y_train.astype(np.float32))
        else:

            def loss_of(logits, y):
                return F.cross_entropy(logits, y)

            y_all = t.from_numpy(y_train.astype(np.int64))

        def step(rows, generator):
            return loss_of(train_logits(rows, generator), y_all[rows].to(device))

        validate = None
        val_name = "val_acc"  # higher is better, as val_auroc
        if vdata is not None:
            y_val = labels[validation]

            def validate():
                losses, correct, total, scores = [], 0, 0, []
                for start in range(0, len(vdata), 512):
                    rows = np.arange(start, min(start + 512, len(vdata)))
                    logits = val_logits(rows)
                    if self.task == "multilabel":
                        y = t.from_numpy(y_val[rows].astype(np.float32)).to(device)
                        losses.append(float(loss_of(logits, y)) * len(rows))
                        scores.append(logits.float().cpu().numpy())
                    else:
                        correct += int((logits.argmax(1).cpu().numpy() == y_val[rows]).sum())
                        y = t.from_numpy(y_val[rows].astype(np.int64)).to(device)
                        losses.append(float(F.cross_entropy(logits.float(), y)) * len(rows))
                    total += len(rows)
                if self.task == "multilabel":  # the pooled AUROC, the loss breaking ties
                    auc = pooled_auroc(np.concatenate(scores), y_val)
                    return (auc if auc is not None else 0.0), -sum(losses) / max(total, 1)
                # accuracy, with the validation loss breaking ties (small validation sets)
                return correct / max(total, 1), -sum(losses) / max(total, 1)

            if self.task == "multilabel":
                val_name = "val_auroc"
        # the work budget counts what the trained part processes: the stored maps of a fine-tuning
        # run (graphret.encoders.finetune.trained_input), the images otherwise
        shape = {"input_shape": trained_input(cache)} if self.pretrained else {}
        self._train(net, n_train=len(train), step=step, validate=validate, seed=seed, val_name=val_name,
                    desc=f"cnn/{self.backbone}", centre_on=(images, train), parameters=parameters, **shape)
        self._runners = {}
        self._fit_maps = None
        if self.pretrained:
            for p in self.net.parameters():
                p.requires_grad_(True)
            self._fit_maps = FitMaps.of(images, [(train, cache), (validation, vcache)])
        return self

    # ------------------------------------------------------------------ encode

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> Encoded:
        spaces, logits = self._encode_spaces(images, indices, batch_size)
        predicted = probabilities = None
        if logits is not None:
            if self.task == "multilabel":
                probabilities = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
            else:
                z = logits - logits.max(axis=1, keepdims=True)
                e = np.exp(z)
                probabilities = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            predicted = probabilities.argmax(axis=1).astype(np.int64)
        return Encoded(spaces=spaces, predicted=predicted, probabilities=probabilities)

    def _encode_activations(self, images: ImageSet, indices: np.ndarray | None, batch_size: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """As every torch encoder; a pretrained backbone in batches of at most ENCODE_BATCH, and
        the items its fine-tuning run just saw run the tail from their stored early-block maps
        (:class:`graphret.encoders.finetune.FitMaps`, once)."""
        if not self.pretrained:
            return super()._encode_activations(images, indices, batch_size)
        batch_size = min(batch_size, ENCODE_BATCH)
        maps, self._fit_maps = self._fit_maps, None
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        where = maps.positions(images, indices) if maps is not None else None
        if where is None or not (where >= 0).any():
            return super()._encode_activations(images, indices, batch_size)
        t = torch()
        stored = np.flatnonzero(where >= 0)
        rest = np.flatnonzero(where < 0)
        device = self._device()
        shape = maps.shape  # (C, S, S)
        tail = frozen_runner(part_of(self.net, start=self.tune_from), device=device, size=int(shape[-1]), channels=int(shape[0]),
                             threads=self.train_cfg.threads, n_items=len(stored))
        out = {space: np.empty((len(indices), self.net.dims()[layer]), np.float32) for space, layer in self.space_layers.items()}
        logits = np.empty((len(indices), self.num_classes), np.float32)
        with t.no_grad():
            for start in range(0, len(stored), batch_size):
                part = stored[start : start + batch_size]
                acts = tail(maps.get(where[part]).to(device))
                for space, layer in self.space_layers.items():
                    out[space][part] = acts[layer].float().cpu().numpy()
                logits[part] = acts["logits"].float().cpu().numpy()
        if len(rest):
            others, other_logits = super()._encode_activations(images, indices[rest], batch_size)
            for space in out:
                out[space][rest] = others[space]
            logits[rest] = other_logits
        return out, logits

    def _inference_net(self, device, n_items: int):
        """A fine-tuned ImageNet backbone encodes as a frozen one does (its weights no longer
        change): folded on torch, or on onnxruntime for many images
        (:func:`graphret.encoders.inference.frozen_runner`); the networks trained from scratch
        run as they are."""
        if not self.pretrained:
            return super()._inference_net(device, n_items)
        return frozen_runner(self.net, device=device, size=self.image_size, channels=3, threads=self.train_cfg.threads,
                             n_items=n_items, cache=self._runners)

    def predict(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(predicted class, probabilities) of the items."""
        enc = self.encode(images, indices, batch_size=batch_size)
        assert enc.predicted is not None and enc.probabilities is not None
        return enc.predicted, enc.probabilities

    # ------------------------------------------------------------------ save / load

    def _model_config(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "layer": self.layer,
            "image_size": self.image_size,
            "channels": self.channels,
            "fc_width": self.fc_width,
            "dropout": self.dropout,
            "all_spaces": self.all_spaces,
            "weights": self.weights,
            "centre": self.centre,
            "tune_from": self.tune_from if self.pretrained else None,
        }

    def config(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            **self._model_config(),
            **self._common_config(),
            "stem": getattr(self.net, "stem", None),
            "task": self.task,
            "class_names": self.class_names,
            "num_classes": self.num_classes,
            "pos_weight": self.pos_weight,
            "weights_source": self.weights_source,
        }

    def state(self) -> dict[str, Any]:
        self._require_fitted()
        return {"net": module_state(self.net)}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "CNNEncoder":
        enc = cls(
            backbone=config["backbone"],
            layer=config["layer"],
            fc_width=config.get("fc_width"),
            dropout=config.get("dropout"),
            all_spaces=bool(config.get("all_spaces", True)),
            centre=bool(config.get("centre", False)),
            tune_from=config.get("tune_from"),
            **(config.get("train") or {}),
        )
        enc.weights_source = config.get("weights_source")
        enc._restore_common(config)
        enc.task = config["task"]
        enc.class_names = list(config["class_names"])
        enc.num_classes = int(config["num_classes"])
        enc.pos_weight = config.get("pos_weight")
        enc.net = enc._build()
        load_module_state(enc.net, state["net"], f"cnn/{enc.backbone}")
        enc.net.eval()
        return enc
