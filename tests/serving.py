"""Helpers of the server tests: small stores, PNG bytes, a live server."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from graphret.serve import BackgroundServer, ServeConfig, create_app
from tests.stores import build_blob_store  # noqa: F401 - the server tests' store, from the one recipe

TOKEN = "s3cret-token"


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
