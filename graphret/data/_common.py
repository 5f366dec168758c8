"""Small helpers shared by the data sources: path checks, unique ids, option checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from graphret.errors import InputError

ON_CORRUPT = ("skip", "error")


def check_on_corrupt(on_corrupt: str) -> None:
    """Raise InputError unless ``on_corrupt`` is "skip" or "error"."""
    if on_corrupt not in ON_CORRUPT:
        raise InputError(f"unknown on_corrupt choice {on_corrupt!r}; use {{on_corrupt=skip}} or {{on_corrupt=error}}", param="on_corrupt")


def existing_file(path: str | Path, *, what: str = "file") -> Path:
    """``path`` as a Path, checked to be a readable file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"no such {what}: {p} (check the path)")
    if not p.is_file():
        raise InputError(f"not a {what}: {p} is a folder (give the {what} itself)")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {p}: permission denied (check its permissions)")
    return p


def existing_dir(path: str | Path) -> Path:
    """``path`` as a Path, checked to be a readable folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"no such folder: {p} (check the path)")
    if not p.is_dir():
        raise InputError(f"not a folder: {p} (give a folder of class sub-folders)")
    if not os.access(p, os.R_OK | os.X_OK):
        raise InputError(f"cannot read folder {p}: permission denied (check its permissions)")
    return p


def make_unique(names: Iterable[str]) -> list[str]:
    """Names made unique in order: the second "a" becomes "a~2", the third "a~3", ..."""
    names = list(names)
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        k = 2
        while f"{name}~{k}" in taken or f"{name}~{k}" in seen:
            k += 1
        new = f"{name}~{k}"
        seen.add(new)
        out.append(new)
    return out


def strip_extension(relpath: str) -> str:
    """"a/b/c.jpeg" -> "a/b/c" (only the last suffix; hidden-style names are kept)."""
    head, sep, tail = relpath.rpartition("/")
    stem, dot, _ = tail.rpartition(".")
    if not dot or not stem:
        return relpath
    return f"{head}{sep}{stem}"


SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
    "all": "all",
}


def normalise_split(value: str) -> str | None:
    """A split name in any case ("Train", "TEST", "validation") as train/val/test/all, or None."""
    return SPLIT_ALIASES.get(value.strip().lower())
