"""``--encoder timm:NAME --weights FILE``: frozen codes from a timm architecture with weights
from a local file (a state_dict saved with ``torch.save`` or safetensors; nothing is
downloaded).

The network is built without its classifier (``num_classes=0``), so its output is timm's
pooled pre-logits feature; ``layer`` names a submodule instead (e.g. ``layer3``), whose output
is pooled.  Input size, channels, mean and std come from the architecture's ``pretrained_cfg``
unless options set them.  The SHA-256 recorded is the weights file's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from graphret.encoders.external.base import one_line
from graphret.encoders.external.torch_model import TorchModelEncoder
from graphret.errors import InputError


def _head_prefixes(model) -> tuple[str, ...]:
    """The classifier's parameter prefixes, from the architecture's pretrained_cfg."""
    head = (getattr(model, "pretrained_cfg", None) or {}).get("classifier") or ()
    return tuple(f"{h}." for h in ((head,) if isinstance(head, str) else head))


class TimmEncoder(TorchModelEncoder):
    """A timm architecture with local weights (see the module docstring)."""

    name: ClassVar[str] = "timm"
    noun: ClassVar[str] = "timm weights file"
    how_to_make: ClassVar[str] = "a file saved with torch.save(model.state_dict(), path)"
    fast: ClassVar[bool] = True

    def __init__(self, model: str | None = None, *, weights: str | None = None, **options: Any) -> None:
        if not model or not str(model).strip():
            raise InputError("the timm encoder needs an architecture name: use {encoder=timm:NAME} with {weights=FILE}", param="encoder")
        super().__init__(model, **options)
        if not weights:
            raise InputError(f"timm:{self.model} needs its weights as a local file (nothing is downloaded): pass {{weights=FILE}}", param="weights")
        self.weights = str(weights)

    def _path(self) -> Path:
        return Path(self.weights).expanduser()

    def _load(self) -> dict[str, Any]:
        try:
            import timm
        except ImportError:
            raise InputError("the timm encoder needs timm: pip install 'graphret[byo]'") from None
        if not timm.is_model(self.model):
            raise InputError(f"unknown timm architecture {self.model!r}; choose a name from timm.list_models()", param="encoder")
        path = self._path()
        try:
            state = timm.models.load_state_dict(str(path), device="cpu")
        except Exception as error:  # noqa: BLE001 - torch.load / safetensors raise several kinds
            raise InputError(f"{path} is not a readable weights file ({one_line(error)}); give {self.how_to_make}") from None
        self.net = timm.create_model(self.model, pretrained=False, num_classes=0)
        head = _head_prefixes(self.net)
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith(head)}
        own = self.net.state_dict()
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        wrong = sorted(k for k in set(own) & set(state) if tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape))
        if missing or extra or wrong:
            bad, why = (missing, "lacks") if missing else (extra, "has an unknown") if extra else (wrong, "has a wrong shape for")
            raise InputError(f"{path.name} is not a timm {self.model} state_dict (it {why} {bad[0]!r}, "
                             f"{len(missing) + len(extra) + len(wrong)} tensors off); give that architecture's weights or its name")
        self.net.load_state_dict(state)
        self.net.eval()
        self.hooked = self._named_module(self.layer)
        if self.layer is not None and self.hooked is None:
            raise InputError(f"timm {self.model} has no layer {self.layer!r}; name a module of model.named_modules(), e.g. {{layer=stages.3}}", param="layer")
        self.output = self.layer or "pre-logits"
        cfg = self.net.pretrained_cfg or {}
        size = cfg.get("input_size") or (None, None, None)
        stated = {"channels": size[0], "image_size": size[1] if size[1] == size[2] else None,
                  "mean": cfg.get("mean"), "std": cfg.get("std"), "source": f"timm {self.model} pretrained_cfg"}
        return stated

    def _extra_config(self) -> dict[str, Any]:
        return {"architecture": self.model, "weights": str(self._path().resolve())}

    @property
    def description(self) -> str:
        return f"timm {self.model}, " + super().description

    def config(self) -> dict[str, Any]:
        out = super().config()
        out["model"] = self.model  # the architecture; the weights file is what the SHA-256 names
        return out

    @classmethod
    def _options_from_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        return {"weights": config["weights"]}
