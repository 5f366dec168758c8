"""The decomposing encoder: normal / abnormal / both codes, its decoders, supervision, composites."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from graphret.data.demo import FINDINGS, load_demo
from graphret.data.imageset import ImageSet
from graphret.encoders import ENCODERS, load_encoder, make_encoder
from graphret.encoders.decompose import (
    FINDING_FEATURE_WEIGHT,
    PRESENCE_SHARPNESS,
    DecomposeOptions,
    DecomposingEncoder,
    _kmeans_pp,
    class_weights,
    composite_code,
    composite_from_both,
    split_both,
)
from graphret.encoders.training import Normalise, to_tensor
from graphret.errors import InputError

torch.set_num_threads(1)
FAST = dict(progress=False, threads=1, batch_size=16, amp=False, lr=3e-3)


@pytest.fixture(scope="module")
def demo():
    return load_demo(n=96, seed=3, size=32)


@pytest.fixture(scope="module")
def fitted(demo):
    """Trained with the demo's finding masks: 2 warm-up epochs, then 2 quantised."""
    enc = DecomposingEncoder(epochs=4, vq_warmup=0.5, **FAST)
    return enc.fit(demo, demo.indices_of(["train"]), seed=0)


def _without_masks(s: ImageSet) -> ImageSet:
    return dataclasses.replace(s, masks=None)


def test_registered_and_made_by_name():
    assert ENCODERS["decompose"] == "graphret.encoders.decompose:DecomposingEncoder"
    enc = make_encoder("decompose", latent_dim=8, normal_codebook=16)
    assert isinstance(enc, DecomposingEncoder) and enc.options.latent_dim == 8 and enc.options.normal_codebook == 16
    with pytest.raises(InputError, match="option"):
        make_encoder("decompose", no_such_option=1)


def test_spaces_shapes_and_unit_norms(fitted, demo):
    out = fitted.encode(demo, np.arange(20))
    assert set(out.spaces) == {"normal", "abnormal", "both", "default"}
    dims = fitted.space_dims()
    # 32 px: blocks 32 -> 16 -> 8; the normal map is 8 x 8 x latent_dim; the abnormal code one entry per set of findings
    abnormal = 2 ** len(FINDINGS)
    assert fitted.finding_sets and fitted.net.spec.finding_sets
    assert dims == {"normal": 32 * 8 * 8, "abnormal": abnormal, "both": 32 * 64 + abnormal, "default": 32 * 64 + abnormal}
    for name, codes in out.spaces.items():
        assert codes.shape == (20, dims[name]) and codes.dtype == np.float32
        assert np.allclose(np.linalg.norm(codes, axis=1), 1.0, atol=1e-5), name
    assert out.spaces["default"] is out.spaces["both"]  # the default space is `both`, not stored twice
    # both = [normal, abnormal] / sqrt(2): its cosine is the mean of the two spaces' cosines
    assert np.allclose(out.spaces["both"], np.hstack([out.spaces["normal"], out.spaces["abnormal"]]) / math.sqrt(2), atol=1e-6)
    cos_both = out.spaces["both"] @ out.spaces["both"].T
    cos_mean = (out.spaces["normal"] @ out.spaces["normal"].T + out.spaces["abnormal"] @ out.spaces["abnormal"].T) / 2
    assert np.allclose(cos_both, cos_mean, atol=1e-5)
    assert fitted.normal_dim == dims["normal"]
    assert fitted.mode == "masks" and fitted.seg_names == list(FINDINGS) and fitted.target_names == list(FINDINGS)


def test_warm_up_then_quantised_codes(fitted, demo):
    assert len(fitted.warmup_history["epochs"]) == 2 and len(fitted.history.epochs) == 2
    # by default, with one mask channel per finding: the epoch kept by the held-out exact-set accuracy, 2 context blocks
    assert fitted.history.val_name == "val_exact_set" and fitted.net.spec.seg_context == 2 and len(fitted.net.seg_context) == 2
    net = fitted.net
    assert int(net.vq_normal.active) == 1 and int(net.vq_abnormal.active) == 1
    x = Normalise(fitted.mean, fitted.std)(to_tensor(demo.load(np.arange(8), size=32, channels=1)))
    with torch.no_grad():
        qn, qa, _ = net.latents(x)
    # every cell of both maps is one of its codebook's entries
    for q, vq in ((qn, net.vq_normal), (qa, net.vq_abnormal)):
        cells = q.permute(0, 2, 3, 1).reshape(-1, q.shape[1])
        # the direct difference, not cdist's matrix-product path (its cancellation error reached 2.4e-3)
        dist = torch.cdist(cells, vq.embed, compute_mode="donot_use_mm_for_euclid_dist")
        assert float(dist.min(dim=1).values.max()) < 2e-3  # straight-through rounding only
    assert qa.shape[-1] == 2 * qn.shape[-1]  # the abnormal map keeps twice the normal map's side
    # the loss terms of the full objective were all recorded, the adversary included
    assert set(fitted.term_history[-1]) == {"latent", "reconstruction", "residual", "segmentation", "discrimination", "independence", "adversary"}
    assert fitted.term_history[-1]["segmentation"] > 0 and fitted.term_history[-1]["latent"] > 0


def test_kmeans_pp_gives_a_rare_distinct_cluster_its_own_entry():
    g = torch.Generator().manual_seed(0)
    common = torch.randn(2000, 4, generator=g) * 0.1
    rare = torch.randn(5, 4, generator=g) * 0.1 + 10.0  # 5 of 2005 points, far away
    centres = _kmeans_pp(torch.cat([common, rare]), 4, torch.Generator().manual_seed(1))
    assert float(torch.cdist(rare.mean(0, keepdim=True), centres).min()) < 0.5


def test_class_weights_favour_small_findings():
    w = class_weights([0.01, 0.25, 0.0])  # shares of foreground pixels; the third never seen
    # share ** -0.5: 10 and 2, normalised to their mean 6
    assert np.allclose(w, [10 / 6, 2 / 6, 1.0])
    assert class_weights([0.5, 1e-8])[0] == 0.25  # clipped to 1 / limit
    assert class_weights([0.0, 0.0]) == [1.0, 1.0]


def test_finding_code_by_hand():
    """Per finding: soft presence, then features pooled under the predicted mask; the same finding
    in another place gives a close code, no finding gives the shared "none" code."""
    from graphret.encoders.decompose.networks import DecomposeNet
    from graphret.encoders.decompose.spec import NetSpec

    net = DecomposeNet(NetSpec(channels=1, image_size=16, latent_dim=4, normal_codebook=4, abnormal_codebook=4, seg_channels=2,
                               n_targets=2, seg_detects=True)).eval()
    k = net.spec.stem_width  # features per finding: the U-Net's full-size level
    seg = torch.full((3, 2, 16, 16), -20.0)
    seg[0, 0, 1:4, 1:4] = 20.0  # finding 0 top left
    seg[1, 0, 10:13, 10:13] = 20.0  # finding 0 bottom right
    hidden = torch.rand(3, k, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        code = net.finding_code(seg, hidden).numpy()
    assert code.shape == (3, 2 * (1 + k) + 1) == (3, net.dims()["abnormal"])
    # presence of finding 0, not of finding 1 (whose block starts at 1 + k)
    assert np.allclose(code[:2, [0, 1 + k]], [[1, 0], [1, 0]], atol=1e-6)
    assert np.allclose(np.linalg.norm(code[0, 1 : 1 + k]), FINDING_FEATURE_WEIGHT)  # features: a unit vector times the weight
    assert np.all(code[:, 2 + k : -1] == 0)  # an absent finding has no features
    assert abs(code[0, -1]) < 1e-6 and np.allclose(code[2], np.eye(code.shape[1])[-1], atol=1e-6)  # "none"
    unit = code / np.linalg.norm(code, axis=1, keepdims=True)
    w2 = FINDING_FEATURE_WEIGHT**2
    assert unit[0] @ unit[1] >= (1 - w2) / (1 + w2) - 1e-6 and abs(unit[0] @ unit[2]) < 1e-6
    # presence is soft around the decision logit (spec.shifts, 0 here): the surer image ranks first
    seg[1, 0, 10:13, 10:13] = 0.5
    with torch.no_grad():
        weak = net.finding_code(seg, hidden).numpy()
    s = 1 / (1 + np.exp(-PRESENCE_SHARPNESS * float(net.image_logits(seg)[1, 0].detach())))
    assert 0.5 < weak[1, 0] < 0.99 and np.isclose(weak[1, 0], s, atol=1e-5) and np.isclose(weak[1, -1], 1 - s, atol=1e-5)


def test_finding_set_code_by_hand():
    """One entry per set of findings: the probability of exactly that set, the largest entry 1."""
    from graphret.encoders.decompose.networks import DecomposeNet
    from graphret.encoders.decompose.spec import NetSpec

    spec = NetSpec(channels=1, image_size=16, latent_dim=4, normal_codebook=4, abnormal_codebook=4, seg_channels=2,
                   n_targets=2, seg_detects=True, finding_sets=True, logit_shift=(1.0, -1.0))
    net = DecomposeNet(spec).eval()
    assert spec.dims()["abnormal"] == 4
    z = torch.tensor([[1.0, -1.0], [9.0, -9.0], [1.25, -1.5]])  # on both decision logits; sure of finding 0 alone; near
    with torch.no_grad():
        code = net.finding_set_code(z).numpy()
    assert np.allclose(code[0], 1.0)  # every set equally likely
    assert np.allclose(code[1], [0, 0, 1, 0], atol=1e-12)  # sets {}, {1}, {0}, {0, 1}: only {0}
    s0, s1 = 1 / (1 + np.exp(-PRESENCE_SHARPNESS * 0.25)), 1 / (1 + np.exp(PRESENCE_SHARPNESS * 0.5))
    q = np.array([(1 - s0) * (1 - s1), (1 - s0) * s1, s0 * (1 - s1), s0 * s1])
    assert np.allclose(code[2], q / q.max(), atol=1e-6)
    # a set and the set one finding larger are far apart (the per-finding code put them at cosine 0.71)
    with torch.no_grad():
        one, two = net.finding_set_code(torch.tensor([[9.0, -9.0], [9.0, 9.0]])).numpy()
    assert abs(one @ two) < 1e-6


def test_accuracy_thresholds_by_hand():
    from graphret.encoders.decompose.calibration import accuracy_thresholds

    z = np.array([[-3.0, 0.0], [-1.0, 0.0], [0.5, 0.0], [1.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    y = np.array([[0, 1], [0, 0], [1, 1], [0, -1], [1, 0], [1, 1]])
    # column 0: the cuts -0.25 (between -1 and 0.5) and 1.5 (between 1 and 2) get 5 of 6 right, 0.75 only 4: the upper tie
    t = accuracy_thresholds(z, y, min_items=2)
    # column 1: equal logits, so the cuts are below them all (3 positives of 5 known right) or above (2)
    assert t[0] == 1.5 and t[1] == -1.0
    assert accuracy_thresholds(z, y, min_items=4) == [None, None]  # fewer than 4 positives (3) or negatives
    sure = accuracy_thresholds(np.array([[0.0], [1.0], [5.0], [9.0]]), np.array([[0], [0], [1], [1]]), min_items=1)
    assert sure == [3.0]  # a clean split: midway between the classes


def test_exact_set_accuracy_by_hand():
    from graphret.encoders.decompose.calibration import exact_set_accuracy

    z = np.array([[2.0, -1.0], [0.5, 1.0], [-2.0, 3.0], [1.0, -2.0]])
    y = np.array([[1, 0], [0, 1], [0, -1], [1, 1]])
    # cuts 0 / 0: rows 0 and 2 right (row 2's unknown counts as right), row 1 misses finding 0, row 3 finding 1
    assert exact_set_accuracy(z, y, cuts=[0.0, 0.0]) == (0.5, 6 / 8)
    assert exact_set_accuracy(z, y, cuts=[0.75, None]) == (0.75, 7 / 8)  # None: logit 0
    # the items' own accuracy-best cuts (too few items here for any: logit 0)
    assert exact_set_accuracy(z, y) == exact_set_accuracy(z, y, cuts=[0.0, 0.0])


def test_context_blocks_widen_the_segmentation_view():
    """``seg_context`` dilated blocks let a pixel's segmentation logit read input pixels beyond
    the plain decoder's reach (15 px here), at the same output size."""
    from graphret.encoders.decompose.networks import DecomposeNet
    from graphret.encoders.decompose.spec import NetSpec

    reach = {}
    for blocks in (0, 2):
        torch.manual_seed(0)
        spec = NetSpec(channels=1, image_size=64, latent_dim=8, normal_codebook=4, abnormal_codebook=4, seg_channels=2, n_targets=2,
                       width=16, seg_detects=True, seg_context=blocks)
        net = DecomposeNet(spec).eval()
        assert len(net.seg_context) == blocks
        x = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(1)).requires_grad_()
        seg = net.segment(net.latents(x)[1])
        assert seg.shape == (1, 2, 64, 64)
        seg[0, 0, 32, 32].backward()
        rows, cols = np.nonzero(x.grad[0, 0].numpy())
        reach[blocks] = int(max(np.abs(rows - 32).max(), np.abs(cols - 32).max()))
    assert reach[0] <= 16 and reach[2] >= 24


def test_dice_thresholds_by_hand():
    from graphret.encoders.decompose.calibration import dice_thresholds

    z = np.array([-2.0, -0.6, 0.4, 3.0, -5.0, -5.0, -5.0, -5.0]).reshape(1, 2, 1, 4)
    truth = np.array([False, True, True, True] + [False] * 4).reshape(1, 2, 1, 4)
    # channel 0: every cut in [-2, -0.6) keeps the three true pixels alone (Dice 1; below -2: 6 / 7,
    # from -0.6: 4 / 5); of the grid's tied cuts -2, -1.75, ..., -0.75 the upper middle one
    assert dice_thresholds(z, truth, min_items=1) == [-1.25, None]  # channel 1 is in no item
    two = np.concatenate([z, z])
    assert dice_thresholds(two, np.concatenate([truth, truth]), min_items=3) == [None, None]  # in 2 items, fewer than 3
    with pytest.raises(ValueError):
        dice_thresholds(z, truth[:, :1])


def test_mask_cuts_are_calibrated_on_the_held_out_split(fitted, demo):
    from graphret.encoders.decompose.calibration import dice_thresholds
    from graphret.encoders.training import holdout

    train = demo.indices_of(["train"])
    _, abnormal = fitted._targets_from_masks(demo, train)
    _, validation = holdout(train, abnormal, seed=0)
    masks, _ = demo.masks.load(validation, size=32)
    found = dice_thresholds(fitted._segment_logits(demo, validation), masks >= 128)
    assert fitted.mask_logits == [0.0 if t is None else t for t in found] and len(fitted.mask_logits) == len(FINDINGS)
    rows = np.arange(10)
    z = np.log(fitted.segment(demo, rows)) - np.log1p(-fitted.segment(demo, rows))
    decided = fitted.segment_masks(demo, rows)
    cuts = np.asarray(fitted.mask_logits)[None, :, None, None]
    sure = np.abs(z - cuts) > 1e-3  # away from the cut, where float rounding cannot flip the decision
    assert decided.dtype == bool and np.array_equal(decided[sure], (z > cuts)[sure])


def test_decision_logits_are_calibrated_on_the_held_out_split(fitted, demo):
    from graphret.encoders.decompose.calibration import accuracy_thresholds
    from graphret.encoders.training import holdout

    train = demo.indices_of(["train"])
    targets, abnormal = fitted._targets_from_masks(demo, train)
    _, validation = holdout(train, abnormal, seed=0)
    found = accuracy_thresholds(fitted.image_logits(demo, validation), targets[validation])
    want = [math.log(w) if t is None else t for t, w in zip(found, fitted.pos_weight)]
    assert np.allclose(fitted.decision_logits, want) and np.allclose(fitted.net.spec.shifts, want)


def test_detector_averages_each_image_with_its_mirror_image(fitted, demo):
    rows = np.arange(12)
    x = Normalise(fitted.mean, fitted.std)(to_tensor(demo.load(rows, size=32, channels=1)))
    net = fitted.net.eval()
    assert net.spec.mirror_average and net.spec.shift_average  # trained with flips (augment on); findings with masks
    with torch.no_grad():
        plain = net.disc(net.latents(x)[1]).numpy()
        mirror = net.disc(net.latents(torch.flip(x, dims=[-1]))[1]).numpy()
        assert np.allclose(net.detect(x, shifts=False).numpy(), (plain + mirror) / 2, atol=1e-5)  # the held-out score of training
        # encoding and calibration: the image and its mirror image, each shifted by 0 or 1 pixel down and right
        shifted = [torch.roll(x, (i, j), dims=(-2, -1)) for i in (0, 1) for j in (0, 1)]
        views = [net.disc(net.latents(v)[1]).numpy() for v in shifted + [torch.flip(v, dims=[-1]) for v in shifted]]
        eight = np.mean(views, axis=0)
        want = net.finding_set_code(torch.from_numpy(eight)).numpy()
    assert not np.allclose(plain, mirror, atol=1e-3) and not np.allclose(eight, (plain + mirror) / 2, atol=1e-3)
    assert np.allclose(fitted.image_logits(demo, rows), eight, atol=1e-5)
    code = fitted.encode(demo, rows).spaces["abnormal"]  # the finding-set code of the eight views' mean
    assert np.allclose(code, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-5)
    with torch.no_grad():  # the segmentation too, the mirror image's flipped back
        seg = net.segment(net.latents(x)[1])
        seg_mirror = torch.flip(net.segment(net.latents(torch.flip(x, dims=[-1]))[1]), dims=[-1])
    both = torch.sigmoid((seg + seg_mirror) / 2).numpy()
    assert np.allclose(fitted.segment(demo, rows), both, atol=1e-5) and not np.allclose(both, torch.sigmoid(seg).numpy(), atol=1e-3)
    # trained without flips, the shifts off: the image alone
    config, state = fitted.config(), fitted.state()
    unflipped = DecomposingEncoder.from_state({**config, "train": {**config["train"], "augment": False}, "shift_average": False}, state)
    assert not unflipped.net.spec.mirror_average and np.allclose(unflipped.image_logits(demo, rows), plain, atol=1e-5)
    # a model saved before the option (its decision logits calibrated without shifts) loads without them
    old = DecomposingEncoder.from_state({k: v for k, v in config.items() if k != "shift_average"}, state)
    assert not old.net.spec.shift_average and np.allclose(old.image_logits(demo, rows), (plain + mirror) / 2, atol=1e-5)


def test_save_load_round_trip(fitted, demo, tmp_path):
    fitted.save(tmp_path / "dec.pt")
    back = load_encoder(tmp_path / "dec.pt", expect="decompose")
    rows = np.arange(12)
    a, b = fitted.encode(demo, rows), back.encode(demo, rows)
    for name in ("normal", "abnormal", "both", "default"):
        assert np.array_equal(a.spaces[name], b.spaces[name]), name
    assert np.array_equal(fitted.normal_appearing(demo, rows), back.normal_appearing(demo, rows))
    assert np.array_equal(fitted.segment(demo, rows), back.segment(demo, rows))
    assert back.mode == "masks" and back.seg_names == list(FINDINGS) and back.normal_dim == fitted.normal_dim
    assert np.array_equal(back.normal_null, fitted.normal_null)
    assert back.config()["loss_terms"] == fitted.term_history
    assert back.decision_logits == fitted.decision_logits and back.net.spec.shifts == fitted.net.spec.shifts
    assert back.finding_sets and back.mask_logits == fitted.mask_logits and np.array_equal(fitted.segment_masks(demo, rows), back.segment_masks(demo, rows))
    assert back.options == fitted.options and back.options.vq_warmup == 0.5


def test_epoch_kept_by_held_out_exact_set_and_context_blocks_saved(demo, tmp_path):
    """``select_epoch="exact_set"`` keeps the epoch whose held-out exact-set accuracy (at the
    held-out items' own cuts) is best: the kept weights give the recorded figure; the context
    blocks are saved and loaded, and a model saved before the option loads without them."""
    from graphret.encoders.decompose.calibration import exact_set_accuracy
    from graphret.encoders.training import holdout

    train = demo.indices_of(["train"])
    enc = DecomposingEncoder(epochs=3, vq_warmup=0.34, seg_context=1, select_epoch="exact_set", null_directions=0, **FAST)
    enc.fit(demo, train, seed=0)
    assert enc.history.val_name == "val_exact_set" and len(enc.net.seg_context) == 1 and enc.net.spec.seg_context == 1
    targets, abnormal = enc._targets_from_masks(demo, train)
    _, validation = holdout(train, abnormal, seed=0)
    unshifted = DecomposingEncoder.from_state({**enc.config(), "shift_average": False}, enc.state())  # the views training scores
    assert enc.net.spec.shift_average and not unshifted.net.spec.shift_average
    kept = exact_set_accuracy(unshifted.image_logits(demo, validation), targets[validation])[0]
    assert enc.history.best_val == pytest.approx(kept) and 0 <= kept <= 1
    assert max(e["val"] for e in enc.history.to_json()["epochs"]) == pytest.approx(kept)
    enc.save(tmp_path / "ctx.pt")
    back = load_encoder(tmp_path / "ctx.pt", expect="decompose")
    assert back.options.seg_context == 1 and np.array_equal(back.segment(demo, np.arange(4)), enc.segment(demo, np.arange(4)))
    config = {k: v for k, v in enc.config().items() if k != "seg_context"}
    state = {"net": {k: v for k, v in enc.state()["net"].items() if not k.startswith("seg_context.")}}
    old = DecomposingEncoder.from_state(config, state)
    assert old.options.seg_context == 0 and len(old.net.seg_context) == 0


def test_options_object_and_keywords():
    """The model's options are one DecomposeOptions; keywords name its fields (and override an
    options object given with them), the rest are training options."""
    base = DecomposeOptions(latent_dim=8, adversary_weight=0.0)
    enc = DecomposingEncoder(base, normal_codebook=16, epochs=3)
    assert enc.options == dataclasses.replace(base, normal_codebook=16) and enc.train_cfg.epochs == 3
    assert enc.options.weights["adversary_weight"] == 0.0 and enc.options.weights["residual_weight"] == 1.0
    assert DecomposingEncoder(base, latent_dim=12).options.latent_dim == 12 and base.latent_dim == 8
    assert DecomposingEncoder(normal_class=0).options.normal_class == 0  # an index, or a name, or None
    assert DecomposingEncoder()._model_config()["normal_class"] is None


def test_the_gate_decides_which_findings_bring_features(fitted, demo):
    config, state = fitted.config(), fitted.state()
    k = fitted.net.spec.stem_width
    config = {**config, "finding_sets": False}  # the per-finding code (more findings than MAX_SET_CODE_FINDINGS)
    strict = DecomposingEncoder.from_state({**config, "abnormal_gate": 0.999999}, state)  # no finding passes
    codes = strict.encode(demo, np.arange(10)).spaces["abnormal"]
    blocks = codes[:, :-1].reshape(10, len(FINDINGS), 1 + k)
    assert np.all(blocks[:, :, 1:] == 0)  # no features, only the soft presences and "none"
    assert np.allclose(np.linalg.norm(codes, axis=1), 1.0, atol=1e-5)
    # with the default gate a finding brings its features exactly where its image-level logit passes its
    # decision logit (set here to each finding's median logit over the items, so that half of them pass)
    z = fitted.image_logits(demo, np.arange(30))
    median = DecomposingEncoder.from_state({**config, "decision_logits": np.median(z, axis=0).tolist()}, state)
    got = median.encode(demo, np.arange(30)).spaces["abnormal"]
    blocks = got[:, :-1].reshape(30, len(FINDINGS), 1 + k)
    decided = z > np.median(z, axis=0)
    assert decided.sum() == 5 * 15 and np.array_equal(np.abs(blocks[:, :, 1:]).max(axis=2) > 0, decided)


def test_zeroing_the_segmentation_logits_gives_the_normal_appearing_image(fitted, demo):
    net = fitted.net.eval()
    x = Normalise(fitted.mean, fitted.std)(to_tensor(demo.load(np.arange(6), size=32, channels=1)))
    with torch.no_grad():
        qn, qa, _ = net.latents(x)
        seg = net.segment(qa)
        assert seg.shape == (6, len(FINDINGS), 32, 32)
        zero = net.decode(qn, None)
        # None is the zero map, computed on one pixel: the same image as a zero map of full size
        assert torch.allclose(zero, net.decode(qn, torch.zeros_like(seg)), atol=1e-6)
        # a condition in the top-left corner changes the image there, far less at the opposite corner
        cond = torch.zeros_like(seg)
        cond[:, :, :6, :6] = 8.0
        diff = (net.decode(qn, cond) - zero).abs()
        near, far = diff[..., :8, :8].mean(), diff[..., -8:, -8:].mean()
        assert near > 1e-3 and far < 0.25 * near
    assert np.array_equal(fitted.normal_appearing(demo, np.arange(6)), fitted._to_uint8(zero))
    # where the segmentation decoder sees no abnormality (negative logits), relu(logits) = 0:
    # the reconstruction is the normal-appearing image
    saved = net.seg_out.bias.detach().clone()
    try:
        with torch.no_grad():
            net.seg_out.bias.fill_(-1e4)
        assert np.array_equal(fitted.reconstruct(demo, np.arange(6)), fitted.normal_appearing(demo, np.arange(6)))
        with torch.no_grad():
            net.seg_out.bias.fill_(6.0)
        assert not np.array_equal(fitted.reconstruct(demo, np.arange(6)), fitted.normal_appearing(demo, np.arange(6)))
    finally:
        with torch.no_grad():
            net.seg_out.bias.copy_(saved)
    out = fitted.composite_image(demo, [0, 1], [2, 3])
    assert out.shape == (2, 32, 32, 1) and out.dtype == np.uint8
    assert fitted.segment(demo, np.arange(3)).shape == (3, 5, 32, 32)
    assert fitted.discriminate(demo, np.arange(3)).shape == (3, 5)


def test_labels_only_supervision(demo):
    plain = _without_masks(demo)
    enc = DecomposingEncoder(epochs=2, select_epoch="exact_set", **FAST).fit(plain, plain.indices_of(["train"]), seed=0)
    assert enc.mode == "labels" and enc.seg_names == ["abnormal"]
    assert enc.history.val_name == "val_loss"  # no finding masks: the epoch is kept by the loss, whatever select_epoch says
    assert enc.net.spec.seg_context == 0 and not enc.net.spec.shift_average  # and no context blocks or shifted views by default
    assert enc.segment(plain, np.arange(2)).shape == (2, 1, 32, 32)
    # the discrimination term replaces segmentation: no segmentation loss at all
    assert all(t["segmentation"] == 0.0 for t in enc.term_history) and all(t["discrimination"] > 0 for t in enc.term_history)
    with pytest.raises(InputError, match="supervision=labels"):
        DecomposingEncoder(supervision="masks", epochs=1, **FAST).fit(plain, plain.indices_of(["train"]))
    # masks present but labels-only asked for
    enc = DecomposingEncoder(supervision="labels", epochs=1, **FAST).fit(demo, demo.indices_of(["train"]))
    assert enc.mode == "labels" and enc.seg_names == ["abnormal"]


def test_binary_classes_need_to_know_which_is_normal(demo):
    anatomy = load_demo(labels="anatomy", n=96, seed=3, size=32)
    binary = dataclasses.replace(_without_masks(anatomy), labels=(anatomy.labels == 1).astype(np.int64), class_names=["other", "chest"])
    with pytest.raises(InputError, match="normal_class"):
        DecomposingEncoder(epochs=1, **FAST).fit(binary, binary.indices_of(["train"]))
    with pytest.raises(InputError, match="normal_class"):
        DecomposingEncoder(epochs=1, normal_class="nothing", **FAST).fit(binary, binary.indices_of(["train"]))
    enc = DecomposingEncoder(epochs=1, normal_class="other", adversary_weight=0, **FAST).fit(binary, binary.indices_of(["train"]))
    assert enc.target_kind == "binary" and enc.normal_index == 0 and enc.target_names == ["not other"]
    assert "adversary" not in enc.term_history[-1]
    # a class named "normal" is found without being named; more than two classes: cross-entropy
    three = dataclasses.replace(_without_masks(anatomy), class_names=["normal", "chest", "abdomen", "hand"])
    enc = DecomposingEncoder(epochs=1, vq="loss", **FAST).fit(three, three.indices_of(["train"]))
    assert enc.target_kind == "multiclass" and enc.normal_index == 0
    assert isinstance(enc.net.vq_abnormal.embed, torch.nn.Parameter)  # codebook + commitment losses
    p = enc.discriminate(three, np.arange(4))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_masks_without_labels_give_the_labels(demo):
    unlabelled = dataclasses.replace(demo, labels=None, class_names=[], task="unlabelled")
    enc = DecomposingEncoder(epochs=1, **FAST).fit(unlabelled, unlabelled.indices_of(["train"]))
    assert enc.mode == "masks" and enc.target_names == list(FINDINGS)
    with pytest.raises(InputError, match="neither"):
        DecomposingEncoder(epochs=1, **FAST).fit(_without_masks(unlabelled), unlabelled.indices_of(["train"]))


def test_independence_term_is_zero_where_every_item_has_a_mask(fitted):
    assert fitted.options.independence_weight > 0
    assert [t["independence"] for t in fitted.term_history] == [0.0] * len(fitted.term_history)


def test_normal_code_null_space(fitted, demo):
    basis = fitted.normal_null
    assert basis is not None and basis.shape[1] == fitted.normal_dim and 1 <= len(basis) <= 8 * len(FINDINGS)
    assert np.allclose(basis @ basis.T, np.eye(len(basis)), atol=1e-4)
    codes = fitted.encode(demo, np.arange(30)).spaces["normal"]
    assert np.abs(codes @ basis.T).max() < 1e-4  # the label directions are projected out
    off = DecomposingEncoder(epochs=1, null_directions=0, **FAST).fit(demo, demo.indices_of(["train"]))
    assert off.normal_null is None


def test_composite_code_by_hand():
    normal = np.array([1.0, 0.0], np.float32)
    abnormal = np.array([0.0, 3.0, 4.0], np.float32)  # normalised on the way in
    got = composite_code(normal, abnormal)
    s = 1 / math.sqrt(2)
    assert got.shape == (5,) and np.allclose(got, [s, 0, 0, 0.6 * s, 0.8 * s])
    assert np.isclose(np.linalg.norm(got), 1.0)
    # rows, and one part broadcast against many
    many = composite_code(np.eye(2, dtype=np.float32), abnormal)
    assert many.shape == (2, 5) and np.allclose(many[1], [0, s, 0, 0.6 * s, 0.8 * s])
    n2, a2 = split_both(many, 2)
    assert np.allclose(n2, np.eye(2)) and np.allclose(a2, [[0, 0.6, 0.8]] * 2)
    both_a = composite_code(np.array([0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
    both_b = composite_code(np.array([1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    assert np.allclose(composite_from_both(both_a, both_b, 2), [0, s, 0, 0, s])
    with pytest.raises(InputError):
        composite_code(np.eye(2), np.eye(3)[:3])
    with pytest.raises(InputError, match="normal_dim"):
        split_both(both_a, 5)


def test_composite_of_an_item_with_itself_is_its_both_code(fitted, demo):
    out = fitted.encode(demo, np.arange(10))
    assert np.allclose(composite_code(out.spaces["normal"], out.spaces["abnormal"]), out.spaces["both"], atol=1e-6)
    mixed = composite_code(out.spaces["normal"][:5], out.spaces["abnormal"][5:])
    assert np.allclose(mixed[:, : fitted.normal_dim] * math.sqrt(2), out.spaces["normal"][:5], atol=1e-6)
    assert np.allclose(mixed[:, fitted.normal_dim :] * math.sqrt(2), out.spaces["abnormal"][5:], atol=1e-6)
    assert np.allclose(composite_from_both(out.spaces["both"][:5], out.spaces["both"][5:], fitted.normal_dim), mixed, atol=1e-6)


def test_default_training_length():
    """Without epochs, work or batch size: epochs to see ~50k images in batches of 32 on a small set
    (the demo's 1,260 training phantoms: 40 epochs); what is given is kept."""
    plan = DecomposingEncoder()._training_plan(1260)
    assert plan.epochs == 40 and plan.batch_size == 32
    assert DecomposingEncoder()._training_plan(5000).epochs == 10 and DecomposingEncoder()._training_plan(5000).batch_size is None
    assert DecomposingEncoder()._training_plan(50).epochs == 60
    given = DecomposingEncoder(epochs=3, batch_size=8)._training_plan(1260)
    assert given.epochs == 3 and given.batch_size == 8
    assert DecomposingEncoder(work=5.0)._training_plan(1260).epochs is None  # the work budget decides


def test_options_are_checked():
    for bad in (dict(latent_dim=1), dict(normal_codebook=1), dict(vq="kmeans"), dict(supervision="weak"), dict(ema_decay=0.0),
                dict(ema_decay=1.0), dict(vq_warmup=1.0), dict(residual_weight=-1), dict(null_directions=-1), dict(abnormal_gate=1.0),
                dict(latent_dim=2.5), dict(centre="yes"), dict(width=4), dict(seg_context=-1), dict(select_epoch="accuracy"),
                dict(shift_average="yes")):
        name = next(iter(bad))
        with pytest.raises(InputError, match=name):
            DecomposingEncoder(**bad)
        with pytest.raises(InputError, match=name):
            DecomposeOptions(**bad)


def test_binary_labels_detect_from_the_segmentation_decoder(demo):
    """Labels only, normal vs abnormal: the image-level logit is the segmentation channel's smooth
    maximum (mirror-averaged), the abnormal code the finding-set code; multi-label labels keep the
    cell head, and a labels-only model saved before the rule keeps its own."""
    from graphret.encoders.decompose.losses import _lme_pool
    from graphret.encoders.decompose.spec import DISC_SHARPNESS

    anatomy = load_demo(labels="anatomy", n=96, seed=3, size=32)
    binary = dataclasses.replace(_without_masks(anatomy), labels=(anatomy.labels == 1).astype(np.int64), class_names=["normal", "chest"])
    enc = DecomposingEncoder(epochs=2, **FAST).fit(binary, binary.indices_of(["train"]), seed=0)
    assert enc.seg_detector and enc.finding_sets and enc.net.spec.seg_detects and enc.net.spec.mirror_average
    assert enc.net.spec.seg_context == 2  # context blocks wherever the segmentation decoder detects
    assert not enc.net.spec.shift_average  # shifted views only for findings with masks (measured on the demo)
    rows = np.arange(8)
    x = Normalise(enc.mean, enc.std)(to_tensor(binary.load(rows, size=32, channels=1)))
    net = enc.net.eval()
    with torch.no_grad():
        z = [_lme_pool(net.segment(net.latents(v)[1]), sharpness=DISC_SHARPNESS, per_channel=True) * net.det_scale + net.det_bias
             for v in (x, torch.flip(x, dims=[-1]))]
    assert np.allclose(enc.image_logits(binary, rows), ((z[0] + z[1]) / 2).numpy(), atol=1e-5)
    codes = enc.encode(binary, rows).spaces["abnormal"]
    s = 1 / (1 + np.exp(-4 * (enc.image_logits(binary, rows)[:, 0] - enc.decision_logits[0])))
    want = np.stack([1 - s, s], axis=1)  # set 0: no finding, set 1: abnormal
    assert codes.shape == (8, 2) and np.allclose(codes, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-4)
    # the label loss trains that smooth maximum: no multiple-instance term beside it
    from graphret.encoders.decompose.objective import Batch, Objective

    y = torch.from_numpy(binary.labels[rows].astype(np.float32))[:, None]
    objective = Objective(net, normalise=lambda v: v, weights=enc.options.weights, multiclass=False, pos_weight=enc.pos_weight,
                          cell_targets=None, device="cpu")
    with torch.no_grad():
        qa = net.latents(x)[1]
        seg = net.segment(qa)
        term = objective.discrimination_term(Batch(x, None, None, y, y[:, 0]), qa, seg)
        assert torch.allclose(term, objective.label_loss(net.disc(qa, seg), y))
    assert enc.config()["seg_detector"] is True
    # the independence term trains by default on items without a mask
    assert enc.options.independence_weight > 0 and all("independence" in t for t in enc.term_history)
    multi = DecomposingEncoder(epochs=1, **FAST).fit(_without_masks(demo), demo.indices_of(["train"]), seed=0)
    assert not multi.seg_detector and not multi.net.spec.seg_detects and multi.space_dims()["abnormal"] == 65
    assert multi.net.spec.seg_context == 0
    # a model saved with seg_context "auto" (None) loads with the blocks its network has
    config, state = enc.config(), enc.state()
    assert config["seg_context"] is None and DecomposingEncoder.from_state(config, state).net.spec.seg_context == 2
    # ... and one saved as "auto" when the rule gave labels-only sets none loads without them
    plain = DecomposingEncoder(epochs=1, seg_context=0, **FAST).fit(binary, binary.indices_of(["train"]), seed=0)
    config, state = {**plain.config(), "seg_context": None}, plain.state()
    back = DecomposingEncoder.from_state(config, state)
    assert back.net.spec.seg_context == 0 and np.allclose(back.image_logits(binary, rows), plain.image_logits(binary, rows), atol=1e-6)
    config, state = multi.config(), multi.state()
    config.pop("seg_detector")
    assert not DecomposingEncoder.from_state(config, state).net.spec.seg_detects  # saved before: its own rule


def test_independence_term_by_hand():
    """The normal code's MMD between abnormal and normal items without a mask: about 0 for two groups
    drawn alike, large for groups apart, items with a mask and unknown items left out, 0 without both groups."""
    from graphret.encoders.decompose.objective import Batch, Objective

    g = torch.Generator().manual_seed(0)
    codes = torch.randn(400, 8, 2, 2, generator=g)
    a = torch.tensor([1.0, 0.0] * 200)
    alike = float(Objective.independence_term(Batch(None, None, None, None, a), codes))
    apart = codes.clone()
    apart[a == 1] += 1.0
    far = float(Objective.independence_term(Batch(None, None, None, None, a), apart))
    assert abs(alike) < 0.01 and far > 0.3
    # by hand (numpy): centre the known items' codes, unit rows, Gaussian kernels summed over the bandwidths,
    # within a group off the diagonal only
    from graphret.encoders.decompose.objective import MMD_BANDWIDTHS

    small = torch.randn(8, 3, 1, 1, generator=g)
    flags = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0])  # the last item unknown
    x = small.flatten(1).numpy()[:7].astype(np.float64)
    x = x - x.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    d2 = ((x[:, None] - x[None]) ** 2).sum(axis=2)
    k = sum(np.exp(-d2 / (2 * s2)) for s2 in MMD_BANDWIDTHS)
    within = lambda block: (block.sum() - np.trace(block)) / (len(block) * (len(block) - 1))  # noqa: E731
    want = within(k[:3, :3]) + within(k[3:, 3:]) - 2 * k[:3, 3:].mean()
    assert float(Objective.independence_term(Batch(None, None, None, None, flags), small)) == pytest.approx(want, abs=1e-5)
    # items with a mask and unknown items are left out; one group alone gives 0
    masked = Batch(None, torch.zeros(400, 1, 2, 2), torch.tensor([True, False] * 200), None, a)
    assert float(Objective.independence_term(masked, apart)) == 0.0
    assert float(Objective.independence_term(Batch(None, None, None, None, torch.where(a == 1, a, -1.0)), apart)) == 0.0
