"""Atomic file writes: write to a temporary sibling, fsync, then rename over the target."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from graphret.errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename,
    on error it is removed and ``path`` is left as it was."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name to write to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}; choose a writable place") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes | Iterable[bytes | memoryview]) -> None:
    """Write ``data`` (bytes, or parts written one after the other, which may be made as they
    are asked for) to ``path`` atomically: if making a part fails, ``path`` is left as it was."""
    parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        for part in parts:
            out.write(part)
