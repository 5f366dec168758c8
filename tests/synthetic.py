"""Small labelled image sets that tests generate themselves."""

from __future__ import annotations

import numpy as np

from graphret.data.imageset import ImageSet


def blob_images(*, n_per_class: int = 40, n_classes: int = 3, size: int = 16, seed: int = 0, splits: bool = True) -> ImageSet:
    """Grey images of one bright square per class position plus noise; class c's square sits
    in a different place, so pixel codes separate the classes."""
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = rng.integers(0, 60, size=(n, size, size), dtype=np.uint8)
    block = size // 4
    for i, c in enumerate(labels):
        row = (c * block) % (size - block)
        col = ((c * 2 + 1) * block) % (size - block)
        jitter = rng.integers(0, 2, size=2)
        images[i, row + jitter[0] : row + jitter[0] + block, col + jitter[1] : col + jitter[1] + block] = 200 + rng.integers(0, 50)
    order = rng.permutation(n)
    images, labels = images[order], labels[order]
    if splits:
        split = np.array(["train"] * n, dtype=object)
        split[: n // 5] = "test"
        split[n // 5 : n // 5 + n // 10] = "val"
    else:
        split = np.array(["all"] * n, dtype=object)
    return ImageSet(
        ids=[f"blob-{i:04d}" for i in range(n)],
        paths=[f"blobs#{i}" for i in range(n)],
        splits=split,
        labels=labels.astype(np.int64),
        class_names=[f"class{c}" for c in range(n_classes)],
        task="multiclass",
        source="generated blobs",
        images=images,
    )
