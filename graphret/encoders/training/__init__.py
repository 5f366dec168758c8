"""The torch training base shared by graphret's trainable encoders, one concept a module:

* :mod:`~.device`: the device, CPU threads, bf16 autocast, seeded generators per epoch;
* :mod:`~.budget`: how long a run trains (a work budget in megapixels, not the clock) and its batches;
* :mod:`~.batches`: images as tensors (read once when they fit in ``preload_bytes``), channel
  statistics and normalisation;
* :mod:`~.augment`: seeded augmentation suited to medical images;
* :mod:`~.splits`: the train / validation items (the source's splits or a stratified holdout);
* :mod:`~.history` and :mod:`~.checkpoint`: what a run did, and the checkpoint it resumes from;
* :mod:`~.loop`: the one training loop (early stopping, time limit, cosine schedule);
* :mod:`~.encoder`: :class:`TorchEncoder`, what every torch encoder shares (options, shape,
  one call of the loop, code centring, batched encoding);
* :mod:`~.train`: :func:`train_encoder`, a named encoder fitted on a source's train split.

How a run is configured: :class:`graphret.encoders.config.TrainingConfig` (frozen, validated
from its field declarations).  The names below are re-exported for the encoders' imports.
"""

from graphret.encoders.training.augment import Augment
from graphret.encoders.training.batches import (
    ImageBatches,
    Normalise,
    channel_stats,
    check_input_shape,
    progress_batches,
    to_tensor,
)
from graphret.encoders.training.budget import (
    AUTO_EPOCH_IMAGES,
    DEFAULT_BATCH_SIZE,
    DEFAULT_LR,
    DEFAULT_PATIENCE,
    MAX_AUTO_SIZE,
    SMALL_SET_BATCH_SIZE,
    SMALL_SET_ITEMS,
    auto_epochs,
    batch_size_for,
    training_epochs,
    work_epochs,
)
from graphret.encoders.training.checkpoint import load_module_state, module_state
from graphret.encoders.training.device import (
    autocast_for,
    choose_device,
    epoch_rng,
    seed_everything,
    set_threads,
    torch,
    torch_generator,
)
from graphret.encoders.training.encoder import (
    TRAIN_OPTIONS,
    TorchEncoder,
    split_options,
)
from graphret.encoders.training.history import EpochRecord, History
from graphret.encoders.training.loop import Validation, train_loop
from graphret.encoders.training.splits import holdout, training_indices
from graphret.encoders.training.train import train_encoder

__all__ = [
    "AUTO_EPOCH_IMAGES", "DEFAULT_BATCH_SIZE", "DEFAULT_LR", "DEFAULT_PATIENCE", "MAX_AUTO_SIZE",
    "SMALL_SET_BATCH_SIZE", "SMALL_SET_ITEMS", "TRAIN_OPTIONS",
    "Augment", "EpochRecord", "History", "ImageBatches", "Normalise", "TorchEncoder", "Validation",
    "auto_epochs", "autocast_for", "batch_size_for", "channel_stats", "check_input_shape", "choose_device",
    "epoch_rng", "holdout", "load_module_state", "module_state", "progress_batches", "seed_everything",
    "set_threads", "split_options", "to_tensor", "torch", "torch_generator", "train_encoder", "train_loop",
    "training_epochs", "training_indices", "work_epochs",
]
