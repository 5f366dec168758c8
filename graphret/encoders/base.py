"""What every encoder is: fit on an ImageSet, encode to named L2-normalised code spaces, save.

An encoder turns images into float32 codes of unit L2 norm, so that cosine similarity is a
dot product.  It may emit several named code spaces (``"default"`` always; e.g. ``"fc2"`` or,
for a decomposing encoder, ``"normal"`` and ``"abnormal"``); the graph is built on
``"default"`` and queries may choose any space.  A classifier encoder also returns its
predicted class and class probabilities for class-filtered search.

Saved encoders are one file written with ``torch.save`` of plain containers and tensors
(loaded with ``weights_only=True``)::

    {"format": "graphret-encoder", "version": 1, "encoder": NAME,
     "config": {...json-able...}, "state": {...tensors...}}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from graphret.data.imageset import ImageSet
from graphret.errors import InputError

DEFAULT_SPACE = "default"
ENCODER_FILE_FORMAT = "graphret-encoder"
ENCODER_FILE_VERSION = 1


@dataclass
class Encoded:
    """Codes of n items: ``spaces[name]`` is float32 (n, d_name) with unit rows."""

    spaces: dict[str, np.ndarray]
    predicted: np.ndarray | None = None  # int64 (n,) predicted class, classifiers only
    probabilities: np.ndarray | None = None  # float32 (n, C), classifiers only

    @property
    def default(self) -> np.ndarray:
        return self.spaces[DEFAULT_SPACE]


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of x scaled to unit L2 norm (float32); an all-zero row stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, eps)


def check_nonzero_codes(encoded: Encoded, ids) -> None:
    """Every code a unit vector: an image the encoder cannot tell from the rest (a source whose
    images are all identical, or blank) encodes to a zero row, which has no direction to compare."""
    for space, codes in encoded.spaces.items():
        zero = np.flatnonzero(np.linalg.norm(np.asarray(codes, np.float64), axis=1) < 0.5)
        if len(zero):
            raise InputError(
                f"{len(zero)} of {len(codes)} images encode to a zero code in the {space!r} space (e.g. {ids[int(zero[0])]}): "
                "the encoder sees no difference between them (identical or blank images); remove them or give images that differ")


class Encoder(ABC):
    """Base class of graphret encoders (state: the learned parameters)."""

    name: ClassVar[str]
    #: True when the encoder has a classifier head (predicted class per item).
    has_classifier: ClassVar[bool] = False
    #: True when :meth:`from_state` takes numpy arrays for its tensors: its file is then read
    #: without importing torch (:mod:`graphret.encoders.arrays_file`).
    state_as_arrays: ClassVar[bool] = False

    @abstractmethod
    def fit(self, images: ImageSet, train: np.ndarray, *, seed: int = 0, validation: np.ndarray | None = None) -> "Encoder":
        """Learn parameters from the items at row positions ``train``."""

    @abstractmethod
    def encode(self, images: ImageSet, indices: np.ndarray | None = None, *, batch_size: int = 256) -> Encoded:
        """Codes of the items at ``indices`` (all items when None), in that order."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """Every parameter (JSON-able) that the manifest records and ``from_state`` needs."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Learned parameters as tensors / plain containers for ``torch.save``."""

    @classmethod
    @abstractmethod
    def from_state(cls, config: dict[str, Any], state: dict[str, Any]) -> "Encoder":
        """Rebuild a fitted encoder from ``config()`` and ``state()``."""

    @property
    def description(self) -> str:
        """An honest one-line name of what this encoder is, for the manifest."""
        return self.name

    def payload(self) -> dict[str, Any]:
        """What the saved file holds (the layout in the module docstring)."""
        return {
            "format": ENCODER_FILE_FORMAT,
            "version": ENCODER_FILE_VERSION,
            "encoder": self.name,
            "config": self.config(),
            "state": self.state(),
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted encoder to one file, atomically."""
        import torch

        from graphret.atomic import atomic_path

        with atomic_path(path) as tmp:
            torch.save(self.payload(), tmp)
