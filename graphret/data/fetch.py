"""Fetch official MedMNIST files into a local cache, verified against the official MD5.

The file is downloaded (standard-library ``urllib``) to a temporary file in the cache folder,
its MD5 compared with the official one from ``graphret/data/medmnist.json`` (transcribed from the
MedMNIST project's ``info.py``), and only then renamed into place; a mismatch removes the
temporary file and raises :class:`~graphret.errors.InputError` naming both digests.  A file
already in the cache is used as it is, without downloading again.

* base URL: ``base_url=``, else the environment variable ``GRAPHRET_MEDMNIST_URL``, else
  the MedMNIST v2/v3 Zenodo record ``https://zenodo.org/records/10519652/files``; the file is
  ``{base}/{name}.npz?download=1``.
* cache folder: ``cache_dir=``, else ``$GRAPHRET_CACHE_DIR/medmnist``, else
  ``~/.cache/graphret/medmnist``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from graphret.errors import InputError

DEFAULT_BASE_URL = "https://zenodo.org/records/10519652/files"
URL_ENV = "GRAPHRET_MEDMNIST_URL"
CACHE_ENV = "GRAPHRET_CACHE_DIR"
# The table is package data beside this module, so wheels carry it too.
TABLE_PATH = Path(__file__).resolve().with_name("medmnist.json")
_CHUNK = 1 << 20


@functools.lru_cache(maxsize=1)
def medmnist_table() -> dict[str, dict[str, Any]]:
    """The official MedMNIST table, name -> {md5, url_name, n, class_names, ...}; empty when
    ``medmnist.json`` is not available (then fetch needs ``md5=`` or ``verify=False``)."""
    try:
        return dict(json.loads(TABLE_PATH.read_text())["sets"])
    except (OSError, ValueError, KeyError):
        return {}


def medmnist_name(name: str) -> str:
    """Canonical MedMNIST file name: "Breast" -> "breastmnist", "blood_64" -> "bloodmnist_64"."""
    n = name.strip().lower()
    if n.endswith(".npz"):
        n = n[:-4]
    base, sep, size = n.partition("_")
    if not base.endswith("mnist") and not base.endswith("mnist3d"):
        base += "mnist"
    return f"{base}{sep}{size}"


def default_cache_dir() -> Path:
    """``$GRAPHRET_CACHE_DIR/medmnist`` or ``~/.cache/graphret/medmnist``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "medmnist"
    return Path.home() / ".cache" / "graphret" / "medmnist"


def md5_of(path: Path) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_medmnist(
    name: str,
    *,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    md5: str | None = None,
    verify: bool = True,
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Return the path of MedMNIST file ``name`` in the cache, downloading it first if needed.

    ``md5`` overrides the table's digest (needed for names not in the table unless
    ``verify=False``).  ``progress(bytes_done, bytes_total_or_None)`` is called per chunk.
    """
    canonical = medmnist_name(name)
    entry = medmnist_table().get(canonical)
    url_name = entry["url_name"] if entry else canonical
    expected = (md5 or (entry or {}).get("md5") or "").lower() or None
    if verify and expected is None:
        known = ", ".join(sorted(k for k in medmnist_table() if "_" not in k)) or "(table missing)"
        raise InputError(
            f"no official MD5 known for MedMNIST file {canonical!r} (known: {known}); "
            "pass {md5=...} or {verify=False}"
        )
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = folder / f"{url_name}.npz"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create cache folder {folder} ({e.strerror}); pass another cache_dir") from e
    base = (base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/{url_name}.npz?download=1"
    fd, tmp_name = tempfile.mkstemp(prefix=f".{url_name}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as e:
                raise InputError(f"download of {url} failed: HTTP {e.code} {e.reason} (check the name or {URL_ENV})") from e
            except (urllib.error.URLError, OSError) as e:
                reason = getattr(e, "reason", e)
                raise InputError(f"download of {url} failed: {reason} (check your connection or {URL_ENV})") from e
            with response:
                total = response.headers.get("Content-Length")
                total_n = int(total) if total and total.isdigit() else None
                done = 0
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except OSError as e:
                        raise InputError(f"download of {url} broke off after {done} bytes ({e}); try again") from e
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total_n)
            if total_n is not None and done != total_n:
                raise InputError(f"download of {url} stopped at {done} of {total_n} bytes; try again")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if verify and got != expected:
            raise InputError(
                f"MD5 mismatch for {url_name}.npz from {url}: expected {expected}, got {got} "
                "(the download is corrupt or not the official file; nothing was cached)"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return target
