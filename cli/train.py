"""`graphret train`: train an encoder on a source and save it to one model file."""

from __future__ import annotations

import json
import time

import click

from cli.common import stderr_logger

ENCODER_NAMES = ("pixels", "cnn", "siamese", "dae", "frozen")


@click.command("train")
@click.argument("source", required=False)
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (e.g. model.pt).")
@click.option("--encoder", type=click.Choice(ENCODER_NAMES), default="cnn", show_default=True, help="Encoder to train.")
@click.option("--backbone", default=None, help="cnn/siamese: resnet18 | resnet50 | densenet121 | dcnn; frozen: resnet18 | resnet50 | densenet121.")
@click.option("--layer", default=None, help="cnn: the code layer (penultimate; fc1 | fc2 | fc3 for the DCNN).")
@click.option("--epochs", type=int, default=None, help="Most epochs (early stopping may end sooner) [10].")
@click.option("--batch-size", type=int, default=None, help="Training batch size [128].")
@click.option("--lr", type=float, default=None, help="Learning rate (AdamW, cosine schedule) [1e-3].")
@click.option("--patience", type=int, default=None, help="Epochs without a validation gain before stopping [3].")
@click.option("--image-size", type=int, default=None, help="Model input size in pixels [the source's; frozen: 224; pixels: 32].")
@click.option("--dim", type=int, default=None, help="siamese/dae: code dimension [128]; pixels: PCA components.")
@click.option("--margin", type=float, default=None, help="siamese: contrastive margin on unit codes [1.0].")
@click.option("--pairs", type=click.Path(), default=None, help="siamese: CSV of id_a,id_b,same pairs (no labels needed).")
@click.option("--weights", default=None, help="frozen: a torchvision state_dict file, or DEFAULT to download; cnn: ImageNet weights to start from.")
@click.option("--no-augment", is_flag=True, help="Train without augmentation.")
@click.option("--vflip", is_flag=True, help="Also flip images vertically when augmenting.")
@click.option("--time-limit", type=float, default=None, help="Stop training after this many seconds (at an epoch's end).")
@click.option("--checkpoint", type=click.Path(), default=None, help="Checkpoint file written after every epoch [OUTPUT.ckpt].")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, initialisation, shuffling and augmentation.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N.")
@click.option("--threads", type=int, default=None, help="CPU threads for torch [torch's default].")
@click.option("--no-split", is_flag=True, help="Train on every image (no seeded 70/30 split).")
@click.option("--quiet", is_flag=True, help="No progress bars or lines.")
def train_command(source, output, encoder, backbone, layer, epochs, batch_size, lr, patience, image_size, dim, margin, pairs,
                  weights, no_augment, vflip, time_limit, checkpoint, resume, seed, device, threads, no_split, quiet) -> None:
    """Train an encoder on SOURCE and save it to OUTPUT.

    SOURCE is a MedMNIST-style .npz, a folder of class sub-folders, a CSV manifest, `demo`, or
    `medmnist:NAME`.  Use the model with `graphret build-graph SOURCE --model OUTPUT`.
    """
    from graphret.data import open_source
    from graphret.encoders.training import train_encoder

    log = stderr_logger(quiet)
    options: dict = {}
    given = {"backbone": backbone, "layer": layer, "epochs": epochs, "batch_size": batch_size, "lr": lr,
             "patience": patience, "margin": margin, "pairs": pairs, "weights": weights, "time_limit": time_limit}
    if encoder == "pixels":
        unsupported = [k for k, v in given.items() if v is not None]
        if unsupported:
            raise click.UsageError(f"--{unsupported[0].replace('_', '-')} does not apply to the pixel baseline")
        if image_size is not None:
            options["size"] = image_size
        if dim is not None:
            options["n_components"] = dim
    else:
        options.update({k: v for k, v in given.items() if v is not None})
        if image_size is not None:
            options["image_size"] = image_size
        if dim is not None:
            options["dim"] = dim
        options.update(device=device, threads=threads, progress=not quiet)
        if encoder != "frozen":
            options.update(augment=not no_augment, vflip=vflip, checkpoint=checkpoint or f"{output}.ckpt", resume=resume)
    started = time.perf_counter()
    images = open_source(source, seed=seed, split=not no_split)
    log(f"source {images.source}: {len(images)} images")
    model = train_encoder(images, encoder, seed=seed, **options)
    model.save(output)
    history = getattr(model, "history", None)
    summary = {
        "model": output,
        "encoder": model.name,
        "description": model.description,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if history is not None:
        summary.update(
            epochs=len(history.epochs),
            best_epoch=history.best_epoch,
            **{f"best_{history.val_name or 'val'}": history.best_val},
            seconds_per_epoch=round(history.seconds_per_epoch or 0.0, 2),
            stopped=history.stopped,
        )
    click.echo(json.dumps(summary))
