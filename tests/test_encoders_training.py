"""The shared training loop: resumable checkpoints, seeding, augmentation, hold-out, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from graphret.encoders.cnn import CNNEncoder
from graphret.encoders.config import TrainingConfig
from graphret.encoders.training import Augment, holdout, torch_generator
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False)


@pytest.fixture(scope="module")
def blobs():
    return blob_images(n_per_class=20, n_classes=3, size=16, seed=2)


def _dcnn(**kw):
    return CNNEncoder(backbone="dcnn", fc_width=16, **{**FAST, **kw})


def test_resume_continues_and_matches_an_uninterrupted_run(blobs, tmp_path):
    train, val = blobs.indices_of(["train"]), blobs.indices_of(["val"])
    ckpt = tmp_path / "run.ckpt"
    # "interrupted": the time limit stops it after epoch 1 of 3, with a checkpoint (one batch
    # per epoch, so the limit, checked after every batch, ends a whole epoch)
    one_batch = dict(epochs=3, patience=10, batch_size=64)
    first = _dcnn(**one_batch, checkpoint=str(ckpt), time_limit=1e-9).fit(blobs, train, seed=5, validation=val)
    assert len(first.history.epochs) == 1 and "time limit" in first.history.stopped and ckpt.exists()
    assert not first.history.epochs[0].partial
    resumed = _dcnn(**one_batch, checkpoint=str(ckpt), resume=True).fit(blobs, train, seed=5, validation=val)
    assert [e.epoch for e in resumed.history.epochs] == [1, 2, 3]
    assert resumed.history.epochs[0].loss == first.history.epochs[0].loss
    whole = _dcnn(**one_batch).fit(blobs, train, seed=5, validation=val)
    assert [e.loss for e in whole.history.epochs] == [e.loss for e in resumed.history.epochs]
    a = resumed.encode(blobs, np.arange(12)).default
    b = whole.encode(blobs, np.arange(12)).default
    assert np.allclose(a, b, atol=1e-6)


def test_checkpoint_of_another_run_is_refused(blobs, tmp_path):
    train = blobs.indices_of(["train"])
    ckpt = tmp_path / "run.ckpt"
    _dcnn(epochs=1, checkpoint=str(ckpt)).fit(blobs, train, seed=1)
    with pytest.raises(InputError, match="another training run"):
        _dcnn(epochs=1, lr=0.5, checkpoint=str(ckpt), resume=True).fit(blobs, train, seed=1)
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(InputError, match="unreadable"):
        _dcnn(epochs=1, checkpoint=str(tmp_path / "junk.ckpt"), resume=True).fit(blobs, train, seed=1)
    with pytest.raises(InputError, match="no checkpoint .* to resume from; run without resume"):
        _dcnn(epochs=1, checkpoint=str(tmp_path / "gone.ckpt"), resume=True).fit(blobs, train, seed=1)


def test_early_stopping_keeps_the_best_epoch(blobs):
    enc = _dcnn(epochs=6, patience=1, lr=5e-2).fit(blobs, blobs.indices_of(["train"]), seed=0, validation=blobs.indices_of(["val"]))
    h = enc.history
    vals = [e.val for e in h.epochs]
    assert h.best_val == max(vals) and h.epochs[h.best_epoch - 1].val == h.best_val
    if len(h.epochs) < 6:
        assert "early stop" in h.stopped


def test_augment_is_seeded_and_stays_in_range():
    x = torch.rand(4, 1, 16, 16)
    aug = Augment(vflip=True)
    a = aug(x, torch_generator(0, 1))
    b = aug(x, torch_generator(0, 1))
    c = aug(x, torch_generator(0, 2))
    assert a.shape == x.shape and float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_holdout_is_stratified_and_seeded():
    labels = np.repeat([0, 1], [50, 30])
    train, val = holdout(np.arange(80), labels, seed=0)
    assert len(val) == 8 and (labels[val] == 0).sum() == 5 and (labels[val] == 1).sum() == 3
    assert not set(train) & set(val)
    assert np.array_equal(val, holdout(np.arange(80), labels, seed=0)[1])


def test_bad_training_options():
    with pytest.raises(InputError, match="epochs"):
        TrainingConfig(epochs=0)
    with pytest.raises(InputError, match="checkpoint"):
        CNNEncoder(resume=True)
    with pytest.raises(InputError, match="no option 'layer'"):
        from graphret.encoders.siamese import SiameseEncoder

        SiameseEncoder(layer="fc2")
    with pytest.raises(InputError, match="device"):
        from graphret.encoders.training import choose_device

        choose_device("tpu:7")


def test_train_command(tmp_path):
    from click.testing import CliRunner
    from graphret.cli.main import main

    rng = np.random.default_rng(0)
    images = rng.integers(0, 50, size=(60, 16, 16), dtype=np.uint8)
    labels = np.repeat([0, 1], 30)
    images[labels == 1, 4:10, 4:10] = 220
    order = rng.permutation(60)
    np.savez(tmp_path / "tiny.npz", train_images=images[order][:40], train_labels=labels[order][:40, None],
             val_images=images[order][40:50], val_labels=labels[order][40:50, None],
             test_images=images[order][50:], test_labels=labels[order][50:, None])
    model = tmp_path / "m.pt"
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(tmp_path / "tiny.npz"), "-o", str(model), "--encoder", "cnn", "--backbone", "dcnn",
                                  "--epochs", "1", "--batch-size", "16", "--threads", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["encoder"] == "cnn" and summary["epochs"] == 1 and model.exists()
    assert not (tmp_path / "m.pt.ckpt").exists()  # the default checkpoint goes once the model is saved
    from graphret.encoders import load_encoder

    assert load_encoder(model).backbone == "dcnn"
    single = tmp_path / "single.npz"
    np.savez(single, train_images=images[:30], train_labels=np.zeros((30, 1), np.uint8),
             test_images=images[30:40], test_labels=np.zeros((10, 1), np.uint8))
    bad = runner.invoke(main, ["train", str(single), "-o", str(tmp_path / "x.pt"), "--encoder", "cnn", "--quiet"])
    assert bad.exit_code != 0
    assert "single class" in bad.output and "Traceback" not in bad.output
    style = runner.invoke(main, ["train", str(tmp_path / "tiny.npz"), "-o", str(tmp_path / "y.pt"), "--encoder", "dae", "--weights-style", "caffe", "--quiet"])
    assert style.exit_code != 0 and "--weights-style applies to the frozen encoder only" in style.output
    assert not (tmp_path / "y.pt").exists()


def test_auto_epochs_follow_the_set_size():
    from graphret.encoders.training import auto_epochs

    assert auto_epochs(546) == 30 and auto_epochs(4708) == 4 and auto_epochs(100000) == 3


def test_library_train_is_what_the_cli_runs(tmp_path):
    """graphret.train writes the same model as `graphret train` (same seed, same options),
    leaves no checkpoint beside it, and names an option it does not have."""
    from click.testing import CliRunner
    from graphret.cli.main import main

    import graphret
    from graphret.encoders import load_encoder

    options = ["--backbone", "small", "--epochs", "2", "--image-size", "16", "--threads", "1"]
    result = CliRunner().invoke(main, ["train", "demo:n=80,size=16", "-o", str(tmp_path / "cli.pt"), "--quiet", *options])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["encoder"] == "cnn"
    model = graphret.train("demo:n=80,size=16", tmp_path / "lib.pt", backbone="small", epochs=2, image_size=16, threads=1)
    assert model.history is not None and len(model.history.epochs) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.pt", "lib.pt"]  # no .ckpt left
    a, b = load_encoder(tmp_path / "cli.pt"), load_encoder(tmp_path / "lib.pt")
    for key, value in a.state()["net"].items():
        assert torch.equal(value, b.state()["net"][key]), key
    with pytest.raises(InputError, match="no option 'epoch'"):
        graphret.train("demo:n=80,size=16", encoder="cnn", epoch=2)
