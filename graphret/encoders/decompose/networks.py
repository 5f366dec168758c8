"""The decomposing encoder's network (:func:`_net`): a shared convolutional trunk, the normal
and abnormal maps each vector-quantised with its own codebook (straight-through gradient; EMA or
loss codebook updates), the segmentation decoder, the SPADE-conditioned image decoder (Park et
al. 2019), the discrimination head on the abnormal map's cells and the adversary behind a
gradient-reversal layer.  The torch classes are built inside :func:`_net` so that importing
this module does not import torch."""

from __future__ import annotations

from graphret.encoders.dae import dae_plan
from graphret.encoders.decompose.losses import _kmeans_pp, _lme_pool, _nearest
from graphret.encoders.training import torch

#: The same for the discrimination head's cell logits (sharper: a small finding fills one cell).
DISC_SHARPNESS = 8.0
#: Size of the abnormal code: features of the abnormal map's cells, max-pooled.
ABNORMAL_FEATURES = 64


def _net(*, channels: int, image_size: int, latent_dim: int, normal_codebook: int, abnormal_codebook: int,
         seg_channels: int, n_targets: int, width: int, vq: str, commitment: float, decay: float,
         multiclass_targets: bool = False, normal_target: int = 0, abnormal_gate: float = 0.5,
         logit_shift: list[float] | None = None):
    t = torch()
    nn = t.nn
    F = t.nn.functional
    logit_shift = list(logit_shift) if logit_shift else [0.0] * n_targets
    widths = [max(8, w * width // 32) for w in dae_plan(image_size)]
    side = image_size
    for _ in widths:
        side = (side + 1) // 2

    def block(cin, cout, stride=1):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    class VectorQuantiser(nn.Module):
        """Nearest-codebook-entry quantisation with a straight-through gradient."""

        def __init__(self, num: int) -> None:
            super().__init__()
            self.num = num
            # 0 while warming up (no quantisation); 1 once the codebook is set (start_codebook)
            self.register_buffer("active", t.zeros((), dtype=t.long))
            if vq == "ema":
                self.register_buffer("embed", t.zeros(num, latent_dim))
                self.register_buffer("cluster_size", t.zeros(num))
                self.register_buffer("embed_avg", t.zeros(num, latent_dim))
            else:
                self.embed = nn.Parameter(t.zeros(num, latent_dim))

        @t.no_grad()
        def start_codebook(self, samples, generator, scale: float = 1.0) -> None:
            """Set the codebook by k-means++ (then Lloyd steps) on encoder outputs (n, d), and
            switch quantisation on.  k-means++ seeds each entry at a point drawn with
            probability proportional to its squared distance from the entries so far, so a
            rare but distinct kind of cell (a small finding) gets an entry of its own."""
            x = samples.float()
            centres = _kmeans_pp(x.cpu(), self.num, generator).to(x.device)
            self.embed.data.copy_(centres)
            if vq == "ema":
                idx = _nearest(x, centres)
                counts = t.bincount(idx, minlength=self.num).float()
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

        def forward(self, z):
            b, d, h, w = z.shape
            if int(self.active) == 0:  # warm-up: the continuous map passes through
                return z, z.new_zeros(()), t.zeros((b, h, w), dtype=t.long, device=z.device)
            flat = z.permute(0, 2, 3, 1).reshape(-1, d).float()
            e = self.embed.float()
            dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None])
            idx = dist.argmin(1)
            q = F.embedding(idx, e)
            if vq == "ema":
                loss = commitment * F.mse_loss(flat, q.detach())
                if self.training:
                    with t.no_grad():
                        onehot = F.one_hot(idx, self.num).float()
                        self.cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
                        self.embed_avg.mul_(decay).add_(onehot.t() @ flat.detach(), alpha=1 - decay)
                        total = self.cluster_size.sum()
                        size = (self.cluster_size + 1e-5) / (total + self.num * 1e-5) * total
                        self.embed.copy_(self.embed_avg / size[:, None])
                        dead = self.cluster_size < 1e-2
                        if bool(dead.any()):  # restart unused entries on the worst-represented outputs
                            k = min(int(dead.sum()), flat.shape[0])
                            worst = dist.gather(1, idx[:, None])[:, 0].topk(k).indices
                            self.embed[dead.nonzero()[:k, 0]] = flat[worst].detach()
                            self.embed_avg[dead.nonzero()[:k, 0]] = flat[worst].detach()
                            self.cluster_size[dead.nonzero()[:k, 0]] = 1.0
            else:
                loss = F.mse_loss(q, flat.detach()) + commitment * F.mse_loss(flat, q.detach())
            q = flat + (q - flat).detach()
            return q.view(b, h, w, d).permute(0, 3, 1, 2).to(z.dtype), loss, idx.view(b, h, w)

    class SPADE(nn.Module):
        """Parameter-free batch norm, then a per-pixel scale and shift from the conditioning map."""

        def __init__(self, features: int, hidden: int = 16) -> None:
            super().__init__()
            self.norm = nn.BatchNorm2d(features, affine=False)
            # replicate padding: a constant conditioning map gives a constant scale and shift, so
            # the zero map (the normal-appearing image) is computed on one pixel
            self.shared = nn.Sequential(nn.Conv2d(seg_channels, hidden, 3, 1, 1, padding_mode="replicate"), nn.ReLU(inplace=True))
            self.gamma = nn.Conv2d(hidden, features, 3, 1, 1, padding_mode="replicate")
            self.beta = nn.Conv2d(hidden, features, 3, 1, 1, padding_mode="replicate")

        def forward(self, h, cond):
            """``cond`` None means the zero map."""
            if cond is None:
                c = h.new_zeros((1, seg_channels, 1, 1))
            elif cond.shape[-2:] != h.shape[-2:]:
                c = F.interpolate(cond, size=h.shape[-2:], mode="bilinear", align_corners=False)
            else:
                c = cond
            a = self.shared(c)
            return self.norm(h) * (1 + self.gamma(a)) + self.beta(a)

    class GradientReversal(t.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.scale = scale
            return x.view_as(x)

        @staticmethod
        def backward(ctx, grad):
            return -ctx.scale * grad, None

    # decoders: half the encoder's widths, the segmentation decoder half again (CPU cost: the
    # decoders run at up to full resolution, and the image decoder twice per step)
    # run at the latent side and each doubling up to half the image size; the last doubling
    # is a nearest-neighbour up-sampling followed by the output convolution
    img_w = [max(8, w // 2) for w in reversed(widths)]
    # the abnormal map is taken one block earlier than the normal map (twice its side: small
    # findings keep a cell of their own); the segmentation decoder starts there
    abn_level = max(0, len(widths) - 2)
    seg_w = [max(8, w // 4) for w in reversed(widths[: abn_level + 1])]

    class DecomposeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.side = side
            layers, cin = [], channels
            for w in widths:
                layers.append(block(cin, w, 2))
                cin = w
            self.trunk = nn.Sequential(*layers[: abn_level + 1])
            self.trunk_deep = nn.Sequential(*layers[abn_level + 1 :])
            abn_in = widths[abn_level]
            self.to_normal = nn.Sequential(block(cin, cin // 2), nn.Conv2d(cin // 2, latent_dim, 1))
            self.to_abnormal = nn.Sequential(block(abn_in, abn_in), nn.Conv2d(abn_in, latent_dim, 1))
            self.vq_normal = VectorQuantiser(normal_codebook)
            self.vq_abnormal = VectorQuantiser(abnormal_codebook)
            # segmentation decoder: abnormal map -> logits
            seg = [block(latent_dim, seg_w[0])]
            for cin_, cout in zip(seg_w[:-1], seg_w[1:]):
                seg += [nn.Upsample(scale_factor=2, mode="nearest"), block(cin_, cout)]
            self.seg = nn.Sequential(*seg)
            self.seg_out = nn.Conv2d(seg_w[-1], seg_channels, 3, 1, 1)
            # image decoder: normal map, SPADE-conditioned on relu(logits) at every level
            self.img_in = nn.Conv2d(latent_dim, img_w[0], 3, 1, 1)
            self.img_norm = nn.ModuleList([SPADE(img_w[0])])
            self.img_convs = nn.ModuleList()
            for cin_, cout in zip(img_w[:-1], img_w[1:]):
                self.img_convs.append(nn.Conv2d(cin_, cout, 3, 1, 1))
                self.img_norm.append(SPADE(cout))
            self.img_out = nn.Conv2d(img_w[-1], channels, 3, 1, 1)
            # discrimination head on the pooled abnormal code; adversary on the normal code
            # per cell of the quantised abnormal map: a feature of its codebook entry, and from it a
            # logit per target; image-level logits are the cells' smooth maximum (multiple-instance)
            self.cell_features = nn.Sequential(nn.Conv2d(latent_dim, ABNORMAL_FEATURES, 1), nn.ReLU(inplace=True))
            self.cell_logits = nn.Conv2d(ABNORMAL_FEATURES, n_targets, 1)
            self.adversary = nn.Sequential(nn.Linear(latent_dim * side * side, 128), nn.ReLU(inplace=True), nn.Linear(128, n_targets))

        # ---- parts
        def latents(self, x):
            shallow = self.trunk(x)
            qn, ln, idx_n = self.vq_normal(self.to_normal(self.trunk_deep(shallow)))
            qa, la, idx_a = self.vq_abnormal(self.to_abnormal(shallow))
            self.last_indices = (idx_n, idx_a)  # codebook entries of the last batch (diagnostics)
            self.last_shallow = shallow
            return qn, qa, ln + la

        def adversary_input(self):
            """The normal code of the last batch recomputed from the shared trunk's output with
            its gradient stopped: the adversary's reversed gradient reaches only the normal
            branch's own layers, never the trunk that the abnormal branch shares."""
            z = self.to_normal(self.trunk_deep(self.last_shallow.detach()))
            return self.vq_normal.quantise(z)

        def pool(self, qa):
            """The abnormal code: the features of the cells the discrimination head finds
            abnormal (probability above ``abnormal_gate``: the sigmoid of the cell's largest
            target logit with the training's positive-class weighting undone, ``logit -
            log(pos_weight)``, or one minus the normal class's probability), max-pooled over the
            cells, and a last feature that is 1 when no cell is abnormal -- which abnormality is
            there, wherever it is, and nothing from the cells that look normal (so every image
            without an abnormal cell gets the same code)."""
            f = self.cell_features(qa)
            logits = self.cell_logits(f)
            if multiclass_targets:
                p = 1 - t.softmax(logits, dim=1)[:, normal_target : normal_target + 1]
            else:  # undo the positive-class weighting of training: the head's unweighted odds
                shift = t.tensor(logit_shift, dtype=logits.dtype, device=logits.device).view(1, -1, 1, 1)
                p = t.sigmoid((logits - shift).amax(dim=1, keepdim=True))
            weight = (p > abnormal_gate).to(f.dtype) if abnormal_gate > 0 else p
            none = 1 - weight.amax(dim=(2, 3))
            return t.cat([(f * weight).amax(dim=(2, 3)), none], dim=1)

        def disc(self, qa):
            """Image-level discrimination logits from the abnormal map."""
            if multiclass_targets:  # classes compete: pool the features, then one linear map
                return self.cell_logits(self.cell_features(qa).amax(dim=(2, 3), keepdim=True)).flatten(1)
            return _lme_pool(self.cell_logits(self.cell_features(qa)), sharpness=DISC_SHARPNESS, per_channel=True)

        def segment(self, qa):
            y = self.seg_out(F.interpolate(self.seg(qa), scale_factor=2, mode="nearest"))
            if y.shape[-1] != image_size or y.shape[-2] != image_size:
                y = F.interpolate(y, size=(image_size, image_size), mode="bilinear", align_corners=False)
            return y

        def decode(self, qn, cond):
            """The image from the normal map, conditioned on ``cond`` (None: the zero map)."""
            h = self.img_in(qn)
            h = t.relu(self.img_norm[0](h, cond))
            for conv, norm in zip(self.img_convs, self.img_norm[1:]):
                h = F.interpolate(h, scale_factor=2, mode="nearest")
                h = t.relu(norm(conv(h), cond))
            y = self.img_out(F.interpolate(h, scale_factor=2, mode="nearest"))
            if y.shape[-1] != image_size or y.shape[-2] != image_size:
                y = F.interpolate(y, size=(image_size, image_size), mode="bilinear", align_corners=False)
            return t.sigmoid(y)

        @staticmethod
        def condition(seg_logits):
            return t.relu(seg_logits)

        def adversary_logits(self, qn, scale: float):
            return self.adversary(GradientReversal.apply(qn.flatten(1), scale))

        # ---- what encoding reads
        def forward(self, x):
            qn, qa, _ = self.latents(x)
            return {"normal": qn.flatten(1), "abnormal": self.pool(qa)}

        def dims(self) -> dict[str, int]:
            return {"normal": latent_dim * side * side, "abnormal": ABNORMAL_FEATURES + 1}

    return DecomposeNet()
