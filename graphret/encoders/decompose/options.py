"""The decomposing encoder's model options (:class:`DecomposeOptions`): one frozen, validated
dataclass, as :class:`~graphret.encoders.config.TrainingConfig` holds the training options.
Plain Python (no torch)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from graphret.errors import InputError
from graphret.params import param, validate

#: Bound that keeps a mistyped size from allocating (as graphret.encoders.config.MAX_WIDTH).
MAX_SIZE = 1 << 16
Supervision = Literal["auto", "masks", "labels"]
VqUpdate = Literal["ema", "loss"]
EpochSelection = Literal["loss", "exact_set"]
#: How the encoder is supervised, and how its codebooks learn: the allowed values.
SUPERVISION: tuple[str, ...] = get_args(Supervision)
VQ_UPDATES: tuple[str, ...] = get_args(VqUpdate)
#: The loss weight options, in the order the objective names its terms (the adversary last).
LOSS_WEIGHTS = ("latent_weight", "discrimination_weight", "segmentation_weight", "reconstruction_weight", "residual_weight", "independence_weight",
                "adversary_weight")


@dataclass(frozen=True)
class DecomposeOptions:
    """Options of one :class:`~graphret.encoders.decompose.DecomposingEncoder` (the training
    options are :class:`~graphret.encoders.config.TrainingConfig`'s); every bad value is an
    :class:`~graphret.errors.InputError` naming the option."""

    latent_dim: int = param(32, min=2, max=MAX_SIZE, help=(
        "Channels of each latent map (= size of a codebook entry). With 16, the projection from the trunk into the normal map "
        "lost anatomy (demo normal-space anatomy P@10 0.931 against the trunk's own 0.996); 32 gave 0.994 and, with seed 1, 0.956."))
    normal_codebook: int = param(64, min=2, max=MAX_SIZE, help="Entries of the normal code's VQ codebook.")
    abnormal_codebook: int = param(32, min=2, max=MAX_SIZE, help="Entries of the abnormal code's VQ codebook.")
    vq: VqUpdate = param("ema", help="Codebook updates: ema (moving averages) or loss (codebook + commitment losses).")
    commitment: float = param(0.25, min=0, help="beta of the commitment loss.")
    ema_decay: float = param(0.99, min=0, max=1, help="Decay of the codebooks' moving averages, strictly between 0 and 1.")
    vq_warmup: float = param(0.25, min=0, max=1, help="Share of the epochs trained before quantisation starts, in [0, 1).")
    width: int = param(32, min=8, max=MAX_SIZE, help="Channels of the trunk's first block.")
    seg_context: int | None = param(None, min=0, max=8, help=(
        "Residual dilated (2, 4, ...) 3x3 blocks the segmentation decoder runs at the level below full size: a wider view "
        "for telling small findings from look-alikes [2 when the segmentation decoder is the detector: mask channels that are the findings (the demo), or labels only with "
        "one normal-vs-abnormal target (PneumoniaMNIST, seeds 0 / 1: abnormal P@10 0.850 / 0.835 -> 0.867 / 0.856); else 0]. With "
        "select_epoch=exact_set, on the demo over seeds 0 / 1: abnormal findings P@10 0.765 / 0.743 -> 0.768 / 0.792, "
        "normal anatomy 0.994 / 0.956 -> 0.999 / 0.999, composites with both A's anatomy and B's findings 0.505 / 0.414 -> "
        "0.526 / 0.554; exact finding sets 0.817 / 0.787 -> 0.793 / 0.822 (benchmarks/results/decompose/variants.md)."))
    select_epoch: EpochSelection = param("exact_set", help=(
        "Which held-out figure keeps the best epoch and stops training early: loss (the total loss) or exact_set (the share "
        "of held-out images whose whole finding set the detector decides right, at cuts chosen on them; multi-label "
        "findings with masks only, else the loss)."))
    shift_average: bool | None = param(None, help=(
        "Average the detector's logits, when encoding and calibrating, over the image and its mirror image shifted by one pixel "
        "(down, right, both: the phases of the trunk's first stride-2 block), 8 views instead of 2 [on for multi-label findings "
        "with masks (the demo), else off]. On the demo's default build, seeds 0 / 1 (the same trained weights): exact finding sets "
        "0.793 / 0.822 -> 0.812 / 0.847, abnormal findings P@10 0.768 / 0.792 -> 0.775 / 0.812, composites' B's findings "
        "0.603 / 0.649 -> 0.608 / 0.693 (benchmarks/results/decompose/variants.md). It costs no training but about 5x the "
        "encoding CPU (the demo's 2,000 images: 69 against 14 CPU s)."))
    supervision: Supervision = param("auto", help="masks, labels, or auto (masks when the images have them).")
    normal_class: str | int | None = param(None, help=(
        "The class or label that means normal (a name or index) [one named normal / no finding / healthy / negative, else, "
        "for multi-label sets, no positive label]."))
    latent_weight: float = param(1.0, min=0, help="Weight of the VQ losses.")
    discrimination_weight: float = param(1.0, min=0, help="Weight of the image-level discrimination loss.")
    segmentation_weight: float = param(1.0, min=0, help="Weight of the segmentation loss.")
    reconstruction_weight: float = param(1.0, min=0, help="Weight of the conditioned reconstruction loss.")
    residual_weight: float = param(1.0, min=0, help="Weight of the normal-appearing image's residual loss.")
    independence_weight: float = param(20.0, min=0, help=(
        "Weight of the normal code's independence term: the maximum mean discrepancy between the normal codes of the batch's "
        "abnormal and normal items without a mask (0 turns it off; 0 on a set where every item has a mask, e.g. the demo). "
        "On PneumoniaMNIST (labels only) the normal code's disease P@10 above the base rate fell from +0.213 / +0.228 "
        "(seeds 0 / 1, off) to +0.119 (1) and +0.094 / +0.093 (10); with the context blocks +0.094 / +0.117 (10) and "
        "+0.084 / +0.089 (20)."))
    adversary_weight: float = param(1.0, min=0, help="Scale of the adversary's reversed gradient (0 turns the adversary off).")
    null_directions: int = param(8, min=0, max=MAX_SIZE, help="Rounds of the normal code's null-space projection (0: none).")
    abnormal_gate: float = param(0.5, min=0, max=1, help="Presence probability the abnormal code gates on, in [0, 1) (0: weight by it).")
    centre: bool = param(True, help="Centre the normal code on the training items' mean.")

    def __post_init__(self) -> None:
        validate(self)
        for name, value, fix in (("ema_decay", self.ema_decay, "0.99"), ("vq_warmup", self.vq_warmup, "0.25"),
                                 ("abnormal_gate", self.abnormal_gate, "0.5")):
            if value == 1 or (name == "ema_decay" and value == 0):
                raise InputError(f"{{{name}}} must be below 1{' and above 0' if name == 'ema_decay' else ''}, got {value!r}; use e.g. "
                                 f"{{{name}={fix}}}", param=name)

    @property
    def weights(self) -> dict[str, float]:
        """The loss weights by option name (:data:`LOSS_WEIGHTS`)."""
        return {name: float(getattr(self, name)) for name in LOSS_WEIGHTS}

    def to_json(self) -> dict[str, Any]:
        """Every option by name (a saved model's config)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


__all__ = ["DecomposeOptions", "LOSS_WEIGHTS", "SUPERVISION", "VQ_UPDATES"]
