"""What a training run did: one record per epoch, the best epoch and why it stopped."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    val: float | None
    seconds: float
    partial: bool = False  # cut short by the time limit


@dataclass
class History:
    """What a run did: one record per epoch, the best epoch and why it stopped."""

    epochs: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float | None = None
    stopped: str = ""
    val_name: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "epochs": [asdict(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val": self.best_val,
            "stopped": self.stopped,
            "val_name": self.val_name,
            "seconds_per_epoch": self.seconds_per_epoch,
        }

    @property
    def seconds_per_epoch(self) -> float | None:
        if not self.epochs:
            return None
        return float(np.mean([e.seconds for e in self.epochs]))

    @classmethod
    def from_json(cls, h: dict[str, Any]) -> "History":
        return cls(epochs=[EpochRecord(**e) for e in h.get("epochs", [])], best_epoch=h.get("best_epoch"),
                   best_val=h.get("best_val"), stopped=h.get("stopped", ""), val_name=h.get("val_name", ""))
