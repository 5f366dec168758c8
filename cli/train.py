"""`graphret train`: train an encoder on a source and save it to one model file."""

from __future__ import annotations

import json
import time
from pathlib import Path

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
    from graphret.data import open_source
    from graphret.encoders.training import train_encoder

    log = stderr_logger(quiet)
    encoder = EncoderConfig(**{k: v for k, v in given(options, EncoderConfig).items() if k != "encoder"},
                            name=options.get("encoder") or "cnn")
    training = TrainingConfig(**given(options, TrainingConfig))
    kwargs = training.options(encoder.name, checkpoint_default=f"{output}.ckpt", progress=not quiet)
    started = time.perf_counter()
    images = MaskConfig(**given(options, MaskConfig)).attach(open_source(source, seed=seed, split=split), source)
    log(f"source {images.source}: {len(images)} images")
    model = train_encoder(images, encoder.name, seed=seed, **encoder.options(), **kwargs)
    model.save(output)
    if training.checkpoint is None and encoder.name not in ("pixels", "frozen"):
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
