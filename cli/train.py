"""`graphret train`: train an encoder on a source and save it to one model file
(:func:`graphret.api.train.train`)."""

from __future__ import annotations

import json
import time

import click

from graphret.data.config import MaskConfig
from graphret.encoders.config import EncoderConfig, TrainingConfig

from .common import stderr_logger
from .options import config_options, given


@click.command("train")
@click.argument("source", required=False)
@click.option("-o", "--output", required=True, type=click.Path(), help="Model file to write (e.g. model.pt).")
@config_options(EncoderConfig)
@config_options(TrainingConfig)
@config_options(MaskConfig)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split, initialisation, shuffling and augmentation.")
@click.option("--split/--no-split", default=True, show_default=True, help="Give sources without splits a seeded 70/30 split (off: train on every image).")
@click.option("--quiet", is_flag=True, help="No progress bars or lines.")
def train_command(source, output, seed, split, quiet, **options) -> None:
    """Train an encoder on SOURCE and save it to OUTPUT (the encoder: --encoder, default cnn).

    SOURCE is a MedMNIST-style .npz, a folder of class sub-folders, a CSV manifest, `demo`, or
    `medmnist:NAME`.  Use the model with `graphret build-graph SOURCE --model OUTPUT`.
    """
    from graphret.api.train import train

    flat = {**given(options, EncoderConfig), **given(options, TrainingConfig), **given(options, MaskConfig)}
    encoder = flat.pop("encoder", None)
    started = time.perf_counter()
    model = train(source, output, encoder=encoder, seed=seed, split=split, quiet=quiet, log=stderr_logger(quiet), **flat)
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
