"""Training budgets: a time limit honoured inside an epoch, and a work budget independent of
the clock."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphret.encoders.cnn import CNNEncoder
from graphret.encoders.config import TrainingConfig
from graphret.encoders.training import (
    Validation,
    train_loop,
    training_epochs,
    work_epochs,
)
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)


def test_work_epochs_depend_on_size_only():
    assert work_epochs(1260, 32, 60.0) == 47  # the demo's training items at 32 px: 46.5
    assert work_epochs(1260, 64, 60.0) == 12
    assert work_epochs(50000, 64, 60.0) == 1  # at least one epoch
    assert work_epochs(10, 8, 1e6) == 60  # at most 60
    assert work_epochs(1260, 32, 60.0, channels=3) == 16
    cfg = TrainingConfig(work=60.0)
    assert training_epochs(cfg, 1260, 32) == 47
    assert training_epochs(TrainingConfig(work=60.0, epochs=5), 1260, 32) == 5
    assert training_epochs(TrainingConfig(), 1260, 32) == 16  # auto_epochs: about 20k images
    with pytest.raises(InputError):
        TrainingConfig(work=0)
    with pytest.raises(InputError):
        TrainingConfig(time_limit=-1)


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(3))


class _Clock:
    """A fake monotonic clock that moves only when a training step says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_time_limit_ends_an_epoch_between_batches_and_keeps_the_best(monkeypatch):
    import graphret.encoders.training.loop as training

    clock = _Clock()
    monkeypatch.setattr(training.time, "monotonic", clock)
    model = _Tiny()
    batches: list[int] = []
    vals = iter([0.5, 0.9, 0.2])  # epoch 1, epoch 2, the cut epoch 3

    def step(rows, generator):
        batches.append(len(rows))
        clock.now += 1.0  # every batch takes one "second"
        return (model.w - float(len(batches))).pow(2).sum()

    # 10 batches per epoch; a limit of 24.5 s passes after the 25th batch, in epoch 3
    cfg = TrainingConfig(epochs=5, batch_size=4, patience=10, progress=False, amp=False, time_limit=24.5)
    history = train_loop(model, n_train=40, step=step, validation=Validation(lambda: next(vals)), cfg=cfg, seed=0, fingerprint={"t": 1})
    epochs = history.epochs
    assert [e.epoch for e in epochs] == [1, 2, 3] and [e.partial for e in epochs] == [False, False, True]
    assert len(batches) == 25  # the cut came right after the 25th batch, not at the epoch's end
    assert "in epoch 3 (after 5 of 10 batches)" in history.stopped
    assert history.best_epoch == 2 and history.best_val == 0.9


def test_time_limit_without_validation_keeps_the_last_weights(monkeypatch):
    import graphret.encoders.training.loop as training

    clock = _Clock()
    monkeypatch.setattr(training.time, "monotonic", clock)
    model = _Tiny()
    count = [0]

    def step(rows, generator):
        count[0] += 1
        clock.now += 1.0
        return (model.w - 1.0).pow(2).sum()

    cfg = TrainingConfig(epochs=3, batch_size=2, progress=False, amp=False, time_limit=3.5)
    history = train_loop(model, n_train=40, step=step, validation=None, cfg=cfg, seed=0, fingerprint={})
    assert len(history.epochs) == 1 and history.epochs[0].partial and count[0] == 4
    assert history.best_epoch == 1  # the cut epoch's (last) weights are the ones kept


def test_same_work_budget_same_model_whatever_the_clock():
    blobs = blob_images(n_per_class=12, n_classes=2, size=16, seed=1)
    train = blobs.indices_of(["train"])
    opts = dict(backbone="small", work=0.02, progress=False, threads=1, amp=False, batch_size=8, patience=10)
    a = CNNEncoder(**opts).fit(blobs, train, seed=3)
    b = CNNEncoder(**opts).fit(blobs, train, seed=3)
    assert a.history.epochs and b.history.stopped == a.history.stopped
    assert [e.loss for e in a.history.epochs] == [e.loss for e in b.history.epochs]
    assert np.allclose(a.encode(blobs).default, b.encode(blobs).default, atol=1e-6)
