"""The encoder options `graphret train` and `graphret build-graph` share, and how they become
keyword options of :func:`graphret.encoders.make_encoder`."""

from __future__ import annotations

from typing import Any, Callable

import click

ENCODER_NAMES = ("pixels", "cnn", "siamese", "dae", "frozen")

_OPTIONS = (
    click.option("--backbone", default=None, help="cnn/siamese: resnet18 | resnet50 | densenet121 | dcnn; frozen: resnet18 | resnet50 | densenet121."),
    click.option("--layer", default=None, help="cnn: the code layer (penultimate; fc1 | fc2 | fc3 for the DCNN)."),
    click.option("--epochs", type=int, default=None, help="Most epochs (early stopping may end sooner) [enough to see ~20k images, 3-30]."),
    click.option("--batch-size", type=int, default=None, help="Training batch size [64 below 2000 training images, else 128; siamese: 128]."),
    click.option("--lr", type=float, default=None, help="Learning rate (AdamW, cosine schedule) [2e-3; DCNN 1e-3]."),
    click.option("--patience", type=int, default=None, help="Epochs without a validation gain before stopping (not before half the epochs) [5]."),
    click.option("--image-size", type=int, default=None, help="Model input size in pixels [the source's; frozen: 224; pixels: 32]."),
    click.option("--dim", type=int, default=None, help="siamese: code dimension [128]; dae: bottleneck [256]; pixels: PCA components [128]."),
    click.option("--margin", type=float, default=None, help="siamese: contrastive margin on unit codes [1.0]."),
    click.option("--pairs", type=click.Path(), default=None, help="siamese: CSV of id_a,id_b,same pairs (no labels needed)."),
    click.option("--weights", default=None, help="frozen: a torchvision state_dict file, or DEFAULT to download; cnn: ImageNet weights to start from."),
    click.option(
        "--weights-style",
        type=click.Choice(["torchvision", "caffe"]),
        default=None,
        help="frozen: caffe for ResNet weights converted from the MSRA Caffe models (stride in the 1x1 convolution, 0-255 input minus the mean) [torchvision].",
    ),
    click.option("--centre/--no-centre", default=None, help="cnn/siamese/dae: centre the unit codes on the training items' mean [on; cnn with ResNet/DenseNet: off]."),
    click.option("--no-augment", is_flag=True, help="Train without augmentation."),
    click.option("--vflip", is_flag=True, help="Also flip images vertically when augmenting."),
    click.option("--time-limit", type=float, default=None, help="Stop training after this many seconds (at an epoch's end)."),
    click.option("--checkpoint", type=click.Path(), default=None, help="Checkpoint file written after every epoch [MODEL.ckpt, removed once the model is saved]."),
    click.option("--resume", is_flag=True, help="Continue from the checkpoint."),
    click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N."),
    click.option("--threads", type=int, default=None, help="CPU threads for torch [torch's default]."),
)

TRAINING_KEYS = ("backbone", "layer", "epochs", "batch_size", "lr", "patience", "margin", "pairs", "weights", "time_limit")


def encoder_options(command: Callable) -> Callable:
    """Decorate a click command with the shared encoder options."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def encoder_kwargs(encoder: str, values: dict[str, Any], *, checkpoint_default: str, progress: bool) -> dict[str, Any]:
    """Keyword options of ``make_encoder(encoder, ...)`` from the parsed CLI ``values``."""
    given = {key: values.get(key) for key in TRAINING_KEYS if values.get(key) is not None}
    options: dict[str, Any] = {}
    if encoder == "pixels":
        if given:
            flag = next(iter(given)).replace("_", "-")
            raise click.UsageError(f"--{flag} does not apply to the pixel baseline")
    else:
        options.update(given)
        options.update(device=values.get("device", "auto"), threads=values.get("threads"), progress=progress)
        if encoder != "frozen":
            options.update(
                augment=not values.get("no_augment", False),
                vflip=bool(values.get("vflip", False)),
                checkpoint=values.get("checkpoint") or checkpoint_default,
                resume=bool(values.get("resume", False)),
            )
    if values.get("centre") is not None:
        if encoder not in ("cnn", "siamese", "dae"):
            raise click.UsageError("--centre/--no-centre applies to the cnn, siamese and dae encoders only")
        options["centre"] = values["centre"]
    if values.get("weights_style") is not None:
        if encoder != "frozen":
            raise click.UsageError("--weights-style applies to the frozen encoder only")
        options["style"] = values["weights_style"]
    for key in ("image_size", "dim"):
        if values.get(key) is not None:
            options[key] = values[key]
    return options
