"""The pixel baseline: resized grey pixels reduced by PCA, L2-normalised.

``code = normalise(P^T (x - mu))`` where x is the image resized to ``image_size`` x
``image_size`` grey and scaled to [0, 1], mu the training mean and P the top ``dim``
eigenvectors of the training covariance.  It learns nothing about medicine: it is the floor every trained encoder
must clear (guide, section 7).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.encoders.base import DEFAULT_SPACE, Encoded, Encoder, l2_normalise
from graphret.errors import InputError


class PixelPCAEncoder(Encoder):
    """Resized grey pixels -> PCA -> unit-norm codes."""

    name: ClassVar[str] = "pixels"
    state_as_arrays: ClassVar[bool] = True

    def __init__(self, *, image_size: int = 32, dim: int = 128, batch_size: int = 2048) -> None:
        if image_size < 2:
            raise InputError(f"the pixel image size must be at least 2, got {image_size}; use e.g. {{image_size=32}}", param="image_size")
        if dim < 1:
            raise InputError(f"the pixel code dimension must be at least 1, got {dim}; use e.g. {{dim=128}}", param="dim")
        self.image_size = image_size
        self.dim = dim
        self.batch_size = batch_size
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None  # (size*size, d)
        self.explained_variance_ratio: float | None = None

    @property
    def description(self) -> str:
        d = self.components.shape[1] if self.components is not None else self.dim
        return f"pixel baseline: {self.image_size}x{self.image_size} grey pixels, PCA to {d}, L2-normalised (no learning)"

    def _pixels(self, images: ImageSet, indices: np.ndarray) -> np.ndarray:
        x = images.load(indices, size=self.image_size, channels=1)
        return x.reshape(len(indices), -1).astype(np.float32) / 255.0

    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "PixelPCAEncoder":
        train = np.asarray(train)
        if len(train) < 2:
            raise InputError(f"the pixel baseline needs at least 2 training images, got {len(train)}")
        pixels = self.image_size * self.image_size
        total = np.zeros(pixels, np.float64)
        scatter = np.zeros((pixels, pixels), np.float64)
        for start in range(0, len(train), self.batch_size):
            x = self._pixels(images, train[start : start + self.batch_size]).astype(np.float64)
            total += x.sum(axis=0)
            scatter += x.T @ x
        n = len(train)
        mean = total / n
        covariance = (scatter - n * np.outer(mean, mean)) / max(n - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        d = min(self.dim, pixels, n - 1)
        keep = order[:d]
        # Fix each component's sign (largest-magnitude entry positive) so fits are reproducible.
        vectors = eigenvectors[:, keep]
        signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(d)])
        signs[signs == 0] = 1
        self.mean = mean.astype(np.float32)
        self.components = (vectors * signs).astype(np.float32)
        positive = np.clip(eigenvalues, 0, None)
        self.explained_variance_ratio = float(positive[keep].sum() / max(positive.sum(), 1e-30))
        return self

    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 2048) -> Encoded:
        if self.components is None or self.mean is None:
            raise InputError("the pixel encoder is not fitted (fit it or load a saved one)")
        indices = np.arange(len(images)) if indices is None else np.asarray(indices)
        out = np.empty((len(indices), self.components.shape[1]), np.float32)
        for start in range(0, len(indices), batch_size):
            x = self._pixels(images, indices[start : start + batch_size])
            out[start : start + len(x)] = (x - self.mean) @ self.components
        return Encoded(spaces={DEFAULT_SPACE: l2_normalise(out)})

    def config(self) -> dict[str, Any]:
        return {
            "image_size": self.image_size,
            "dim": self.dim,
            "explained_variance_ratio": self.explained_variance_ratio,
        }

    def state(self) -> dict[str, Any]:
        import torch

        assert self.mean is not None and self.components is not None
        return {"mean": torch.from_numpy(self.mean), "components": torch.from_numpy(self.components)}

    @classmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "PixelPCAEncoder":
        encoder = cls(image_size=int(config["image_size"]), dim=int(config["dim"]))
        encoder.mean = np.asarray(state["mean"]).astype(np.float32)  # a tensor or, read without torch, an array
        encoder.components = np.asarray(state["components"]).astype(np.float32)
        encoder.explained_variance_ratio = config.get("explained_variance_ratio")
        return encoder
