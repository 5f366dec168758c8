"""Helpers of the server tests: small stores, PNG bytes, a live server."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

import graphret
from graphret.serve import BackgroundServer, ServeConfig, create_app
from tests.synthetic import blob_images

TOKEN = "s3cret-token"


def build_blob_store(path: Path, **options) -> Path:
    """60 labelled 16 px images in three classes (train/val/test), pixel codes, CNM and Leiden."""
    graphret.build(blob_images(n_per_class=20, n_classes=3, seed=4), str(path), k=5, communities=("cnm", "leiden"),
                   encoder="pixels", image_size=16, dim=12, **options)
    return path


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def live_server(store: Path, **options) -> BackgroundServer:
    """A started server on a free loopback port (stop it, or use it as a context manager)."""
    return BackgroundServer(create_app(store, ServeConfig(**options))).start()
