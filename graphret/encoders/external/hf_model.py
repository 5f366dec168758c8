"""``--encoder hf:DIR``: frozen codes from a Hugging Face transformers vision model saved with
``save_pretrained`` (read with ``local_files_only=True``: nothing is downloaded).

Input size, mean and std come from the folder's ``preprocessor_config.json`` (``crop_size``
where the processor crops, else ``size``; ``image_mean`` / ``image_std``), channels from the
model config's ``num_channels``, unless options set them.  The code is the model's
``pooler_output`` where it has one whose weights the folder holds, else the first token of
``last_hidden_state`` (a ViT's class token) or its spatial mean (a convolutional model);
``layer`` names another output key or a submodule.  The SHA-256 recorded covers every file of
the folder.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, ClassVar

from graphret.encoders.external.base import one_line
from graphret.encoders.external.torch_model import TorchModelEncoder
from graphret.encoders.training import torch
from graphret.errors import InputError


def _processor_values(folder) -> dict[str, Any]:
    """image_size, mean and std from a preprocessor_config.json (what is there of them)."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return {}
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"{path} is not valid JSON ({one_line(error)}); save it again with the processor's save_pretrained") from None
    size = cfg.get("crop_size") if cfg.get("do_center_crop") and cfg.get("crop_size") else cfg.get("size")
    if isinstance(size, dict):
        size = size.get("height") if size.get("height") == size.get("width") else size.get("shortest_edge")
    mean, std = cfg.get("image_mean"), cfg.get("image_std")
    return {"image_size": int(size) if isinstance(size, (int, float)) else None,
            "mean": list(mean) if isinstance(mean, (list, tuple)) else None,
            "std": list(std) if isinstance(std, (list, tuple)) else None}


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' load reports and progress bars off while a model loads."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


class HFEncoder(TorchModelEncoder):
    """A Hugging Face model folder (see the module docstring)."""

    name: ClassVar[str] = "hf"
    noun: ClassVar[str] = "Hugging Face model folder"
    how_to_make: ClassVar[str] = "a folder written by model.save_pretrained(folder)"

    def _load(self) -> dict[str, Any]:
        folder = self._path()
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder} is not a Hugging Face model folder (no config.json); give {self.how_to_make}")
        try:
            from transformers import AutoModel
        except ImportError:
            raise InputError("the hf encoder needs transformers: pip install 'graphret[byo]'") from None
        try:
            with _quiet_transformers():
                self.net, info = AutoModel.from_pretrained(str(folder), local_files_only=True, output_loading_info=True)
        except Exception as error:  # noqa: BLE001 - transformers raises many kinds for a bad folder
            raise InputError(f"{folder} does not load as a transformers model ({one_line(error)}); give {self.how_to_make}") from None
        missing = sorted(info.get("missing_keys") or ())
        self.pooler_usable = not any(k.startswith("pooler.") for k in missing)
        body = [k for k in missing if not k.startswith("pooler.")]
        if body:
            raise InputError(f"{folder} lacks weights for {len(body)} tensors of its model (e.g. {body[0]!r}), which would be random; "
                             "save the whole model with save_pretrained")
        self.net.eval()
        self.hooked = self._named_module(self.layer)
        self.output = self.layer or ("pooler_output" if self.pooler_usable else "last_hidden_state")
        config = self.net.config
        stated = {"channels": getattr(config, "num_channels", None), **_processor_values(folder), "source": "the model folder's configs"}
        if stated.get("image_size") is None and isinstance(getattr(config, "image_size", None), int):
            stated["image_size"] = config.image_size
        return stated

    def _call(self, x):
        return self.net(pixel_values=x)

    def _forward(self, x) -> Any:
        if self.hooked is not None:
            return super()._forward(x)
        t = torch()
        with t.inference_mode():
            out = self._call(t.from_numpy(x))
        keys = [k for k in out.keys() if out[k] is not None]
        wanted = self.output if self.output in keys else None
        if self.layer is not None and wanted is None:
            raise InputError(f"{self._path().name} has no output or layer {self.layer!r}; choose an output ({', '.join(keys)}) "
                             "or a module of model.named_modules() with {layer}", param="layer")
        if wanted is None:  # no usable pooler output
            wanted = "last_hidden_state" if "last_hidden_state" in keys else keys[0]
        self.output = wanted
        return out[wanted]
