"""Encoders: images -> named spaces of L2-normalised float32 codes.

``make_encoder(name, **options)`` builds an unfitted encoder; ``load_encoder(path)`` reads one
saved by :meth:`Encoder.save`.  Modules are imported on first use so that the pixel baseline
does not pay for torchvision.
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

from graphret.encoders.base import (
    DEFAULT_SPACE,
    ENCODER_FILE_FORMAT,
    ENCODER_FILE_VERSION,
    Encoded,
    Encoder,
    l2_normalise,
)
from graphret.encoders.arrays_file import read_arrays_file
from graphret.encoders.external import EXTERNAL_ENCODERS, split_spec
from graphret.errors import InputError

#: Encoder name -> "module:Class" (the models you bring are named KIND:REF, e.g. onnx:model.onnx).
ENCODERS: dict[str, str] = {
    "pixels": "graphret.encoders.pixels:PixelPCAEncoder",
    "cnn": "graphret.encoders.cnn:CNNEncoder",
    "siamese": "graphret.encoders.siamese:SiameseEncoder",
    "dae": "graphret.encoders.dae:DenoisingAutoencoder",
    "frozen": "graphret.encoders.frozen:FrozenEncoder",
    "decompose": "graphret.encoders.decompose:DecomposingEncoder",
    **EXTERNAL_ENCODERS,
}


def encoder_class(name: str) -> type[Encoder]:
    """The class registered under ``name``."""
    if name not in ENCODERS:
        raise InputError(f"unknown encoder {name!r}; choose one of {', '.join(sorted(ENCODERS))} (onnx, torchscript, hf: KIND:PATH; timm:NAME)")
    module_name, class_name = ENCODERS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_encoder(name: str, **options: Any) -> Encoder:
    """An unfitted encoder ``name`` with its keyword options; ``KIND:REF`` names a model you
    bring (``onnx:model.onnx``), REF its first argument."""
    name, ref = split_spec(name)
    cls = encoder_class(name)
    try:
        return cls(ref, **options) if ref is not None else cls(**options)
    except TypeError as error:
        raise InputError(f"bad option for encoder {name!r}: {error}") from None


def load_encoder(path: str | Path, *, expect: str | None = None) -> Encoder:
    """Read an encoder file written by :meth:`Encoder.save`; ``expect`` names the encoder the
    caller needs and refuses a file of another one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such model file: {path} (check the path, or train one with `graphret train`)")
    payload = None
    expected = split_spec(expect)[0] if expect is not None else None
    if expected in ENCODERS and encoder_class(expected).state_as_arrays:
        payload = read_arrays_file(path)  # None: not a file of plain containers and tensors; torch reads it
    if payload is None:
        import torch

        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError) as error:
            raise InputError(f"{path} is not a readable graphret model file ({type(error).__name__}); retrain it with `graphret train`") from None
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FILE_FORMAT:
        raise InputError(f"{path} is not a graphret encoder file; give a file written by `graphret train`")
    if int(payload.get("version", 0)) > ENCODER_FILE_VERSION:
        raise InputError(f"{path} was written by a newer graphret (encoder file version {payload['version']}); upgrade graphret")
    name = payload.get("encoder")
    if expect is not None and name != split_spec(expect)[0]:
        raise InputError(f"{path} holds a {name!r} encoder, not {expect!r}; pass {{encoder={name}}} or another model file", param="encoder")
    try:
        return encoder_class(str(name)).from_state(payload["config"], payload["state"])
    except InputError:
        raise  # already one line naming the problem (a GraphretError is a ValueError too)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise InputError(f"{path} is a damaged {name!r} encoder file ({error}); retrain it") from None


__all__ = [
    "DEFAULT_SPACE",
    "ENCODERS",
    "Encoded",
    "Encoder",
    "encoder_class",
    "l2_normalise",
    "load_encoder",
    "make_encoder",
]
