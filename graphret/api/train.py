"""Train an encoder on a source and save it to one model file: the library call behind
`graphret train` (the model then serves ``graphret.build(..., model=FILE)``).

>>> import graphret
>>> model = graphret.train("demo:n=300,size=32", "model.pt", encoder="cnn", backbone="small", epochs=2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from graphret.data import open_source
from graphret.data.config import MaskConfig
from graphret.data.imageset import ImageSet
from graphret.encoders.base import Encoder
from graphret.encoders.config import EncoderConfig, TrainingConfig
from graphret.encoders.training import train_encoder
from graphret.errors import ParameterError
from graphret.params import flat_options

DEFAULT_TRAINED_ENCODER = "cnn"


def _configs(encoder: str | None, options: dict[str, Any]) -> tuple[EncoderConfig, TrainingConfig, MaskConfig]:
    """The three configs a training run reads, from flat keyword options (one error naming an
    option none of them has)."""
    parts: dict[type, dict[str, Any]] = {EncoderConfig: {}, TrainingConfig: {}, MaskConfig: {}}
    for name, value in options.items():
        owner = next((kind for kind in parts if name in flat_options(kind)), None)
        if owner is None:
            raise ParameterError(f"graphret.train has no option {name!r}; see `graphret train --help` for the options", param=name)
        parts[owner][flat_options(owner)[name][1].name] = value
    return (EncoderConfig(name=encoder or DEFAULT_TRAINED_ENCODER, **parts[EncoderConfig]),
            TrainingConfig(**parts[TrainingConfig]), MaskConfig(**parts[MaskConfig]))


def train(source: str | Path | ImageSet | None, output: str | Path | None = None, *, encoder: str | None = None,
          seed: int = 0, split: bool = True, quiet: bool = True, log: Callable[[str], None] = lambda _: None,
          **options: Any) -> Encoder:
    """Fit ``encoder`` (default: the CNN classifier) on the train split of ``source`` (its val
    split, or a seeded holdout, for early stopping) and write it to ``output`` when given.

    ``options`` are the flat options of :class:`~graphret.encoders.config.EncoderConfig`,
    :class:`~graphret.encoders.config.TrainingConfig` and :class:`~graphret.data.config.MaskConfig`
    (``backbone="small"``, ``epochs=5``, ``work=60``, ...).  The checkpoint written after every
    epoch (``OUTPUT.ckpt`` unless ``checkpoint`` names one) is removed once the model is saved;
    without ``output`` only a named checkpoint is written.  ``quiet``: no progress bars;
    ``log``: where the one-line steps go."""
    encoder_config, training, masks = _configs(encoder, options)
    name = encoder_config.name
    assert name is not None
    default_checkpoint = f"{output}.ckpt" if output is not None else None
    kwargs = training.options(name, checkpoint_default=default_checkpoint, progress=not quiet)
    images = source if isinstance(source, ImageSet) else open_source(source, seed=seed, split=split)
    images = masks.attach(images, None if isinstance(source, ImageSet) else source)
    log(f"source {images.source}: {len(images)} images")
    model = train_encoder(images, name, seed=seed, **encoder_config.options(), **kwargs)
    if output is not None:
        model.save(output)
        if training.checkpoint is None and default_checkpoint is not None:
            Path(default_checkpoint).unlink(missing_ok=True)  # it only serves an interrupted run
    return model
