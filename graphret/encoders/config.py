"""Which encoder a build or `graphret train` uses, and how it trains: :class:`EncoderConfig`
and :class:`TrainingConfig`.

Fields left ``None`` take the chosen encoder's own default (the help says which), so a config
names only what the user chose.  :meth:`EncoderConfig.options` and
:meth:`TrainingConfig.options` turn them into the keyword options of
:func:`graphret.encoders.make_encoder`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from graphret.encoders.external import EXTERNAL_KINDS  # models you bring, named KIND:REF
from graphret.errors import InputError, ParameterError
from graphret.params import option_name, param, validate

ENCODER_NAMES = ("pixels", "cnn", "siamese", "dae", "frozen", "decompose")
TORCH_ENCODERS = ("cnn", "siamese", "dae", "frozen", "decompose")
TRAINED_ENCODERS = ("cnn", "siamese", "dae", "decompose")

# A build's default encoder, where the user names none (graphret.api.build applies it; the help
# texts below are written from it): a classifier trained for a budget of work (60 megapixels of
# training images, so the length follows the set's size and image size, not the clock) on one
# thread (faster than two on a shared 2-core machine, and reproducible).  Its backbone follows
# the images' size (graphret.encoders.cnn.default_backbone): ImageNet EfficientNet-Lite0
# (weights installed with graphret) fine-tuned from PRETRAINED_FROM_SIZE px, the small CNN (0.15 M
# parameters, from scratch) below: at 28 px it retrieves better (BreastMNIST P@10 0.857 vs 0.837
# fine-tuned), at 64 px the fine-tuned network is ahead (NIH P@50 0.344 vs 0.312) but took 229 s
# for the 64 px demo set against its 60 s budget; on real folders at their own size frozen
# ImageNet features alone beat the small CNN by 0.03-0.16 P@10 (issue 23's table);
# benchmarks/results/pretrained/pretrained.md.
DEFAULT_ENCODER = "cnn"
DEFAULT_BACKBONE = "efficientnet_lite0"
SMALL_IMAGE_BACKBONE = "small"
PRETRAINED_FROM_SIZE = 96
DEFAULT_WORK = 60.0
DEFAULT_THREADS = 1
#: the default for a source without class labels: the same ImageNet network frozen (the pixel
#: baseline under PRETRAINED_FROM_SIZE px)
UNLABELLED_ENCODER = "frozen"
UNLABELLED_BACKBONE = "efficientnet_lite0"


#: bounds that keep a mistyped number from allocating (image_size**2 pixels per image; a
#: dimension, codebook or batch of this many rows): far above any model graphret trains
MAX_IMAGE_SIZE = 4096
MAX_WIDTH = 1 << 16


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder and its model options."""

    name: str | None = param(
        None, option="encoder",
        help="Encoder to train: pixels | cnn | siamese | dae | frozen | decompose, or a model you bring: onnx:FILE | torchscript:FILE | "
             f"timm:NAME (with --weights FILE) | hf:DIR [{DEFAULT_ENCODER} with the {DEFAULT_BACKBONE} backbone (ImageNet, fine-tuned) when "
             f"the source has class labels, the {SMALL_IMAGE_BACKBONE} one under {PRETRAINED_FROM_SIZE} px; else {UNLABELLED_ENCODER} "
             f"{UNLABELLED_BACKBONE} (pixels under {PRETRAINED_FROM_SIZE} px); with a saved model: the file's].")
    backbone: str | None = param(
        None, applies_to=("cnn", "siamese", "frozen"),
        help=f"cnn: efficientnet_lite0 (installed ImageNet weights, fine-tuned) | small | resnet18 | resnet50 | densenet121 | dcnn; "
             f"siamese: small | resnet18 | resnet50 | densenet121 | dcnn; frozen: efficientnet_lite0 | resnet18 | resnet50 | densenet121 "
             f"[the default encoder: {DEFAULT_BACKBONE}, {SMALL_IMAGE_BACKBONE} under {PRETRAINED_FROM_SIZE} px; cnn or siamese by name: "
             "resnet18; frozen: resnet50].")
    layer: str | None = param(None, applies_to=("cnn", *EXTERNAL_KINDS),
                              help="cnn: the code layer (penultimate; fc1 | fc2 | fc3 for the DCNN); a model you bring: the output (or module) whose value is the code [its only output].")
    image_size: int | None = param(None, min=2, max=MAX_IMAGE_SIZE, help="Model input size in pixels [the source's; efficientnet_lite0 and frozen: 224; pixels: 32; a model you bring: its config's, else 224].")
    channels: int | None = param(None, min=1, max=3, applies_to=EXTERNAL_KINDS, help="A model you bring: input channels, 1 or 3 [its config's, else 3].")
    mean: tuple[float, ...] | None = param(None, applies_to=EXTERNAL_KINDS, help="A model you bring: per-channel mean of the [0,1] input [its config's, else ImageNet's].")
    std: tuple[float, ...] | None = param(None, applies_to=EXTERNAL_KINDS, help="A model you bring: per-channel std of the [0,1] input [its config's, else ImageNet's].")
    dim: int | None = param(None, min=1, max=MAX_WIDTH, applies_to=("siamese", "dae", "pixels"),
                            help="siamese: code dimension [128]; dae: bottleneck [256]; pixels: PCA components [128].")
    margin: float | None = param(None, applies_to=("siamese",), help="siamese: contrastive margin on unit codes [1.0].")
    pairs: str | None = param(None, applies_to=("siamese",), help="siamese: CSV of id_a,id_b,same pairs (no labels needed).")
    weights: str | None = param(None, applies_to=("frozen", "cnn", "timm"),
                                help="frozen: a torchvision state_dict file, or DEFAULT to download; cnn: ImageNet weights to start from; timm: the local weights file.")
    weights_style: Literal["torchvision", "caffe"] | None = param(
        None, applies_to=("frozen",),
        help="frozen: caffe for ResNet weights converted from the MSRA Caffe models (stride in the 1x1 convolution, 0-255 input minus the mean) [torchvision].")
    centre: bool | None = param(None, applies_to=("cnn", "siamese", "dae", "decompose"),
                                help="cnn/siamese/dae/decompose: centre the unit codes on the training items' mean [on; cnn with ResNet/DenseNet: off; decompose: the normal code only].")
    stacked: bool | None = param(None, applies_to=("dae",),
                                 help="dae: pre-train the encoder layer by layer, each layer a denoising autoencoder of the one below, then fine-tune end to end [off].")
    pretrain_epochs: int | None = param(None, min=1, applies_to=("dae",), help="dae --stacked: epochs of each layer's pre-training [half the end-to-end epochs, at least 1].")
    supervision: Literal["auto", "masks", "labels"] | None = param(
        None, applies_to=("decompose",),
        help="decompose: masks (segmentation + discrimination, needs --mask-folder/--mask-column or the demo's masks) or labels (image-level normal vs abnormal only) [auto: masks when the source has them].")
    normal_class: str | None = param(None, applies_to=("decompose",),
                                     help="decompose: the class name (or index) that means normal [a class named normal, no finding, healthy or negative].")
    normal_codebook: int | None = param(None, min=2, max=MAX_WIDTH, applies_to=("decompose",), help="decompose: entries of the normal code's VQ codebook [64].")
    abnormal_codebook: int | None = param(None, min=2, max=MAX_WIDTH, applies_to=("decompose",), help="decompose: entries of the abnormal code's VQ codebook [32].")
    seg_context: int | None = param(None, min=0, max=8, applies_to=("decompose",), help=(
        "decompose: residual dilated 3x3 blocks in the segmentation decoder below full size, a wider view for small findings "
        "[2 where the segmentation decoder detects: one mask channel per finding, or labels only with one normal-vs-abnormal target; else 0]."))
    select_epoch: Literal["loss", "exact_set"] | None = param(None, applies_to=("decompose",), help=(
        "decompose: which held-out figure keeps the best epoch: loss, or exact_set (share of images with the whole finding set "
        "decided right; finding masks only) [exact_set]."))

    def __post_init__(self) -> None:
        if self.name is not None:
            kind, sep, ref = str(self.name).partition(":")
            if kind in EXTERNAL_KINDS and not (sep and ref.strip()):
                what = "NAME" if kind == "timm" else "PATH"
                raise InputError(f"the {kind} encoder is named with its model: use {{encoder={kind}:{what}}}", param="encoder")
            if kind not in EXTERNAL_KINDS and self.name not in ENCODER_NAMES:
                raise InputError(f"unknown encoder {self.name!r}; choose one of {', '.join(ENCODER_NAMES)}, "
                                     "or onnx:FILE, torchscript:FILE, timm:NAME, hf:DIR", param="encoder")
        validate(self, selector="name", noun="encoder", selected=self.kind)

    @property
    def kind(self) -> str | None:
        """The encoder's kind: its name, or KIND of a model you bring named KIND:REF."""
        return None if self.name is None else str(self.name).partition(":")[0]

    def with_name(self, name: str) -> "EncoderConfig":
        """This config for encoder ``name`` (checked again: an option may not apply to it)."""
        return dataclasses.replace(self, name=name)

    def options(self) -> dict[str, Any]:
        """Keyword options of ``make_encoder(self.name, ...)`` for the fields that are set."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "name" and getattr(self, f.name) is not None}
        if "weights_style" in out:
            out["style"] = out.pop("weights_style")
        return out


@dataclass(frozen=True)
class TrainingConfig:
    """How a torch encoder trains; every field None takes the encoder's default."""

    epochs: int | None = param(None, min=1, help="Most epochs (early stopping may end sooner) [enough to see ~20k images, 3-30; decompose: ~50k images, 3-60].")
    batch_size: int | None = param(None, min=2, max=MAX_WIDTH, help="Training batch size [64 below 2000 training images, else 128; siamese: 128; decompose: 32 below 2000].")
    lr: float | None = param(None, min=1e-12, help="Learning rate (AdamW, cosine schedule) [2e-3; DCNN 1e-3].")
    patience: int | None = param(None, min=1, help="Epochs without a validation gain before stopping (not before half the epochs) [5].")
    augment: bool = param(True, help="Augment training images (flips, small shifts and intensity changes).")
    vflip: bool = param(False, help="Also flip images vertically when augmenting.")
    work: float | None = param(None, min=1e-9, help="Training length as megapixels of images to process (epochs from the set's size "
                                                    "and image size, not the clock; a fine-tuned ImageNet backbone counts the maps its "
                                                    f"trained blocks take) [the default encoder: {DEFAULT_WORK:g}].")
    time_limit: float | None = param(None, min=1e-9, help="Stop training after this many seconds (checked every batch).")
    checkpoint: str | None = param(None, help="Checkpoint file written after every epoch [MODEL.ckpt, removed once the model is saved].")
    resume: bool = param(False, help="Continue from the checkpoint.")
    device: str = param("auto", help="auto | cpu | cuda | cuda:N.")
    threads: int | None = param(None, min=1, max=1024, help=f"CPU threads for torch [the default encoder: {DEFAULT_THREADS}; otherwise "
                                                  "torch's default].")
    weight_decay: float = param(1e-4, min=0, cli=False, help="AdamW weight decay.")
    min_epochs: int | None = param(None, min=1, cli=False, help="No early stop before this epoch [half the epochs].")
    amp: bool = param(True, cli=False, help="bf16 autocast for training where the CPU has native bf16 (or on CUDA).")
    progress: bool = param(True, cli=False, help="Progress bars and lines on stderr.")
    preload_bytes: int = param(1 << 30, min=0, cli=False, help="Read the training images once when they fit in this many bytes, else per batch.")

    #: The fields that describe the model (the rest only say where and how visibly it runs).
    RUNTIME: ClassVar[tuple[str, ...]] = ("device", "threads", "checkpoint", "resume", "progress", "preload_bytes")

    def __post_init__(self) -> None:
        validate(self)
        if self.resume and not self.checkpoint:
            raise InputError("{resume} needs a checkpoint file; pass {checkpoint=PATH}", param="resume")

    def with_defaults(self, **defaults: Any) -> "TrainingConfig":
        """This config with its unset (None) fields among ``defaults`` given those values (an
        encoder's own learning rate and patience)."""
        return dataclasses.replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def to_json(self) -> dict[str, Any]:
        """The options that describe the model (the runtime ones left out): the manifest's
        record and a checkpoint's identity."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.RUNTIME}

    def changed(self) -> list[str]:
        """The option names whose values differ from the defaults."""
        return [option_name(f) for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]

    def options(self, encoder: str, *, checkpoint_default: str | None = None, progress: bool = True) -> dict[str, Any]:
        """Keyword options of ``make_encoder(encoder, ...)``: none for the pixel baseline (a
        training option given for it is a ParameterError), the runtime ones for the frozen
        backbone, all of them for the trained encoders."""
        if encoder.partition(":")[0] in EXTERNAL_KINDS:  # frozen models you bring: runtime options only
            changed = [name for name in self.changed() if name not in ("device", "threads")]
            if changed:
                raise ParameterError(f"{{{changed[0]}}} does not apply to a model you bring (nothing is trained)", param=changed[0])
            return {"device": self.device, "threads": self.threads, "progress": progress}
        if encoder not in TORCH_ENCODERS:
            changed = [name for name in self.changed() if name not in ("device", "threads")]
            if changed:
                raise ParameterError(f"{{{changed[0]}}} does not apply to the pixel baseline", param=changed[0])
            return {}
        out: dict[str, Any] = {"device": self.device, "threads": self.threads, "progress": progress}
        if encoder == "frozen":
            return out
        for name in ("epochs", "batch_size", "lr", "patience", "work", "time_limit"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out.update(augment=self.augment, vflip=self.vflip, resume=self.resume, weight_decay=self.weight_decay,
                   min_epochs=self.min_epochs, amp=self.amp, preload_bytes=self.preload_bytes,
                   checkpoint=self.checkpoint or checkpoint_default)
        return out
