"""The embedded demo set: synthetic "phantom" images generated from a seed (no download).

Each image is a 64 x 64 grey phantom of one of four anatomies, drawn as a layout of soft
ellipses under a random pose (rotation, scale, shift), per-image shape jitter, intensity gain
and offset, and Gaussian noise:

* ``head``: bright skull ring, brain, two dark ventricles;
* ``chest``: body, two dark lungs, heart, spine;
* ``abdomen``: body, liver, two kidneys, vertebra;
* ``hand``: palm, four fingers and a thumb.

Five findings are drawn on independently of the anatomy and of each other, each with its own
prevalence (:data:`PREVALENCE`): ``nodule`` (a small bright disc), ``effusion`` (a grey
fluid level with a meniscus at the bottom of the body), ``fracture-line`` (a thin dark
line), ``calcification`` (a cluster of tiny bright dots) and ``artefact`` (periodic streaks
over the whole image).

Two views of the labels (:func:`load_demo`):

* ``labels="findings"`` (default, spec ``demo``): task ``multilabel``, class names the five
  findings, labels the (N, 5) 0/1 matrix; ``metadata["anatomy"]`` holds the anatomy names.
* ``labels="anatomy"`` (spec ``demo:anatomy``): task ``multiclass`` over the four anatomies;
  ``metadata`` holds ``"findings"`` (positive findings joined by "+", "" for none) and one
  0/1 column per finding.

**Finding masks.**  The generator knows where it paints each finding, so it can also give a
per-image segmentation mask (``generate_demo(..., masks=True)``; :func:`load_demo` attaches
them as ``ImageSet.masks``): uint8 (n, size, size) where bit c (value ``1 << c``) marks the
pixels of finding ``FINDINGS[c]`` -- where that finding's soft paint covers at least
:data:`MASK_LEVEL` of the pixel (for ``artefact``, whose streaks cover the whole image, where
the streak moves the intensity by at least half its amplitude).  Findings may overlap, hence
bits.  Asking for masks draws nothing from the random stream: the images, labels and ids are
byte-identical with or without them.

Anatomies are exactly balanced (a seeded permutation of equal shares).  The demo set has no
splits of its own: it gets a seeded 70/30 split stratified by anatomy.  The same (n, seed,
size) give identical images on the same platform.
"""

from __future__ import annotations

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.data.masks import Masks
from graphret.data.split import assign_splits
from graphret.errors import InputError

ANATOMIES: tuple[str, ...] = ("head", "chest", "abdomen", "hand")
FINDINGS: tuple[str, ...] = ("nodule", "effusion", "fracture-line", "calcification", "artefact")
PREVALENCE: tuple[float, ...] = (0.30, 0.20, 0.15, 0.25, 0.12)
DEFAULT_N = 2000
DEFAULT_SIZE = 64
#: A pixel belongs to a finding's mask where that finding's paint covers at least this much of it.
MASK_LEVEL = 0.25

# Layouts: (cx, cy, a, b, rotation, value) in canonical coordinates [-1, 1]^2, y downwards,
# painted in order over a black background.
_LAYOUTS: dict[str, list[tuple[float, float, float, float, float, float]]] = {
    "head": [
        (0.0, 0.0, 0.74, 0.86, 0.0, 0.92),
        (0.0, 0.0, 0.64, 0.76, 0.0, 0.45),
        (-0.13, -0.05, 0.07, 0.22, 0.15, 0.12),
        (0.13, -0.05, 0.07, 0.22, -0.15, 0.12),
    ],
    "chest": [
        (0.0, 0.05, 0.86, 0.80, 0.0, 0.55),
        (-0.38, -0.05, 0.27, 0.56, 0.0, 0.12),
        (0.38, -0.05, 0.27, 0.56, 0.0, 0.12),
        (0.12, 0.28, 0.26, 0.22, 0.3, 0.72),
        (0.0, 0.05, 0.06, 0.80, 0.0, 0.85),
    ],
    "abdomen": [
        (0.0, 0.0, 0.88, 0.66, 0.0, 0.50),
        (-0.36, -0.18, 0.36, 0.27, 0.2, 0.66),
        (-0.42, 0.22, 0.10, 0.17, 0.2, 0.78),
        (0.42, 0.22, 0.10, 0.17, -0.2, 0.78),
        (0.0, 0.40, 0.13, 0.12, 0.0, 0.96),
    ],
    "hand": [
        (0.0, 0.38, 0.38, 0.36, 0.0, 0.70),
        (-0.27, -0.28, 0.075, 0.36, 0.08, 0.76),
        (-0.09, -0.35, 0.075, 0.40, 0.02, 0.76),
        (0.09, -0.33, 0.075, 0.39, -0.02, 0.76),
        (0.27, -0.24, 0.075, 0.33, -0.08, 0.76),
        (-0.50, 0.12, 0.08, 0.26, 0.65, 0.76),
    ],
}

_EDGE = 9.0  # softness of ellipse borders (higher is sharper)


def _ellipse(u, v, cx, cy, a, b, rot=0.0):
    """Soft mask in [0, 1] of an ellipse; parameters broadcast against (k, S, S) coords."""
    du, dv = u - cx, v - cy
    if np.any(rot != 0.0):
        c, s = np.cos(rot), np.sin(rot)
        du, dv = c * du + s * dv, -s * du + c * dv
    r = np.sqrt((du / a) ** 2 + (dv / b) ** 2)
    return np.clip((1.0 - r) * _EDGE, 0.0, 1.0)


def _paint(img, mask, value):
    img *= 1.0 - mask
    img += mask * value


def _col(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)[:, None, None]


def generate_demo(
    n: int = DEFAULT_N, *, seed: int = 0, size: int = DEFAULT_SIZE, masks: bool = False
) -> tuple[np.ndarray, ...]:
    """Generate the phantoms: uint8 images (n, size, size), anatomy index (n,) int64 into
    :data:`ANATOMIES`, and findings (n, 5) int8 0/1 in the order of :data:`FINDINGS`; with
    ``masks`` also the finding masks, uint8 (n, size, size), bit c for ``FINDINGS[c]`` (see the
    module docstring)."""
    if n < 1:
        raise InputError(f"demo set size must be at least 1, got {n}")
    if size < 16:
        raise InputError(f"demo image size must be at least 16 pixels, got {size}")
    if int(seed) < 0:
        raise InputError(f"seed must be a non-negative whole number, got {seed}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xDE40]))
    f32 = np.float32
    anatomy = rng.permutation(np.arange(n) % len(ANATOMIES)).astype(np.int64)
    findings = (rng.random((n, len(FINDINGS))) < np.array(PREVALENCE)).astype(np.int8)

    # Per-image random parameters, all drawn up front so the stream never depends on labels.
    angle = rng.uniform(-0.35, 0.35, n)
    scale = rng.uniform(0.85, 1.12, n)
    shift = rng.uniform(-0.08, 0.08, (n, 2))
    jitter = rng.uniform(0.9, 1.1, (n, 8, 2))
    gain = rng.uniform(0.8, 1.15, n)
    offset = rng.uniform(-0.04, 0.08, n)
    sigma = rng.uniform(0.03, 0.07, n)
    nod = np.column_stack([rng.uniform(-0.45, 0.45, (n, 2)), rng.uniform(0.05, 0.09, n)])
    eff = np.column_stack([rng.uniform(0.25, 0.45, n), rng.uniform(0.55, 0.68, n)])
    frac = np.column_stack(
        [rng.uniform(-0.35, 0.35, (n, 2)), rng.uniform(0, np.pi, n), rng.uniform(0.2, 0.32, n)]
    )
    calc_c = rng.uniform(-0.4, 0.4, (n, 2))
    calc_d = rng.normal(0.0, 0.07, (n, 4, 2))
    art = np.column_stack([rng.uniform(5.0, 9.0, n), rng.uniform(0, np.pi, n), rng.uniform(0, 2 * np.pi, n)])
    noise_seed = rng.integers(0, 2**63 - 1)

    grid = ((np.arange(size, dtype=f32) + 0.5) / size) * 2.0 - 1.0
    x = grid[None, None, :]
    y = grid[None, :, None]
    cos, sin = _col(np.cos(angle)), _col(np.sin(angle))
    sx, sy, sc = _col(shift[:, 0]), _col(shift[:, 1]), _col(scale)
    images = np.zeros((n, size, size), f32)
    bits = np.zeros((n, size, size), np.uint8) if masks else None

    def mark(rows, finding: int, cover) -> None:
        """Set finding's bit where its paint ``cover`` (len(rows), S, S) reaches MASK_LEVEL."""
        if bits is not None:
            bits[rows] |= (np.asarray(cover) >= MASK_LEVEL).astype(np.uint8) << finding

    for k, name in enumerate(ANATOMIES):
        idx = np.flatnonzero(anatomy == k)
        if not len(idx):
            continue
        u = (cos[idx] * (x - sx[idx]) + sin[idx] * (y - sy[idx])) / sc[idx]
        v = (-sin[idx] * (x - sx[idx]) + cos[idx] * (y - sy[idx])) / sc[idx]
        img = np.zeros((len(idx), size, size), f32)
        for e, (cx, cy, a, b, rot, value) in enumerate(_LAYOUTS[name]):
            ja, jb = _col(jitter[idx, e, 0]), _col(jitter[idx, e, 1])
            _paint(img, _ellipse(u, v, f32(cx), f32(cy), f32(a) * ja, f32(b) * jb, f32(rot)), f32(value))
        body = _ellipse(u, v, f32(0.0), f32(0.05), f32(0.8), f32(0.78))

        sel = findings[idx]
        j = np.flatnonzero(sel[:, 1])  # effusion: fluid level with a meniscus, inside the body
        if len(j):
            level = _col(eff[idx[j], 0]) - 0.35 * u[j] ** 2
            mask = body[j] * np.clip((v[j] - level) * 12.0, 0.0, 1.0)
            tmp = img[j]  # fancy indexing copies: paint the copy, then write it back
            _paint(tmp, mask, _col(eff[idx[j], 1]))
            img[j] = tmp
            mark(idx[j], 1, mask)
        j = np.flatnonzero(sel[:, 0])  # nodule: small bright disc
        if len(j):
            p = nod[idx[j]]
            tmp = img[j]
            disc = _ellipse(u[j], v[j], _col(p[:, 0]), _col(p[:, 1]), _col(p[:, 2]), _col(p[:, 2]))
            _paint(tmp, disc, f32(1.0))
            img[j] = tmp
            mark(idx[j], 0, disc)
        j = np.flatnonzero(sel[:, 3])  # calcification: cluster of tiny bright dots
        if len(j):
            tmp = img[j]
            for d in range(calc_d.shape[1]):
                cx = _col(calc_c[idx[j], 0] + calc_d[idx[j], d, 0])
                cy = _col(calc_c[idx[j], 1] + calc_d[idx[j], d, 1])
                dot = _ellipse(u[j], v[j], cx, cy, f32(0.035), f32(0.035))
                _paint(tmp, dot, f32(1.0))
                mark(idx[j], 3, dot)
            img[j] = tmp
        j = np.flatnonzero(sel[:, 2])  # fracture line: thin dark segment
        if len(j):
            p = frac[idx[j]]
            cx, cy = _col(p[:, 0]), _col(p[:, 1])
            dx, dy = _col(np.cos(p[:, 2])), _col(np.sin(p[:, 2]))
            half = _col(p[:, 3])
            du, dv = u[j] - cx, v[j] - cy
            t = np.clip(du * dx + dv * dy, -half, half)
            dist = np.sqrt((du - t * dx) ** 2 + (dv - t * dy) ** 2)
            tmp = img[j]
            line = np.clip((0.035 - dist) * 60.0, 0.0, 1.0)
            _paint(tmp, line, f32(0.02))
            img[j] = tmp
            mark(idx[j], 2, line)
        images[idx] = img

    j = np.flatnonzero(findings[:, 4])  # artefact: periodic streaks in image coordinates
    if len(j):
        p = art[j]
        phase = 2 * np.pi * _col(p[:, 0]) * (x * _col(np.cos(p[:, 1])) + y * _col(np.sin(p[:, 1])))
        streaks = np.sin(phase + _col(p[:, 2])).astype(f32)
        images[j] += 0.16 * streaks
        mark(j, 4, np.abs(streaks) >= 0.5)

    images *= _col(gain)
    images += _col(offset)
    noise_rng = np.random.default_rng(noise_seed)
    images += noise_rng.standard_normal(images.shape, dtype=f32) * _col(sigma)
    out = np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8)
    if bits is not None:
        return out, anatomy, findings, bits
    return out, anatomy, findings


def load_demo(
    *,
    labels: str = "findings",
    n: int = DEFAULT_N,
    seed: int = 0,
    size: int = DEFAULT_SIZE,
    split: bool = True,
) -> ImageSet:
    """The demo set as an :class:`ImageSet` (see the module docstring for the label views),
    with its finding masks attached (``masks``: bit c = ``FINDINGS[c]``)."""
    if labels not in ("findings", "anatomy"):
        raise InputError(f"demo labels must be 'findings' or 'anatomy', got {labels!r} (e.g. demo:anatomy)")
    images, anatomy, findings, bits = generate_demo(n, seed=seed, size=size, masks=True)
    masks = Masks(names=list(FINDINGS), encoding="bits", array=bits, source=f"demo finding masks (seed {seed})")
    anatomy_names = np.array(ANATOMIES, dtype=object)[anatomy].astype(str)
    width = max(6, len(str(n - 1)))
    ids = [f"demo-{i:0{width}d}" for i in range(n)]
    paths = [f"demo:seed={seed}#{i}" for i in range(n)]
    splits, origin = assign_splits(n, split=split, seed=seed, labels=anatomy)
    if labels == "findings":
        return ImageSet(
            ids=ids, paths=paths, splits=splits, labels=findings, class_names=list(FINDINGS),
            task="multilabel", source=f"demo:findings (seed {seed}, n {n})", images=images,
            split_origin=origin, metadata={"anatomy": anatomy_names}, masks=masks,
        )
    joined = np.array(
        ["+".join(f for f, on in zip(FINDINGS, row) if on) for row in findings], dtype=object
    ).astype(str)
    metadata: dict[str, np.ndarray] = {"findings": joined}
    for c, name in enumerate(FINDINGS):
        metadata[name] = findings[:, c].copy()
    return ImageSet(
        ids=ids, paths=paths, splits=splits, labels=anatomy, class_names=list(ANATOMIES),
        task="multiclass", source=f"demo:anatomy (seed {seed}, n {n})", images=images,
        split_origin=origin, metadata=metadata, masks=masks,
    )
