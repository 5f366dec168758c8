"""The options of issue 16 in the configs: mask sources (SourceConfig) and the decompose /
stacked-DAE encoder options (EncoderConfig), and the command-line flags generated from them."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

from graphret.data.config import MaskConfig, SourceConfig
from graphret.encoders.config import EncoderConfig
from graphret.errors import InputError, ParameterError


@pytest.fixture()
def folder(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(images / f"scan{i}.png")
    m = np.zeros((16, 16), np.uint8)
    m[4:8, 4:8] = 255
    for i in (1, 4):
        Image.fromarray(m).save(masks / f"scan{i}.png")
    return images, masks


def test_mask_folder_is_attached_when_the_source_opens(folder):
    images, masks = folder
    plain = SourceConfig(split=False).open(str(images))
    assert plain.masks is None
    got = SourceConfig(split=False, masks=MaskConfig(mask_folder=str(masks))).open(str(images))
    by_name = {str(p).split("/")[-1]: k for p, k in zip(got.paths, got.masks.known)}
    assert by_name == {f"scan{i}.png": i in (1, 4) for i in range(6)}
    assert got.masks.names == ["abnormal"] and got.masks.source.startswith("folder:")


def test_mask_errors_name_the_source_options(folder, tmp_path):
    images, masks = folder
    with pytest.raises(InputError, match="mask_folder") as info:
        SourceConfig(split=False, masks=MaskConfig(mask_folder=str(tmp_path / "missing"))).open(str(images))
    assert info.value.param == "mask_folder"
    with pytest.raises(ParameterError, match="not both"):
        SourceConfig(split=False, masks=MaskConfig(mask_folder=str(masks), mask_column="mask")).open(str(images))
    with pytest.raises(InputError, match="mask_names"):
        SourceConfig(split=False, masks=MaskConfig(mask_folder=str(masks), mask_encoding="bits")).open(str(images))


def test_encoder_options_apply_to_their_encoder():
    assert EncoderConfig(name="dae", stacked=True, pretrain_epochs=3).options() == {"stacked": True, "pretrain_epochs": 3}
    opts = EncoderConfig(name="decompose", supervision="labels", normal_class="normal", abnormal_codebook=16).options()
    assert opts == {"supervision": "labels", "normal_class": "normal", "abnormal_codebook": 16}
    opts = EncoderConfig(name="decompose", seg_context=0, select_epoch="loss").options()
    assert opts == {"seg_context": 0, "select_epoch": "loss"}
    with pytest.raises(ParameterError, match="seg_context"):
        EncoderConfig(name="cnn", seg_context=2)
    with pytest.raises(ParameterError, match="stacked"):
        EncoderConfig(name="cnn", stacked=True)
    with pytest.raises(ParameterError, match="supervision"):
        EncoderConfig(name="dae", supervision="masks")


def test_cli_flags_are_generated():
    text = CliRunner().invoke(main, ["build-graph", "--help"]).output
    for flag in ("--stacked", "--pretrain-epochs", "--supervision", "--normal-class", "--mask-folder", "--mask-column",
                 "--mask-encoding", "--mask-names", "--seg-context", "--select-epoch"):
        assert flag in text
    assert "decompose" in text
    train = CliRunner().invoke(main, ["train", "--help"]).output
    assert "--mask-folder" in train and "--supervision" in train and "--stacked" in train


def test_train_attaches_masks(folder, tmp_path):
    """graphret train with --mask-folder gives the decomposing encoder masks supervision."""
    images, masks = folder
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(main, ["train", str(images), "-o", str(out), "--encoder", "decompose", "--mask-folder", str(masks),
                                       "--epochs", "2", "--batch-size", "2", "--threads", "1", "--no-split", "--quiet",
                                       "--normal-class", "0"])
    assert result.exit_code == 0, result.output
    from graphret.encoders import load_encoder

    assert load_encoder(out).mode == "masks"
