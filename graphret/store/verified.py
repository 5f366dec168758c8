"""Remembered checksums: a fragment whose SHA-256 (and, for Arrow data, full validation) was
checked once is not hashed again by the next process, while the file is provably the one that
was checked.

Every read checks a fragment's size and SHA-256 against the manifest (:mod:`graphret.store.fragments`).
Hashing is the one cost of opening a store that grows with it (950 MB of tables at a million
items: about a second per process), so the outcome of a check is remembered, the way git's
index remembers that a file matches its blob (Documentation/technical/racy-git.txt) and bzr's
statcache remembered SHA-1s: keyed by the expected digest and the file's identity (device,
inode) and holding its stat data (size, mtime_ns, ctime_ns).  A later read trusts the record
only when all of these still match:

* a file modified in place changes its ctime (which no user call can set back: ``os.utime``
  sets mtime and atime only, and sets ctime to now), whatever it does to size and mtime;
* a file truncated or extended changes its size; a file swapped or replaced by a rename or a
  copy is another inode; a manifest that expects another digest looks up another record.

**Racily clean files.**  File times have a granularity (a kernel tick, 1-10 ms on Linux; seconds on
some file systems), so a file changed twice within one tick keeps its ctime.  As git does, a
check is remembered only when the file's last change (ctime, and mtime) is at least
:data:`RACY_NS` older than the moment the check began: any later change then gets a newer
ctime.  A freshly written fragment is therefore hashed by its first readers until it has
settled.  The stat taken before hashing must equal the one after, or nothing is remembered.

**Where.**  In the user's cache folder, not the store (stores are often read-only, or shared by
users who must not vouch for each other's reads): ``$GRAPHRET_CACHE_DIR`` or
``$XDG_CACHE_HOME/graphret`` (``~/.cache/graphret``), folder ``verified/``, one small file per
(digest, device, inode), written to a temporary name and renamed over (atomic; a torn or
foreign record is just a miss).  ``GRAPHRET_CACHE_DIR=""`` turns remembering off.  When
the folder cannot be made or written, every read hashes, as before; nothing fails.

``graphret verify`` (:func:`graphret.store.maintain.verify`) ignores the records and hashes
every byte.

**Facts about contents.**  A check whose outcome depends only on a file's bytes (the value
checks of a store's prepared arrays: every index in range) is remembered by :func:`learn` under
a text naming the check and the digests of what it read, and found again by :func:`known`.  A
reader asks only after those files matched their digests (hashed, or remembered as above), so
the fact is about exactly the bytes it reads; other bytes have other digests.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ["CACHE_ENV", "RACY_NS", "Stamp", "cache_folder", "stamp", "remembered", "remember", "known", "learn"]

#: environment variable naming the cache folder ("" turns remembering off)
CACHE_ENV = "GRAPHRET_CACHE_DIR"
#: how long after a file's last change a check of it may be remembered (above any file
#: system's time granularity: FAT's is 2 s)
RACY_NS = 3_000_000_000


class Stamp(NamedTuple):
    """What identifies one state of one file: the expected digest, device, inode, size,
    mtime_ns and ctime_ns."""

    digest: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    def key(self) -> str:
        return f"{self.digest}-{self.dev}-{self.ino}"

    def record(self) -> str:
        return f"{self.size} {self.mtime_ns} {self.ctime_ns}\n"


def cache_folder() -> Path | None:
    """The folder of remembered checks, or None when turned off."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return Path(env).expanduser() / "verified" if env else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphret" / "verified"


def stamp(path: Path, digest: str) -> Stamp | None:
    """The file's :class:`Stamp` now (None: it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return Stamp(digest, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def remembered(current: Stamp) -> bool:
    """True when a check of this very file state was remembered."""
    folder = cache_folder()
    if folder is None:
        return False
    try:
        with open(folder / current.key(), encoding="ascii") as f:
            return f.read(128) == current.record()
    except (OSError, ValueError):
        return False


def remember(before: Stamp, after: Stamp | None, began_ns: int) -> None:
    """Remember that the file in state ``before`` (stat'ed when the check began, at
    ``began_ns``) passed its checks, unless it changed during them (``after``) or had changed
    within :data:`RACY_NS` of ``began_ns`` (racily clean).  Failures to write are ignored."""
    if after != before or began_ns - max(before.ctime_ns, before.mtime_ns) < RACY_NS:
        return
    _write(before.key(), before.record())


def _write(name: str, text: str) -> None:
    """Write one record (a temporary file renamed over ``name``: atomic); failures are ignored."""
    folder = cache_folder()
    if folder is None:
        return
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
            os.replace(tmp, folder / name)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _fact_name(fact: str) -> str:
    return "fact-" + hashlib.sha256(fact.encode()).hexdigest()


def known(fact: str) -> bool:
    """True when :func:`learn` recorded ``fact`` (a check's name and the digests it read)."""
    folder = cache_folder()
    return folder is not None and (folder / _fact_name(fact)).is_file()


def learn(fact: str) -> None:
    """Record that ``fact`` holds (failures to write are ignored: the check runs again)."""
    _write(_fact_name(fact), "checked\n")


def now_ns() -> int:
    """The clock the racy rule compares file times with."""
    return time.time_ns()
