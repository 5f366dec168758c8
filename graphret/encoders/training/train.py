"""One call to train a named encoder on a source's train split: what `graphret train` and a
build run."""

from __future__ import annotations

from typing import Any

from graphret.data.imageset import ImageSet
from graphret.encoders.training.splits import training_indices


def train_encoder(images: ImageSet, name: str, *, seed: int = 0, **options: Any):
    """Make the encoder ``name`` with ``options`` and fit it on the source's train split (val
    split for early stopping): what `graphret train` runs."""
    from graphret.encoders import make_encoder

    encoder = make_encoder(name, **options)
    train, validation = training_indices(images)
    return encoder.fit(images, train, seed=seed, validation=validation)
