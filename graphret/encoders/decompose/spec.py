"""The shape of the decomposing encoder's network (:class:`NetSpec`): every size the torch
modules of :mod:`graphret.encoders.decompose.networks` are built from, derived from the
encoder's options and the data.  Plain Python (no torch), so the sizes can be read, and the
code spaces' dimensions known, without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from graphret.encoders.dae import dae_plan

#: Sharpness of the log-mean-exp of the discrimination head's cell logits (a small finding fills one cell).
DISC_SHARPNESS = 8.0
#: Size of the abnormal code: features of the abnormal map's cells, max-pooled.
ABNORMAL_FEATURES = 64
#: Weight of a finding's pooled features beside its presence in the finding-set code (unit
#: features times this): two images with the same findings stay closer than any two with
#: different sets (cosine >= (1 - w^2) / (1 + w^2) = 0.83 against <= 0.71).
FINDING_FEATURE_WEIGHT = 0.3
#: Sharpness of a finding's soft presence in the finding-set code, ``sigmoid(k (z - t))`` of its
#: image-level logit ``z`` against its decision logit ``t``.  A soft presence ranks the surer
#: images of a finding set first, where a 0 / 1 presence ties them all: on the demo's default
#: build exact-set P@10 0.662 (0 / 1) -> 0.735-0.739 with k = 1, 2, 4 or 8; k = 4 keeps the
#: anatomy out of the code (abnormal-space anatomy P@10 0.335, against 0.386 with k = 1).
PRESENCE_SHARPNESS = 4.0
#: The one-pixel shifts (rows, columns) of the detector's test-time views with
#: ``NetSpec.shift_average``: with the unshifted image, the four phases of the trunk's first
#: stride-2 block, each also mirrored when ``mirror_average`` is on.
SHIFT_VIEWS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (1, 1))
#: Most findings for which the abnormal code is the finding-*set* code (:attr:`NetSpec.finding_sets`,
#: 2 ** findings dimensions); with more, the per-finding code (presence and pooled features).
MAX_SET_CODE_FINDINGS = 8


@dataclass(frozen=True)
class NetSpec:
    """Options and data-derived sizes of one :class:`~graphret.encoders.decompose.networks.DecomposeNet`.

    ``widths``: channels of the trunk's stride-2 blocks (32, 64, 128 times ``width / 32``, as
    many as take the image to at most 8 px); the normal map comes from the last block, the
    abnormal map from the one before (``abnormal_level``); the image decoder runs at half the
    trunk's widths, the segmentation decoder at a quarter."""

    channels: int
    image_size: int
    latent_dim: int
    normal_codebook: int
    abnormal_codebook: int
    seg_channels: int
    n_targets: int
    width: int = 32
    vq: str = "ema"
    commitment: float = 0.25
    decay: float = 0.99
    multiclass_targets: bool = False
    normal_target: int = 0
    abnormal_gate: float = 0.5
    logit_shift: tuple[float, ...] = ()
    #: The segmentation channels are the targets (masks per finding): the image-level
    #: logits and the abnormal code (per-finding features gated by the predicted masks) come
    #: from the segmentation decoder, not from the abnormal map's cells.
    seg_detects: bool = False
    #: With ``seg_detects``: the detector's logits are averaged over each image and its
    #: left-right mirror image (on when training flipped the images).
    mirror_average: bool = False
    #: With ``seg_detects``: the detector's logits are also averaged over the image (and its
    #: mirror image) shifted by one pixel (:data:`SHIFT_VIEWS`) when encoding and calibrating;
    #: the per-epoch held-out score of training reads the unshifted views only.
    shift_average: bool = False
    #: With ``seg_detects``: the abnormal code is the finding-set code (one dimension per set of
    #: findings, its probability under the detector), not the per-finding code (presence and
    #: pooled features per finding); see ``DecomposeNet.finding_set_code``.
    finding_sets: bool = False
    #: Residual 3x3 blocks, dilated 2, 4, ..., that the segmentation decoder runs at the last
    #: level below full size (the seg decoder's second-to-last width), before that level is
    #: up-sampled: a wider view for telling a small finding from a look-alike (a nodule from a
    #: finger tip) than the skips' few pixels.
    seg_context: int = 0

    @property
    def widths(self) -> list[int]:
        return [max(8, w * self.width // 32) for w in dae_plan(self.image_size)]

    @property
    def side(self) -> int:
        """Side of the normal map (the last block's output)."""
        side = self.image_size
        for _ in self.widths:
            side = (side + 1) // 2
        return side

    @property
    def abnormal_level(self) -> int:
        """The trunk block whose output the abnormal map comes from: one before the last, so
        that the abnormal map has twice the normal map's side and a small finding keeps cells
        of its own."""
        return max(0, len(self.widths) - 2)

    @property
    def image_decoder_widths(self) -> list[int]:
        """The image decoder's channels per level, from the latent side up to half the image
        size: half the trunk's widths (CPU cost: it runs twice per step)."""
        return [max(8, w // 2) for w in reversed(self.widths)]

    @property
    def seg_decoder_widths(self) -> list[int]:
        """The segmentation decoder's channels per level, from the abnormal map's side up to
        half the image size (half the trunk's widths), then at full size (U-Net: each level
        also reads the trunk's output of that side, the last one a full-size stem).  Half, not a
        quarter: on the demo's default build it lifted nodule / fracture-line / calcification
        AUC from 0.927 / 0.941 / 0.941 to 0.949 / 0.958 / 0.970 for 3 % more CPU."""
        return [max(16, w // 2) for w in reversed(self.widths[: self.abnormal_level + 1])] + [self.stem_width]

    @property
    def stem_width(self) -> int:
        """Channels of the full-size stem whose output the segmentation decoder's last level reads."""
        return max(16, self.widths[0] // 2)

    @property
    def shifts(self) -> list[float]:
        """Per-target logit shift that undoes the positive-class weighting of training."""
        return list(self.logit_shift) if self.logit_shift else [0.0] * self.n_targets

    def dims(self) -> dict[str, int]:
        """Dimensions of the ``normal`` and ``abnormal`` code spaces."""
        if self.seg_detects and self.finding_sets:  # one per set of findings
            abnormal = 2**self.seg_channels
        elif self.seg_detects:  # per finding: presence, then its pooled features; then "none"
            abnormal = self.seg_channels * (1 + self.stem_width) + 1
        else:
            abnormal = ABNORMAL_FEATURES + 1
        return {"normal": self.latent_dim * self.side * self.side, "abnormal": abnormal}


__all__ = ["ABNORMAL_FEATURES", "DISC_SHARPNESS", "FINDING_FEATURE_WEIGHT", "MAX_SET_CODE_FINDINGS", "NetSpec", "PRESENCE_SHARPNESS", "SHIFT_VIEWS"]
