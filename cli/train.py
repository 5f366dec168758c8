"""`graphret train`: train an encoder on a source and save it to one model file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from cli.common import stderr_logger
from cli.encoder_options import ENCODER_NAMES, encoder_kwargs, encoder_options


@click.command("train")
@click.argument("source", required=False)
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (e.g. model.pt).")
@click.option("--encoder", type=click.Choice(ENCODER_NAMES), default="cnn", show_default=True, help="Encoder to train.")
@encoder_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, initialisation, shuffling and augmentation.")
@click.option("--no-split", is_flag=True, help="Train on every image (no seeded 70/30 split).")
@click.option("--quiet", is_flag=True, help="No progress bars or lines.")
def train_command(source, output, encoder, seed, no_split, quiet, **values) -> None:
    """Train an encoder on SOURCE and save it to OUTPUT.

    SOURCE is a MedMNIST-style .npz, a folder of class sub-folders, a CSV manifest, `demo`, or
    `medmnist:NAME`.  Use the model with `graphret build-graph SOURCE --model OUTPUT`.
    """
    from graphret.data import open_source
    from graphret.encoders.training import train_encoder

    log = stderr_logger(quiet)
    options = encoder_kwargs(encoder, values, checkpoint_default=f"{output}.ckpt", progress=not quiet)
    started = time.perf_counter()
    images = open_source(source, seed=seed, split=not no_split)
    log(f"source {images.source}: {len(images)} images")
    model = train_encoder(images, encoder, seed=seed, **options)
    model.save(output)
    if values.get("checkpoint") is None and encoder not in ("pixels", "frozen"):
        # the default checkpoint only serves an interrupted run: drop it once the model is saved
        Path(f"{output}.ckpt").unlink(missing_ok=True)
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
