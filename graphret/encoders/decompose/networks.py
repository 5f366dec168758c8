"""The decomposing encoder's network (:class:`DecomposeNet`, sized by a
:class:`~graphret.encoders.decompose.spec.NetSpec`) and its parts: the vector quantiser
(straight-through gradient; EMA or loss codebook updates), SPADE normalisation (Park et al.
2019) for the image decoder, and the gradient-reversal layer in front of the adversary.

This module imports torch: :mod:`graphret.encoders.decompose.encoder` imports it only when
it builds a network, so that importing the package does not."""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F

from graphret.encoders.decompose.losses import _kmeans_pp, _lme_pool, _nearest
from graphret.encoders.decompose.spec import ABNORMAL_FEATURES, DISC_SHARPNESS, FINDING_FEATURE_WEIGHT, PRESENCE_SHARPNESS, SHIFT_VIEWS, NetSpec


def _with_views(z, views):
    """``z`` averaged with the other views' logits ``views`` = (sum, count), or ``z`` itself for None."""
    return z if views is None else (z + views[0]) / (1 + views[1])


def conv_block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """3x3 convolution (dilated by ``dilation``), batch normalisation, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dilation, dilation=dilation, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ContextBlock(nn.Module):
    """A residual 3x3 block dilated by ``dilation``: ``h + block(h)``, a wider view at the same
    side and width."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.block = conv_block(width, width, dilation=dilation)

    def forward(self, h):
        return h + self.block(h)


def _resize(y, size: int):
    """``y`` at ``size`` x ``size`` (bilinear), unchanged when it already is."""
    if y.shape[-1] != size or y.shape[-2] != size:
        y = F.interpolate(y, size=(size, size), mode="bilinear", align_corners=False)
    return y


class VectorQuantiser(nn.Module):
    """Nearest-codebook-entry quantisation with a straight-through gradient (VQ-VAE, van den
    Oord et al. 2017): ``vq="loss"`` trains the codebook with ``|sg[z] - e|^2`` beside the
    commitment loss ``beta |z - sg[e]|^2``; ``vq="ema"`` keeps only the commitment loss and
    moves each entry to the exponential moving average of the outputs assigned to it."""

    def __init__(self, num: int, dim: int, *, vq: str = "ema", commitment: float = 0.25, decay: float = 0.99) -> None:
        super().__init__()
        self.num, self.vq, self.commitment, self.decay = num, vq, commitment, decay
        # 0 while warming up (no quantisation); 1 once the codebook is set (start_codebook)
        self.register_buffer("active", torch.zeros((), dtype=torch.long))
        if vq == "ema":
            self.register_buffer("embed", torch.zeros(num, dim))
            self.register_buffer("cluster_size", torch.zeros(num))
            self.register_buffer("embed_avg", torch.zeros(num, dim))
        else:
            self.embed = nn.Parameter(torch.zeros(num, dim))

    @torch.no_grad()
    def start_codebook(self, samples, generator, scale: float = 1.0) -> None:
        """Set the codebook by k-means++ (then Lloyd steps) on encoder outputs (n, d), and
        switch quantisation on.  k-means++ seeds each entry at a point drawn with probability
        proportional to its squared distance from the entries so far, so a rare but distinct
        kind of cell (a small finding) gets an entry of its own."""
        x = samples.float()
        centres = _kmeans_pp(x.cpu(), self.num, generator).to(x.device)
        self.embed.data.copy_(centres)
        if self.vq == "ema":
            counts = torch.bincount(_nearest(x, centres), minlength=self.num).float()
            # the moving averages count per batch: scale = batch images / sampled images
            self.cluster_size.copy_((counts * scale).clamp(min=1.0))
            self.embed_avg.copy_(centres * self.cluster_size[:, None])
        self.active.fill_(1)

    def quantise(self, z):
        """Straight-through quantisation with the current codebook, no updates."""
        if int(self.active) == 0:
            return z
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()
        q = F.embedding(_nearest(flat, self.embed.float()), self.embed.float())
        q = flat + (q - flat).detach()
        return q.view(b, h, w, d).permute(0, 3, 1, 2).to(z.dtype)

    @torch.no_grad()
    def _ema_update(self, flat, idx, dist) -> None:
        """Move the entries to the moving averages of their outputs; restart unused entries
        on the batch's worst-represented outputs."""
        onehot = F.one_hot(idx, self.num).float()
        self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(onehot.t() @ flat.detach(), alpha=1 - self.decay)
        total = self.cluster_size.sum()
        size = (self.cluster_size + 1e-5) / (total + self.num * 1e-5) * total
        self.embed.copy_(self.embed_avg / size[:, None])
        dead = self.cluster_size < 1e-2
        if bool(dead.any()):
            k = min(int(dead.sum()), flat.shape[0])
            worst = dist.gather(1, idx[:, None])[:, 0].topk(k).indices
            rows = dead.nonzero()[:k, 0]
            self.embed[rows] = flat[worst].detach()
            self.embed_avg[rows] = flat[worst].detach()
            self.cluster_size[rows] = 1.0

    def forward(self, z):
        """(quantised map, latent loss, entry index per cell)."""
        b, d, h, w = z.shape
        if int(self.active) == 0:  # warm-up: the continuous map passes through
            return z, z.new_zeros(()), torch.zeros((b, h, w), dtype=torch.long, device=z.device)
        flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()
        e = self.embed.float()
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]
        idx = dist.argmin(1)
        q = F.embedding(idx, e)
        if self.vq == "ema":
            loss = self.commitment * F.mse_loss(flat, q.detach())
            if self.training:
                self._ema_update(flat, idx, dist)
        else:
            loss = F.mse_loss(q, flat.detach()) + self.commitment * F.mse_loss(flat, q.detach())
        q = flat + (q - flat).detach()
        return q.view(b, h, w, d).permute(0, 3, 1, 2).to(z.dtype), loss, idx.view(b, h, w)


class SPADE(nn.Module):
    """Parameter-free batch norm, then a per-pixel scale and shift from the conditioning map."""

    def __init__(self, features: int, cond_channels: int, hidden: int = 16) -> None:
        super().__init__()
        self.cond_channels = cond_channels
        self.norm = nn.BatchNorm2d(features, affine=False)
        # replicate padding: a constant conditioning map gives a constant scale and shift, so
        # the zero map (the normal-appearing image) is computed on one pixel
        self.shared = nn.Sequential(nn.Conv2d(cond_channels, hidden, 3, 1, 1, padding_mode="replicate"), nn.ReLU(inplace=True))
        self.gamma = nn.Conv2d(hidden, features, 3, 1, 1, padding_mode="replicate")
        self.beta = nn.Conv2d(hidden, features, 3, 1, 1, padding_mode="replicate")

    def forward(self, h, cond):
        """``cond`` None means the zero map."""
        if cond is None:
            c = h.new_zeros((1, self.cond_channels, 1, 1))
        elif cond.shape[-2:] != h.shape[-2:]:
            c = F.interpolate(cond, size=h.shape[-2:], mode="bilinear", align_corners=False)
        else:
            c = cond
        a = self.shared(c)
        return self.norm(h) * (1 + self.gamma(a)) + self.beta(a)


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward (Ganin & Lempitsky 2015)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.scale * grad, None


class DecomposeNet(nn.Module):
    """Shared trunk; normal and abnormal maps, each vector-quantised; segmentation decoder on
    the abnormal map (a U-Net: each level also reads the trunk's output of its side, the last
    a full-size stem, so that a finding of a few pixels is segmented at full resolution);
    SPADE image decoder on the normal map; discrimination head on the abnormal map's cells;
    adversary on the normal code (see the package docstring).

    With ``spec.seg_detects`` (one mask channel per target) the image-level logits are the
    segmentation logits' per-channel smooth maximum (times a learned scale, plus a bias), and
    the abnormal code is built from the segmentation decoder: per finding, its presence
    (the gated probability) and its features pooled under the predicted mask."""

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        self.spec = spec
        self.side = spec.side
        widths, level, latent = spec.widths, spec.abnormal_level, spec.latent_dim
        layers, cin = [], spec.channels
        for w in widths:
            layers.append(conv_block(cin, w, 2))
            cin = w
        self.trunk = nn.Sequential(*layers[: level + 1])
        self.trunk_deep = nn.Sequential(*layers[level + 1 :])
        abn_in = widths[level]
        self.to_normal = nn.Sequential(conv_block(cin, cin // 2), nn.Conv2d(cin // 2, latent, 1))
        self.to_abnormal = nn.Sequential(conv_block(abn_in, abn_in), nn.Conv2d(abn_in, latent, 1))
        vq = dict(vq=spec.vq, commitment=spec.commitment, decay=spec.decay)
        self.vq_normal = VectorQuantiser(spec.normal_codebook, latent, **vq)
        self.vq_abnormal = VectorQuantiser(spec.abnormal_codebook, latent, **vq)
        self._build_segmentation_decoder()
        self._build_image_decoder()
        # per cell of the quantised abnormal map: a feature of its codebook entry, and from it a
        # logit per target; image-level logits are the cells' smooth maximum (multiple-instance)
        self.cell_features = nn.Sequential(nn.Conv2d(latent, ABNORMAL_FEATURES, 1), nn.ReLU(inplace=True))
        self.cell_logits = nn.Conv2d(ABNORMAL_FEATURES, spec.n_targets, 1)
        if spec.seg_detects:  # image-level logit per finding from its segmentation channel
            self.det_scale = nn.Parameter(torch.ones(spec.n_targets))
            self.det_bias = nn.Parameter(torch.zeros(spec.n_targets))
        self.adversary = nn.Sequential(nn.Linear(latent * spec.side * spec.side, 128), nn.ReLU(inplace=True), nn.Linear(128, spec.n_targets))

    def _build_segmentation_decoder(self) -> None:
        """Abnormal map -> logits, a U-Net: a 3x3 block at the abnormal map's side, then per
        level a nearest-neighbour up-sampling to the next trunk output's side, that output
        concatenated (skip connection), a 3x3 block; the last level at full size reads a
        full-size stem (one 3x3 block on the input); then the output convolution."""
        spec = self.spec
        seg_w = spec.seg_decoder_widths
        skips = [spec.widths[j] for j in range(spec.abnormal_level - 1, -1, -1)] + [spec.stem_width]
        self.stem = conv_block(spec.channels, spec.stem_width)
        self.seg_in = conv_block(spec.latent_dim, seg_w[0])
        self.seg_up = nn.ModuleList(conv_block(cin + skip, cout) for cin, cout, skip in zip(seg_w[:-1], seg_w[1:], skips))
        # before the full-size level: residual blocks dilated 2, 4, ... (spec.seg_context)
        self.seg_context = nn.Sequential(*(ContextBlock(seg_w[-2], 2 ** (i + 1)) for i in range(spec.seg_context)))
        self.seg_out = nn.Conv2d(seg_w[-1], spec.seg_channels, 3, 1, 1)

    def _build_image_decoder(self) -> None:
        """Normal map -> image: 3x3 convolutions with SPADE conditioned on relu(logits) at every level."""
        img_w, cond = self.spec.image_decoder_widths, self.spec.seg_channels
        self.img_in = nn.Conv2d(self.spec.latent_dim, img_w[0], 3, 1, 1)
        self.img_norm = nn.ModuleList([SPADE(img_w[0], cond)])
        self.img_convs = nn.ModuleList()
        for cin, cout in zip(img_w[:-1], img_w[1:]):
            self.img_convs.append(nn.Conv2d(cin, cout, 3, 1, 1))
            self.img_norm.append(SPADE(cout, cond))
        self.img_out = nn.Conv2d(img_w[-1], self.spec.channels, 3, 1, 1)

    # ---- the maps
    def latents(self, x):
        """(quantised normal map, quantised abnormal map, latent loss) of a normalised batch."""
        outputs = [self.stem(x)]
        h = x
        for layer in self.trunk:
            h = layer(h)
            outputs.append(h)
        shallow = outputs.pop()
        qn, ln, idx_n = self.vq_normal(self.to_normal(self.trunk_deep(shallow)))
        qa, la, idx_a = self.vq_abnormal(self.to_abnormal(shallow))
        self.last_indices = (idx_n, idx_a)  # codebook entries of the last batch (diagnostics)
        self.last_shallow = shallow
        self.last_skips = outputs[::-1]  # the segmentation decoder's skips, deepest first, the stem last
        return qn, qa, ln + la

    def continuous_maps(self, x) -> dict:
        """The encoder's outputs before quantisation (the codebooks start from them)."""
        shallow = self.trunk(x)
        return {"normal": self.to_normal(self.trunk_deep(shallow)), "abnormal": self.to_abnormal(shallow)}

    # ---- heads
    def cell_probability(self, logits):
        """Per cell, the probability that it is abnormal: the sigmoid of its largest target
        logit with the training's positive-class weighting undone (``logit - log(pos_weight)``),
        or one minus the normal class's probability."""
        spec = self.spec
        if spec.multiclass_targets:
            return 1 - torch.softmax(logits, dim=1)[:, spec.normal_target : spec.normal_target + 1]
        shift = torch.tensor(spec.shifts, dtype=logits.dtype, device=logits.device).view(1, -1, 1, 1)
        return torch.sigmoid((logits - shift).amax(dim=1, keepdim=True))

    def pool(self, qa, views=None):
        """The abnormal code of the last batch given to :meth:`latents` (``qa`` its abnormal
        map): :meth:`finding_code` with ``seg_detects`` (``views``: the other test-time views'
        logits, :meth:`view_logits`), else the features of the cells whose
        :meth:`cell_probability` passes ``abnormal_gate``, max-pooled over the cells, and a last
        feature that is 1 when no cell passes -- which abnormality is there, wherever it is, and
        nothing from the cells that look normal (so every image without an abnormal cell gets
        the same code)."""
        if self.spec.seg_detects:
            return self.finding_code(*self.segment_features(qa), views=views)
        f = self.cell_features(qa)
        p = self.cell_probability(self.cell_logits(f))
        gate = self.spec.abnormal_gate
        weight = (p > gate).to(f.dtype) if gate > 0 else p
        none = 1 - weight.amax(dim=(2, 3))
        return torch.cat([(f * weight).amax(dim=(2, 3)), none], dim=1)

    def finding_code(self, seg, hidden, views=None):
        """With ``spec.finding_sets``, :meth:`finding_set_code` of the image-level logits (averaged
        with ``views``, the other test-time views' logits, see :meth:`view_logits`); else the
        per-finding code: per finding c, ``[s_c, on_c * w * unit(f_c)]`` where ``s_c`` is
        the soft presence ``sigmoid(PRESENCE_SHARPNESS * (z_c - t_c))`` of the image-level logit
        ``z_c`` against the decision logit ``t_c`` (``spec.shifts``), ``on_c`` is 1 when ``s_c``
        passes ``abnormal_gate`` (``s_c`` itself with gate 0) and ``f_c`` the segmentation
        decoder's last features averaged under the predicted mask ``sigmoid(seg_c)``; then a
        feature ``1 - max_c s_c`` (no finding).  Two images with the same findings anywhere are
        close, different finding sets far, every image without a finding has nearly the same
        code, and among images with the same decided findings the surer ones come first.
        ``views``: (sum, count) of the other test-time views' logits, averaged into ``z`` (see
        :meth:`view_logits`)."""
        spec = self.spec
        shift = torch.tensor(spec.shifts, dtype=seg.dtype, device=seg.device)
        z = _with_views(self.image_logits(seg), views)
        if spec.finding_sets:
            return self.finding_set_code(z)
        s = torch.sigmoid(PRESENCE_SHARPNESS * (z - shift))
        on = (s > spec.abnormal_gate).to(seg.dtype) if spec.abnormal_gate > 0 else s
        w = torch.sigmoid(seg)
        f = torch.einsum("bchw,bkhw->bck", w, hidden) / w.sum(dim=(2, 3)).clamp(min=1e-6)[..., None]
        f = F.normalize(f, dim=2) * FINDING_FEATURE_WEIGHT
        blocks = torch.cat([s[..., None], f * on[..., None]], dim=2)
        return torch.cat([blocks.flatten(1), 1 - s.amax(dim=1, keepdim=True)], dim=1)

    def finding_set_code(self, z):
        """The finding-set code of the image-level logits ``z`` (B, C): per set S of the C findings
        (``itertools.product`` order: set ``i`` holds finding ``c`` when bit ``C - 1 - c`` of
        ``i`` is 1; set 0 is "no finding"), ``prod_{c in S} s_c * prod_{c not in S} (1 - s_c)``, the probability
        of exactly that set when each finding is present with the soft presence
        ``s_c = sigmoid(PRESENCE_SHARPNESS * (z_c - t_c))`` (``t_c``: the decision logits,
        ``spec.shifts``); divided by its largest entry (the encoder normalises the rows).  Two
        images decided sure of the same findings have cosine near 1, of different findings near 0,
        whichever findings they share: exact-set retrieval.  The per-finding code, where a set
        and a set one finding larger have cosine 0.71, let the normal part of a composite query
        outweigh the abnormal part: on the demo's default build the composite queries' share
        of B's findings rose from 0.542 to 0.654 (0.465 to 0.544 on a second model), exact-set
        P@10 stayed 0.764 -> 0.760 (0.729 -> 0.718), abnormal-space anatomy P@10 fell from 0.334 to 0.278."""
        spec = self.spec
        a = PRESENCE_SHARPNESS * (z - torch.tensor(spec.shifts, dtype=z.dtype, device=z.device))
        sets = torch.tensor(list(itertools.product((0.0, 1.0), repeat=z.shape[1])), dtype=z.dtype, device=z.device)
        log_q = F.logsigmoid(a) @ sets.T + F.logsigmoid(-a) @ (1 - sets).T
        return torch.exp(log_q - log_q.amax(dim=1, keepdim=True))

    def image_logits(self, seg):
        """Per target, the segmentation channel's smooth maximum times a learned scale plus a
        bias (``seg_detects``)."""
        return _lme_pool(seg, sharpness=DISC_SHARPNESS, per_channel=True) * self.det_scale + self.det_bias

    def disc(self, qa, seg=None):
        """Image-level discrimination logits: from the segmentation logits with ``seg_detects``
        (``seg``, or computed from ``qa`` and the last batch's skips), else from the abnormal map."""
        if self.spec.seg_detects:
            return self.image_logits(self.segment(qa) if seg is None else seg)
        if self.spec.multiclass_targets:  # classes compete: pool the features, then one linear map
            return self.cell_logits(self.cell_features(qa).amax(dim=(2, 3), keepdim=True)).flatten(1)
        return _lme_pool(self.cell_logits(self.cell_features(qa)), sharpness=DISC_SHARPNESS, per_channel=True)

    def cell_target_logits(self, qa):
        """The discrimination head's logits per cell of the abnormal map."""
        return self.cell_logits(self.cell_features(qa))

    def segment_features(self, qa, skips=None):
        """(segmentation logits at the image size, the decoder's last features) of the
        abnormal map ``qa`` with the trunk's outputs ``skips`` (default: those of the last
        batch given to :meth:`latents`)."""
        h = self.seg_in(qa)
        for i, (block, skip) in enumerate(zip(self.seg_up, self.last_skips if skips is None else skips)):
            if i == len(self.seg_up) - 1:  # the full-size level reads the context blocks' output
                h = self.seg_context(h)
            h = block(torch.cat([F.interpolate(h, size=skip.shape[-2:], mode="nearest"), skip], dim=1))
        return _resize(self.seg_out(h), self.spec.image_size), h

    def segment(self, qa, skips=None):
        """Segmentation logits at the image size (see :meth:`segment_features`)."""
        return self.segment_features(qa, skips)[0]

    def decode(self, qn, cond):
        """The image from the normal map, conditioned on ``cond`` (None: the zero map)."""
        h = torch.relu(self.img_norm[0](self.img_in(qn), cond))
        for conv, norm in zip(self.img_convs, self.img_norm[1:]):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = torch.relu(norm(conv(h), cond))
        return torch.sigmoid(_resize(self.img_out(F.interpolate(h, scale_factor=2, mode="nearest")), self.spec.image_size))

    @staticmethod
    def condition(seg_logits):
        """The image decoder's conditioning: the evidence of abnormality, relu(logits)."""
        return torch.relu(seg_logits)

    def adversary_input(self):
        """The normal code of the last batch recomputed from the shared trunk's output with
        its gradient stopped: the adversary's reversed gradient reaches only the normal
        branch's own layers, never the trunk that the abnormal branch shares."""
        return self.vq_normal.quantise(self.to_normal(self.trunk_deep(self.last_shallow.detach())))

    def adversary_logits(self, qn, scale: float):
        return self.adversary(GradientReversal.apply(qn.flatten(1), scale))

    # ---- what encoding reads
    def view_logits(self, x, *, shifts: bool = True):
        """The other test-time views of the normalised batch ``x``: (sum of their image-level
        logits, how many), or None without any.  With ``spec.mirror_average`` (``seg_detects``,
        trained with horizontal flips) the left-right mirror image: on the demo's default build
        the mean of an image's and its mirror image's logits lifted nodule / fracture-line AUC
        from 0.949 / 0.958 to 0.959 / 0.969 and the share of test images whose whole finding set
        is decided right from 0.805 to 0.820 (0.785 to 0.807 on a second model).  With
        ``spec.shift_average`` (and ``shifts``) also the image and its mirror shifted by one
        pixel down, right and both (:data:`~graphret.encoders.decompose.spec.SHIFT_VIEWS`: the
        four phases of the trunk's first stride-2 block).  Call it before :meth:`latents` of
        ``x`` itself: it overwrites the last batch's skips."""
        offsets = SHIFT_VIEWS if self.spec.shift_average and shifts else ()
        views = [torch.roll(x, o, dims=(-2, -1)) for o in offsets]
        if self.spec.mirror_average:
            views += [torch.flip(v, dims=[-1]) for v in [x, *views]]
        if not views:
            return None
        total = sum(self.image_logits(self.segment(self.latents(v)[1])) for v in views)
        return total, len(views)

    def segment_image(self, x):
        """Segmentation logits of the normalised batch ``x``; with ``spec.mirror_average``, the
        mean of the image's and its mirror image's (flipped back), as the detector does: on the
        demo's default build it lifted the test Dice (at each finding's calibrated cut) of
        nodule / fracture-line / calcification from 0.696 / 0.591 / 0.698 to 0.718 / 0.618 / 0.718."""
        seg = self.segment(self.latents(x)[1])
        if not self.spec.mirror_average:
            return seg
        return (seg + torch.flip(self.segment(self.latents(torch.flip(x, dims=[-1]))[1]), dims=[-1])) / 2

    def detect(self, x, *, shifts: bool = True):
        """Image-level logits of the normalised batch ``x`` (:meth:`disc`, averaged over the
        test-time views of :meth:`view_logits`; ``shifts=False`` leaves the shifted ones out)."""
        views = self.view_logits(x, shifts=shifts)
        return _with_views(self.disc(self.latents(x)[1]), views)

    def forward(self, x):
        views = self.view_logits(x)
        qn, qa, _ = self.latents(x)
        return {"normal": qn.flatten(1), "abnormal": self.pool(qa, views)}

    def dims(self) -> dict[str, int]:
        return self.spec.dims()


__all__ = ["ContextBlock", "DecomposeNet", "GradientReversal", "SPADE", "VectorQuantiser", "conv_block"]
