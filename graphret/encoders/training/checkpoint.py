"""Module weights on the CPU, and the checkpoint a run writes after every epoch (model,
optimiser, schedule, best weights, history) and resumes from when its fingerprint matches."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from graphret.encoders.config import TrainingConfig
from graphret.encoders.training.device import torch
from graphret.encoders.training.history import EpochRecord, History
from graphret.errors import InputError


def module_state(module) -> dict[str, Any]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


@dataclass
class Best:
    """The best epoch so far: its weights, its validation key, the epochs since."""

    state: dict[str, Any] | None = None
    key: tuple[float, ...] | None = None
    bad_epochs: int = 0


def resume(cfg: TrainingConfig, fingerprint: dict[str, Any], module, optimiser, scheduler, history: History, best: Best) -> int:
    """Load the checkpoint into the run when ``cfg.resume`` says so; the epoch to start at."""
    t = torch()
    if not cfg.resume:
        return 1
    if cfg.checkpoint and not os.path.exists(cfg.checkpoint):
        raise InputError(f"there is no checkpoint {cfg.checkpoint} to resume from; run without {{resume}} to start afresh", param="resume")
    try:
        ck = t.load(cfg.checkpoint, map_location="cpu", weights_only=True)
        ok = isinstance(ck, dict) and ck.get("format") == "graphret-checkpoint"
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same line
        raise InputError(f"checkpoint {cfg.checkpoint} is unreadable ({type(error).__name__}); delete it or run without {{resume}}", param="resume") from None
    if not ok:
        raise InputError(f"{cfg.checkpoint} is not a graphret training checkpoint; delete it or run without {{resume}}", param="resume")
    if ck.get("fingerprint") != fingerprint:
        raise InputError(f"checkpoint {cfg.checkpoint} is from another training run (other data or options); delete it or run without {{resume}}", param="resume")
    module.load_state_dict(ck["model"])
    optimiser.load_state_dict(ck["optimiser"])
    scheduler.load_state_dict(ck["scheduler"])
    best.state = ck["best_state"]
    best.bad_epochs = int(ck["bad_epochs"])
    best.key = tuple(ck["best_key"]) if ck.get("best_key") is not None else None
    h = ck["history"]
    history.epochs = [EpochRecord(**e) for e in h["epochs"]]
    history.best_epoch = h["best_epoch"]
    history.best_val = h["best_val"]
    _note(cfg, f"resuming from {cfg.checkpoint} after epoch {len(history.epochs)}")
    return len(history.epochs) + 1


def save_checkpoint(cfg: TrainingConfig, fingerprint: dict[str, Any], module, optimiser, scheduler, history: History, best: Best) -> None:
    from graphret.atomic import atomic_path

    payload = {
        "format": "graphret-checkpoint",
        "fingerprint": fingerprint,
        "model": module_state(module),
        "optimiser": optimiser.state_dict(),
        "scheduler": scheduler.state_dict(),
        "best_state": best.state,
        "bad_epochs": best.bad_epochs,
        "best_key": list(best.key) if best.key is not None else None,
        "history": {"epochs": [asdict(e) for e in history.epochs], "best_epoch": history.best_epoch, "best_val": history.best_val},
    }
    with atomic_path(cfg.checkpoint) as tmp:
        torch().save(payload, tmp)


def comparable(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A run's fingerprint without the options a resumed run may change (the time limit)."""
    out = dict(fingerprint)
    if isinstance(out.get("train"), dict):
        out["train"] = {k: v for k, v in out["train"].items() if k != "time_limit"}
    return out


def load_module_state(module, state: dict[str, Any], what: str) -> None:
    """Load a saved state_dict, turning a mismatch into a one-line InputError."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"the saved {what} weights do not fit its architecture ({first[:160]}); retrain the model") from None


def _note(cfg: TrainingConfig, text: str) -> None:
    if cfg.progress:
        print(text, file=sys.stderr)
