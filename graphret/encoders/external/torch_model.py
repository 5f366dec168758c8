"""What the torch models you bring share (TorchScript, timm, Hugging Face): inference mode,
picking one output, and a named layer's activation through a forward hook."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from graphret.encoders.external.base import ExternalEncoder
from graphret.encoders.training import torch
from graphret.errors import InputError


def pick_output(out: Any, layer: str | None, where: str) -> tuple[Any, str]:
    """(the chosen tensor, its name) from what a model returned: a tensor; a tuple / list
    (``layer`` an index); a dict or Hugging Face ModelOutput (``layer`` a key).  Several
    outputs and no ``layer`` is a one-line error naming them."""
    t = torch()
    if isinstance(out, t.Tensor):
        if layer is not None:
            raise InputError(f"{where} returns one tensor, which has no output {layer!r}; drop {{layer}}", param="layer")
        return out, "output"
    if isinstance(out, dict) or hasattr(out, "keys"):
        names = [k for k in out.keys() if isinstance(out[k], t.Tensor)]
        if layer is None:
            if len(names) == 1:
                return out[names[0]], str(names[0])
            raise InputError(f"{where} returns {len(names)} outputs ({', '.join(map(str, names))}); choose one with {{layer={names[0] if names else 'NAME'}}}", param="layer")
        if layer not in names:
            raise InputError(f"{where} has no output {layer!r}; choose one of {', '.join(map(str, names))} with {{layer}}", param="layer")
        return out[layer], layer
    if isinstance(out, (tuple, list)):
        if layer is None:
            if len(out) == 1:
                return out[0], "0"
            raise InputError(f"{where} returns {len(out)} outputs; choose one by position with {{layer=0}}", param="layer")
        if not (layer.isdigit() and int(layer) < len(out)):
            raise InputError(f"{where} returns {len(out)} outputs; {{layer}} must be a position 0 to {len(out) - 1}, got {layer!r}", param="layer")
        return out[int(layer)], layer
    raise InputError(f"{where} returns {type(out).__name__}, not a tensor; give a model whose forward returns its features")


class TorchModelEncoder(ExternalEncoder):
    """An :class:`ExternalEncoder` over a torch module ``self.net``: ``layer`` names a
    submodule (its output is captured by a forward hook) where the module has one of that
    name, else an output of the forward (:func:`pick_output`)."""

    net: Any
    hooked: Any = None
    #: whether the model may run on graphret.encoders.inference's fast engines (a plain
    #: eager module whose forward returns the code: timm's)
    fast: ClassVar[bool] = False
    runner: Any = None
    #: the engine for many images: auto | torch | onnxruntime (graphret.encoders.inference)
    engine: str = "auto"

    def _prepare(self, n_items: int) -> None:
        self.runner = None
        if self.fast and self.hooked is None and self.prep is not None:
            from graphret.encoders.inference import frozen_runner

            if not hasattr(self, "_runners"):
                self._runners: dict[str, Any] = {}
            self.runner = frozen_runner(self.net, device=torch().device("cpu"), size=self.prep.image_size, channels=self.prep.channels,
                                        threads=self.threads, n_items=n_items, engine=self.engine, cache=self._runners)

    def _named_module(self, layer: str | None):
        """The submodule ``layer`` when the model has one (never for a plain output name)."""
        if layer is None:
            return None
        return dict(self.net.named_modules()).get(layer)

    def _call(self, x):
        """The model's forward on a float tensor batch."""
        return self.net(x)

    def _forward(self, x: np.ndarray) -> Any:
        t = torch()
        if self.runner is not None:
            return self.runner(t.from_numpy(x))
        with t.inference_mode():
            batch = t.from_numpy(x)
            if self.hooked is None:
                out, self.output = pick_output(self._call(batch), self.layer, self._path().name)
                return out
            captured: list[Any] = []
            handle = self.hooked.register_forward_hook(lambda module, args, output: captured.append(output))
            try:
                self._call(batch)
            finally:
                handle.remove()
            out, _ = pick_output(captured[0], None, f"layer {self.layer!r} of {self._path().name}")
            self.output = str(self.layer)
            return out
