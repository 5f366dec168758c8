"""The store's file operations: durable writes, put-if-absent, fsync of folders, and the fault
hook the crash tests use.

Every operation that changes the disk goes through :func:`step`, so a test can kill the
process between any two of them: with ``GRAPHRET_FAULT_AFTER=N`` in the environment the
process sends itself SIGKILL just before its (N+1)-th operation (SQLite's crash tests in
spirit).  Files and folders get the user's umask, not the 0600/0700 of ``mkstemp``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

from graphret.errors import StoreError

__all__ = ["step", "makedirs", "write_durably", "link_exclusive", "remove", "fsync_dir", "unique_name", "file_mode"]

_FAULT_ENV = "GRAPHRET_FAULT_AFTER"
_count = 0


def step(what: str) -> None:
    """Count one file operation; the fault hook kills the process here when told to."""
    global _count
    limit = os.environ.get(_FAULT_ENV)
    if limit is not None and _count >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
    _count += 1


def operations() -> int:
    """File operations counted so far in this process."""
    return _count


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~_umask()


def makedirs(path: Path) -> None:
    """Create ``path`` and its parents (with the umask's mode), fsyncing each new folder's parent."""
    missing = []
    p = Path(path)
    while not p.exists():
        missing.append(p)
        p = p.parent
    for folder in reversed(missing):
        step(f"mkdir {folder}")
        try:
            os.mkdir(folder, 0o777 & ~_umask() | 0o700)
        except FileExistsError:
            continue
        except OSError as error:
            raise StoreError(f"cannot create the folder {folder}: {error.strerror}; check its parent's permissions") from None
        fsync_dir(folder.parent)


def fsync_dir(folder: Path) -> None:
    """Make the folder's entries (new names, renames, links) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unique_name(prefix: str, suffix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}{suffix}"


@contextlib.contextmanager
def temporary(folder: Path, prefix: str) -> Iterator[Path]:
    """A temporary file in ``folder`` (removed unless the caller moved it)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{prefix}.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, file_mode())
    path = Path(tmp)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_durably(target: Path, write: Callable[[Path], None]) -> None:
    """Write a new file at ``target`` (which must not exist): ``write(tmp)`` fills a temporary
    sibling, which is fsynced and renamed into place, and the folder fsynced.  A crash leaves
    either no file at ``target`` or the complete one."""
    with temporary(target.parent, target.name) as tmp:
        step(f"write {target.name}")
        write(tmp)
        step(f"fsync {target.name}")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        step(f"rename {target.name}")
        os.replace(tmp, target)
    step(f"fsync {target.parent.name}/")
    fsync_dir(target.parent)


def link_exclusive(source: Path, target: Path) -> bool:
    """Put-if-absent: give the (fsynced) file ``source`` the name ``target`` unless that name
    exists; True when this call made it.  ``os.link`` refuses to replace, so of two writers
    only one can create a given name."""
    step(f"link {target.name}")
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):  # no hard links here: O_EXCL instead
            return _create_exclusive_copy(source, target)
        raise
    step(f"fsync {target.parent.name}/")
    fsync_dir(target.parent)
    return True


def _create_exclusive_copy(source: Path, target: Path) -> bool:
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, file_mode())
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as out:
        out.write(source.read_bytes())
        out.flush()
        os.fsync(out.fileno())
    fsync_dir(target.parent)
    return True


def remove(path: Path) -> None:
    """Remove a file (gone already is fine)."""
    step(f"unlink {path.name}")
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
