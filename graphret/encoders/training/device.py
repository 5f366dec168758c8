"""Where and how reproducibly training runs: the device, CPU threads, bf16 autocast, and the
seeded generators of each epoch (so a resumed run draws what an uninterrupted one would)."""

from __future__ import annotations

import numpy as np

from graphret.errors import InputError


def torch():  # noqa: D401 - a lazy import, so that `import graphret` does not pay for torch
    """The torch module (imported on first use)."""
    import torch as _torch

    return _torch



def choose_device(device: str = "auto"):
    """``"auto"`` -> CUDA when available, else CPU; otherwise the named torch device."""
    t = torch()
    if device in (None, "", "auto"):
        return t.device("cuda" if t.cuda.is_available() else "cpu")
    try:
        dev = t.device(device)
    except RuntimeError:
        raise InputError(f"unknown device {device!r}; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not t.cuda.is_available():
        raise InputError(f"device {device!r} asked for, but no CUDA GPU is available; use {{device=cpu}}", param="device")
    return dev


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads when asked (``None`` keeps torch's default)."""
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch().set_num_threads(int(threads))


def autocast_for(device, enabled: bool):
    """A bf16 autocast context for training on CUDA or on a CPU with native bf16 (AVX-512
    BF16 / AMX: about 1.7x faster there), else a no-op context."""
    import contextlib

    t = torch()
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        if t.cuda.is_bf16_supported():
            return t.autocast("cuda", dtype=t.bfloat16)
        return contextlib.nullcontext()  # fp16 would need a gradient scaler
    if device.type == "cpu":
        try:
            native = bool(t.cpu._is_avx512_bf16_supported()) or bool(getattr(t.cpu, "_is_amx_tile_supported", lambda: False)())
        except AttributeError:
            native = False
        if native:
            return t.autocast("cpu", dtype=t.bfloat16)
    return contextlib.nullcontext()


def seed_everything(seed: int) -> None:
    """Seed torch's and numpy's global generators (dropout, init)."""
    t = torch()
    t.manual_seed(int(seed))
    np.random.seed(int(seed) % (2**32))


def epoch_rng(seed: int, epoch: int, stream: int = 0) -> np.random.Generator:
    """A numpy generator for one epoch: independent of how many epochs ran before."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(stream)]))


def torch_generator(seed: int, epoch: int, stream: int = 0):
    """A CPU torch generator for one epoch (augmentation draws)."""
    g = torch().Generator()
    g.manual_seed(int(np.random.SeedSequence([int(seed), int(epoch), int(stream), 7]).generate_state(1)[0]))
    return g
