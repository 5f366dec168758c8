"""``--encoder torchscript:FILE``: frozen codes from a TorchScript model (``torch.jit.save``).

A TorchScript file states no preprocessing: the input size, channels, mean and std come from
the options (default 224 px, 3 channels, ImageNet's mean / std).  The code is the forward's
output, or, where it returns several (a tuple, list or dict), the one ``layer`` names (a
position or a key).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from graphret.encoders.external.base import one_line
from graphret.encoders.external.torch_model import TorchModelEncoder
from graphret.encoders.training import torch
from graphret.errors import InputError


class TorchScriptEncoder(TorchModelEncoder):
    """A TorchScript model file (see the module docstring)."""

    name: ClassVar[str] = "torchscript"
    noun: ClassVar[str] = "TorchScript model file"
    how_to_make: ClassVar[str] = "a file saved with torch.jit.save(torch.jit.script(model), path)"

    def _load(self) -> dict[str, Any]:
        path = self._path()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript; its files still load
                self.net = torch().jit.load(str(path), map_location="cpu")
        except Exception as error:  # noqa: BLE001 - torch raises several kinds for a bad file
            raise InputError(f"{path} is not a TorchScript model ({one_line(error)}); give {self.how_to_make}") from None
        self.net.eval()
        self.output = self.layer or "output"
        return {}
