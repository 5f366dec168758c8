"""The one training loop of graphret's torch encoders.

Early stopping on a validation figure (accuracy, or a loss for label-free encoders): the best
epoch's weights are kept; training stops after ``patience`` epochs without a gain (not before
``min_epochs``, by default half the epochs: the learning rate follows a cosine schedule over
all epochs), or when ``time_limit`` seconds have passed (checked after every batch; an epoch cut
short is validated and recorded as ``partial``).  Every epoch's randomness (shuffle,
augmentation, dropout) is seeded from (seed, epoch), so a resumed run gives the same weights as
an uninterrupted one.  A tqdm bar per epoch shows the running loss and the validation figure.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, NamedTuple

import numpy as np

from graphret.encoders.config import TrainingConfig
from graphret.encoders.training.budget import (
    DEFAULT_LR,
    DEFAULT_PATIENCE,
    batch_size_for,
    training_epochs,
)
from graphret.encoders.training.checkpoint import (
    Best,
    comparable,
    module_state,
    resume,
    save_checkpoint,
)
from graphret.encoders.training.device import (
    autocast_for,
    epoch_rng,
    torch,
    torch_generator,
)
from graphret.encoders.training.history import EpochRecord, History
from graphret.errors import InputError


def _epoch_batches(n_train: int, batch_size: int) -> int:
    """Batches per epoch: the last incomplete batch is dropped, unless there is only one."""
    return 1 if n_train < batch_size else max(1, n_train // batch_size)


def _train_epoch(module, step, optimiser, *, cfg: TrainingConfig, device, seed: int, epoch: int, n_train: int, batch_size: int,
                 bar, began: float) -> tuple[float, int, int, int]:
    """One epoch of steps: (summed loss, items seen, batches run, batches planned); stops early
    when the time limit passes (after at least one batch)."""
    t = torch()
    module.train()
    t.manual_seed(int(np.random.SeedSequence([int(seed), epoch, 3]).generate_state(1)[0]))
    order = epoch_rng(seed, epoch).permutation(n_train)
    n_batches = _epoch_batches(n_train, batch_size)
    generator = torch_generator(seed, epoch)
    total, seen = 0.0, 0
    for b in range(n_batches):
        rows = order[b * batch_size: (b + 1) * batch_size]
        with autocast_for(device, cfg.amp):
            loss = step(rows, generator)
        loss = loss.float()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise InputError(f"training diverged (loss {value}) in epoch {epoch}; lower the learning rate, e.g. {{lr={cfg.lr / 10:g}}}", param="lr")
        total += value * len(rows)
        seen += len(rows)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        if cfg.time_limit is not None and b + 1 < n_batches and time.monotonic() - began >= cfg.time_limit:
            return total, seen, b + 1, n_batches
    return total, seen, n_batches, n_batches


class Validation(NamedTuple):
    """How each epoch is validated: ``score()`` returns the figure, or a tuple (figure,
    tie-breaker, ...) compared in order (e.g. accuracy, then -loss); ``name`` labels it in the
    history and the progress bar; ``higher_is_better`` gives its direction."""

    score: Callable[[], Any]
    name: str = "val"
    higher_is_better: bool = True


def _validation(module, validation: Validation | None) -> tuple[float | None, tuple[float, ...] | None]:
    """(the reported figure, the key compared across epochs) of the validation, or Nones."""
    if validation is None:
        return None, None
    module.eval()
    with torch().no_grad():
        got = validation.score()
    # a tuple (figure, tie-breaker, ...) is compared in order; the first is reported
    key = tuple(float(v) for v in got) if isinstance(got, (tuple, list)) else (float(got),)
    key = key if validation.higher_is_better else tuple(-v for v in key)
    return (float(got[0]) if isinstance(got, (tuple, list)) else float(got)), key


def train_loop(
    module,
    *,
    n_train: int,
    step: Callable[[np.ndarray, Any], Any],
    validation: Validation | None,
    cfg: TrainingConfig,
    seed: int,
    fingerprint: dict[str, Any],
    desc: str = "train",
    parameters=None,
    on_epoch: Callable[[int], None] | None = None,
    input_shape: tuple[int, int] | None = None,
) -> History:
    """Train ``module`` in place and leave the best validation epoch's weights in it.

    ``step(rows, generator)`` returns the loss of one batch (rows: positions 0..n_train-1 of
    the training items; generator: the epoch's torch generator for augmentation);
    ``validation`` (a :class:`Validation`, or None) scores each epoch; the best epoch's weights
    are kept.
    ``fingerprint`` (JSON-able) identifies the run; a checkpoint of another run is refused.
    ``on_epoch(epoch)`` runs before each epoch (e.g. to draw that epoch's pairs).
    ``input_shape`` (image size, channels): the model's input, for a ``cfg.work`` budget.

    ``cfg.time_limit`` is checked after every batch: when it has passed, the epoch ends there
    (at least one batch runs), is validated and compared with the best as any epoch is, and
    training stops; no checkpoint is written for a cut epoch, so a resumed run starts again
    from the last whole epoch.
    """
    t = torch()
    cfg = cfg.with_defaults(lr=DEFAULT_LR, patience=DEFAULT_PATIENCE)
    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = t.device("cpu")
    optimiser = t.optim.AdamW(parameters if parameters is not None else module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    image_size, channels = input_shape if input_shape is not None else (None, 1)
    epochs = training_epochs(cfg, n_train, image_size, channels)
    batch_size = batch_size_for(cfg, n_train)
    scheduler = t.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    val_name = validation.name if validation is not None else "val"
    history = History(val_name=val_name)
    min_epochs = cfg.min_epochs if cfg.min_epochs is not None else (epochs + 1) // 2
    fingerprint = comparable(fingerprint)
    best = Best()
    start_epoch = resume(cfg, fingerprint, module, optimiser, scheduler, history, best)
    if best.bad_epochs >= cfg.patience and start_epoch - 1 >= min_epochs:
        start_epoch = epochs + 1  # it had already stopped early
    began = time.monotonic()
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.monotonic()
        if on_epoch is not None:
            on_epoch(epoch)
        bar = _bar(cfg, _epoch_batches(n_train, batch_size), f"{desc} epoch {epoch}/{epochs}")
        total, seen, done, planned = _train_epoch(module, step, optimiser, cfg=cfg, device=device, seed=seed, epoch=epoch,
                                                  n_train=n_train, batch_size=batch_size, bar=bar, began=began)
        scheduler.step()
        val, key = _validation(module, validation)
        cut = done < planned
        history.epochs.append(EpochRecord(epoch=epoch, loss=total / max(seen, 1), val=val, seconds=time.monotonic() - t0, partial=cut))
        if val is None or (key is not None and (best.key is None or key > best.key)):
            best.key, best.state, best.bad_epochs = key, module_state(module), 0
            history.best_val, history.best_epoch = val, epoch
        else:
            best.bad_epochs += 1
        if bar is not None:
            post = {"loss": f"{total / max(seen, 1):.4f}"}
            if val is not None:
                post.update({val_name: f"{val:.4f}", "best": f"{history.best_val:.4f}@{history.best_epoch}"})
            bar.set_postfix(post)
            bar.close()
        if cut:
            history.stopped = f"time limit of {cfg.time_limit:g} s reached in epoch {epoch} (after {done} of {planned} batches)"
            break
        if cfg.checkpoint:
            save_checkpoint(cfg, fingerprint, module, optimiser, scheduler, history, best)
        if best.bad_epochs >= cfg.patience and epoch >= min_epochs:
            history.stopped = f"early stop: no {val_name} gain for {best.bad_epochs} epochs"
            break
        if cfg.time_limit is not None and time.monotonic() - began >= cfg.time_limit and epoch < epochs:
            history.stopped = f"time limit of {cfg.time_limit:g} s reached"
            break
    if not history.stopped:
        history.stopped = f"{epochs} epochs done"
    if best.state is not None:
        module.load_state_dict(best.state)
    module.eval()
    return history


def _bar(cfg: TrainingConfig, total: int, desc: str):
    if not cfg.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=True, file=sys.stderr, dynamic_ncols=True)
