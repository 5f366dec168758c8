"""How long a run trains and in what batches: epochs from a work budget (megapixels, not the
clock), or enough to see about 20k images, and the default batch size."""

from __future__ import annotations

from graphret.encoders.config import TrainingConfig

DEFAULT_BATCH_SIZE = 128
SMALL_SET_BATCH_SIZE, SMALL_SET_ITEMS = 64, 2000
DEFAULT_LR = 2e-3
#: Default training length: epochs enough to see about this many images (3 to 30 epochs),
#: a few CPU minutes at 28 px (MedMNIST: Breast 30, Retina 19, Pneumonia 4, blood cells 3).
AUTO_EPOCH_IMAGES = 20000
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 3, 30
#: Epochs a work budget may give (:func:`work_epochs`).
MIN_WORK_EPOCHS, MAX_WORK_EPOCHS = 1, 60
DEFAULT_PATIENCE = 5
#: Without an explicit image size a model takes the source's size, but at most this.
MAX_AUTO_SIZE = 224


def batch_size_for(cfg: TrainingConfig, n_train: int) -> int:
    """``cfg.batch_size``, else 64 below 2000 training items (more steps), else 128."""
    return cfg.batch_size or (SMALL_SET_BATCH_SIZE if n_train < SMALL_SET_ITEMS else DEFAULT_BATCH_SIZE)


def auto_epochs(items_per_epoch: int) -> int:
    """Epochs that show the model about AUTO_EPOCH_IMAGES items, within [3, 30]."""
    return int(min(MAX_AUTO_EPOCHS, max(MIN_AUTO_EPOCHS, round(AUTO_EPOCH_IMAGES / max(items_per_epoch, 1)))))


def work_epochs(items_per_epoch: int, image_size: int, work: float, *, channels: int = 1) -> int:
    """Epochs that process about ``work`` megapixels of training images: ``work * 1e6 /
    (items_per_epoch * image_size**2 * channels)``, rounded, within [1, 60].

    Depends only on the set's size and the model's input size, never on the clock, so a build
    gives the same model on a busy or a quiet machine.  E.g. 60 megapixels over the demo set's
    1,260 training items at 32 px is 46 epochs; over 50,000 items at 64 px, 1 epoch."""
    per_epoch = max(int(items_per_epoch), 1) * int(image_size) ** 2 * max(int(channels), 1)
    return int(min(MAX_WORK_EPOCHS, max(MIN_WORK_EPOCHS, round(float(work) * 1e6 / per_epoch))))


def training_epochs(cfg: TrainingConfig, items_per_epoch: int, image_size: int | None = None, channels: int = 1) -> int:
    """The epochs a run trains: ``cfg.epochs``, else the ``cfg.work`` budget (needs the image
    size), else :func:`auto_epochs`."""
    if cfg.epochs is not None:
        return int(cfg.epochs)
    if cfg.work is not None and image_size is not None:
        return work_epochs(items_per_epoch, image_size, cfg.work, channels=channels)
    return auto_epochs(items_per_epoch)
