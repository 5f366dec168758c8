"""Siamese contrastive encoder (Chung & Weng): codes learned from image pairs alone.

Two copies of one network (shared weights) embed the two images of a pair; the contrastive loss

    L = 1[same] * D^2 / 2 + 1[different] * max(0, margin - D)^2 / 2

on the Euclidean distance D between the two **L2-normalised** codes pulls similar pairs
together and pushes dissimilar ones at least ``margin`` apart.  Codes are unit vectors, so
D^2 = 2 - 2 cos and the loss works on the same cosine scale as the graph; ``margin`` = 1.0
(the default) asks dissimilar pairs for cosine <= 0.5.  D ranges over [0, 2].

The network is a CNN trunk (ResNet-18 by default as a CPU-sized stand-in for the paper's
ResNet-50, which ``backbone="resnet50"`` gives; or the DCNN) followed by dropout 0.25, a
linear layer to ``dim`` and batch normalisation, as in the paper; trained with Adam(W).

Pairs come from labels or from a user's CSV of id pairs (:mod:`graphret.encoders.pairs`), so
that no class labels are needed.  From labels, every pair of images within a training batch is
used (same class = similar), the similar and the dissimilar pairs' mean losses weighing equally
(:func:`batch_contrastive_loss`): one forward pass per image gives B(B-1)/2 pairs, which
learned far better in the same CPU time than one sampled pair per image (BreastMNIST Acc@1
0.76 with sampled pairs).  From a pair list, batches of the listed pairs are used as given.  The validation
figure for early stopping is the contrastive loss on validation pairs (pairs whose both items
are in the validation split; else 10 % of the pairs, held out with the seed).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder
from graphret.encoders.cnn import BACKBONES, PRETRAINED_BACKBONES, build_network
from graphret.encoders.pairs import Pairs, label_keys, pairs_from_labels, read_pair_csv
from graphret.encoders.training import (
    Augment,
    Normalise,
    TorchEncoder,
    channel_stats,
    epoch_rng,
    load_module_state,
    module_state,
    seed_everything,
    torch,
)
from graphret.errors import InputError

# Images (or listed pairs) per training batch, whatever the set's size: a batch of B images gives
# B(B-1)/2 pairs, and 128 rather than 64 lifted BreastMNIST Acc@1 from 0.81 to 0.87.
DEFAULT_BATCH = 128


def contrastive_loss(za, zb, same, margin: float):
    """Mean of ``same * D^2 / 2 + (1 - same) * max(0, margin - D)^2 / 2`` over the pairs, D
    the Euclidean distance between rows of za and zb."""
    t = torch()
    d = t.sqrt(((za - zb) ** 2).sum(dim=1) + 1e-12)
    same = same.float()
    return (same * d.pow(2) / 2 + (1 - same) * t.clamp(margin - d, min=0).pow(2) / 2).mean()


def batch_contrastive_loss(z, keys, margin: float):
    """The contrastive loss over every pair (i < j) of a batch of codes z with label keys:
    the mean over the same-label pairs and the mean over the different-label pairs, averaged
    (so both kinds weigh equally, as with balanced sampled pairs)."""
    t = torch()
    n = z.shape[0]
    i, j = t.triu_indices(n, n, offset=1, device=z.device)
    d = t.sqrt(((z[i] - z[j]) ** 2).sum(dim=1) + 1e-12)
    same = keys[i] == keys[j]
    parts = []
    if bool(same.any()):
        parts.append((d[same].pow(2) / 2).mean())
    if bool((~same).any()):
        parts.append((t.clamp(margin - d[~same], min=0).pow(2) / 2).mean())
    if not parts:
        return (z * 0).sum()
    return sum(parts) / len(parts)


def _siamese_net(backbone: str, *, channels: int, image_size: int, dim: int, dropout: float):
    nn = torch().nn
    F = torch().nn.functional

    class _Siamese(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.trunk = build_network(backbone, channels=channels, image_size=image_size, num_outputs=0)
            width = self.trunk.dims()["penultimate"]
            self.drop = nn.Dropout(dropout)
            self.project = nn.Linear(width, dim)
            self.norm = nn.BatchNorm1d(dim)
            self.width = width

        def forward(self, x):
            acts = self.trunk(x)
            z = self.norm(self.project(self.drop(acts["penultimate"])))
            return {"embedding": F.normalize(z, dim=1), "penultimate": acts["penultimate"]}

        def dims(self) -> dict[str, int]:
            return {"embedding": dim, "penultimate": self.width}

    return _Siamese()


class SiameseEncoder(TorchEncoder, Encoder):
    """Contrastive Siamese encoder (see the module docstring).

    Options: ``backbone`` (resnet18 | resnet50 | densenet121 | dcnn), ``dim`` (code size, 128),
    ``batch_size`` (128 whatever the set's size: more pairs per batch), ``centre`` (centre the
    codes on the training items' mean unit code, True: BreastMNIST Acc@1 0.865 -> 0.878),
    ``margin`` (1.0, on unit codes), ``dropout`` (0.25), ``pairs`` (path of a CSV
    ``id_a,id_b,same``; default: pairs from labels), ``image_size``, ``channels``, and the
    training options of :class:`graphret.encoders.config.TrainingConfig`.
    """

    name: ClassVar[str] = "siamese"

    def __init__(
        self,
        *,
        backbone: str = "resnet18",
        dim: int = 128,
        margin: float = 1.0,
        dropout: float = 0.25,
        pairs: str | None = None,
        centre: bool = True,
        image_size: int | None = None,
        channels: int | None = None,
        **train_options: Any,
    ) -> None:
        if train_options.get("batch_size") is None:
            train_options["batch_size"] = DEFAULT_BATCH
        self._init_training(train_options)
        if backbone not in BACKBONES or backbone in PRETRAINED_BACKBONES:
            scratch = [b for b in BACKBONES if b not in PRETRAINED_BACKBONES]
            raise InputError(f"unknown siamese backbone {backbone!r}; choose one of {', '.join(scratch)}")
        if dim < 2:
            raise InputError(f"code dimension must be at least 2, got {dim}")
        if not 0 < margin <= 2:
            raise InputError(f"margin must be in (0, 2] for unit-length codes, got {margin} (use e.g. 1.0)")
        self.backbone = backbone
        self.dim = int(dim)
        self.margin = float(margin)
        self.dropout = float(dropout)
        self.pairs = pairs
        self.centre = bool(centre)
        self.image_size = image_size
        self.channels = channels
        self.mean: list[float] | None = None
        self.std: list[float] | None = None
        self.pair_source: str | None = None

    @property
    def description(self) -> str:
        src = self.pair_source or ("pair list" if self.pairs else "label pairs")
        return f"Siamese contrastive encoder ({self.backbone}, {self.dim}-d, margin {self.margin:g}, {src}), L2-normalised"

    @property
    def space_layers(self) -> dict[str, str]:
        return {DEFAULT_SPACE: "embedding"}

    def space_dims(self) -> dict[str, int]:
        return {DEFAULT_SPACE: self.dim}

    def _build(self):
        assert self.image_size is not None and self.channels is not None
        return _siamese_net(self.backbone, channels=self.channels, image_size=self.image_size, dim=self.dim, dropout=self.dropout)

    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "SiameseEncoder":
        t = torch()
        train = np.asarray(train, dtype=np.int64)
        if len(train) < 2:
            raise InputError("the Siamese encoder needs at least 2 training images")
        validation = None if validation is None or len(validation) == 0 else np.asarray(validation, dtype=np.int64)
        cfg = self.train_cfg
        # ---- the pairs
        fixed: Pairs | None = None
        val_pairs: Pairs | None = None
        if self.pairs:
            listed = read_pair_csv(self.pairs, images)
            fixed = listed.within(train)
            if validation is not None:
                val_pairs = listed.within(validation)
            if val_pairs is None or len(val_pairs) == 0:
                if len(fixed) >= 20:
                    order = np.random.default_rng(np.random.SeedSequence([seed, 0xA1])).permutation(len(fixed))
                    cut = max(1, len(fixed) // 10)
                    val_pairs = fixed.subset(np.sort(order[:cut]))
                    fixed = fixed.subset(np.sort(order[cut:]))
                else:
                    val_pairs = None
            if len(fixed) == 0:
                raise InputError(f"no pair of {self.pairs} has both images in the training split; list pairs of training images")
            if fixed.same.min() == fixed.same.max():
                raise InputError(f"the training pairs of {self.pairs} are all {'similar' if fixed.same[0] else 'dissimilar'}; the contrastive loss needs both kinds")
            self.pair_source = f"pair list ({len(fixed)} training pairs)"
            used = np.unique(np.concatenate([fixed.a, fixed.b]))
        else:
            pairs_from_labels(images, train, rng=epoch_rng(seed, 0, 1))  # checks labels & classes early
            train = train[label_keys(images, train) >= 0]
            if validation is not None:
                try:
                    val_pairs = pairs_from_labels(images, validation, rng=np.random.default_rng(np.random.SeedSequence([seed, 0xA2])))
                except InputError:
                    val_pairs = None
            self.pair_source = "pairs from labels"
            used = train
        self._resolve_shape(images, used, self.image_size, self.channels)
        device = self._device()
        data = self._batches(images, used)
        position = {int(r): n for n, r in enumerate(used)}
        self.mean, self.std = channel_stats(data)
        seed_everything(seed)
        self.net = self._build()
        net = self.net.to(device)
        normalise = Normalise(self.mean, self.std)
        augment = Augment(vflip=cfg.vflip) if cfg.augment else None
        keys = label_keys(images, train) if fixed is None else None

        def embed_pairs(p: Pairs, rows: np.ndarray, batches, generator=None):
            a, b = p.a[rows], p.b[rows]
            uniq, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
            x = batches(uniq)
            if generator is not None and augment is not None:
                x = augment(x, generator)
            z = net(normalise(x.to(device)))["embedding"]
            za, zb = z[inverse[: len(a)]], z[inverse[len(a) :]]
            same = t.from_numpy(p.same[rows].astype(np.float32)).to(device)
            return contrastive_loss(za, zb, same, self.margin)

        def step(rows, generator):
            if fixed is not None:  # the listed pairs, a batch of them at a time
                return embed_pairs(fixed, rows, lambda u: data.get(np.array([position[int(i)] for i in u])), generator)
            # pairs from labels: every pair within a batch of images
            x = data.get(rows)
            if augment is not None:
                x = augment(x, generator)
            z = net(normalise(x.to(device)))["embedding"]
            k = t.from_numpy(keys[rows]).to(device)
            return batch_contrastive_loss(z, k, self.margin)

        validate = None
        if val_pairs is not None and len(val_pairs):
            vused = np.unique(np.concatenate([val_pairs.a, val_pairs.b]))
            vdata = self._batches(images, vused)
            vpos = {int(r): n for n, r in enumerate(vused)}

            def validate():
                total = 0.0
                for start in range(0, len(val_pairs), 256):
                    rows = np.arange(start, min(start + 256, len(val_pairs)))
                    loss = embed_pairs(val_pairs, rows, lambda u: vdata.get(np.array([vpos[int(i)] for i in u])))
                    total += float(loss) * len(rows)
                return total / len(val_pairs)

        n_items = len(fixed) if fixed is not None else len(train)
        fingerprint = {"encoder": self.name, "model": self._model_config(), "train": cfg.to_json(), "seed": seed, "n_items": int(n_items)}
        self._train(net, n_train=n_items, step=step, validate=validate, seed=seed, fingerprint=fingerprint,
                    val_name="val_loss", higher_is_better=False, desc=f"siamese/{self.backbone}", centre_on=(images, used))
        return self

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> Encoded:
        spaces, _ = self._encode_spaces(images, indices, batch_size)
        return Encoded(spaces=spaces)

    def _model_config(self) -> dict[str, Any]:
        return {
            "backbone": self.backbone,
            "dim": self.dim,
            "margin": self.margin,
            "dropout": self.dropout,
            "pairs": self.pairs,
            "centre": self.centre,
            "image_size": self.image_size,
            "channels": self.channels,
        }

    def config(self) -> dict[str, Any]:
        self._require_fitted()
        return {**self._model_config(), **self._common_config(), "pair_source": self.pair_source}

    def state(self) -> dict[str, Any]:
        self._require_fitted()
        return {"net": module_state(self.net)}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "SiameseEncoder":
        enc = cls(
            backbone=config["backbone"],
            dim=int(config["dim"]),
            margin=float(config["margin"]),
            dropout=float(config["dropout"]),
            pairs=config.get("pairs"),
            centre=bool(config.get("centre", False)),
            **(config.get("train") or {}),
        )
        enc._restore_common(config)
        enc.pair_source = config.get("pair_source")
        enc.net = enc._build()
        load_module_state(enc.net, state["net"], f"siamese/{enc.backbone}")
        enc.net.eval()
        return enc
