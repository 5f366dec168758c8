"""The one dispatcher from a source spec to an :class:`ImageSet`.

Specs:

* ``None``, ``"demo"``, ``"demo:anatomy"``, ``"demo:findings"``, with optional
  ``n=N`` and ``size=S`` parts (``"demo:anatomy,n=500"``): the embedded demo set;
* ``"medmnist:NAME"`` (``medmnist:breastmnist``, ``medmnist:blood``, ``medmnist:pathmnist_64``):
  the official MedMNIST file, fetched into the cache and MD5-verified (see
  :mod:`graphret.data.fetch`), then read as an npz;
* a path to an existing ``.npz`` file, ``.csv`` manifest, or folder (also written
  ``npz:PATH``, ``csv:PATH``, ``folder:PATH``, the form ``ImageSet.source`` records).
"""

from __future__ import annotations

import re
from pathlib import Path

from graphret.data._common import check_on_corrupt
from graphret.data.csv_manifest import CsvOptions, load_csv
from graphret.data.demo import DEFAULT_N, DEFAULT_SIZE, load_demo
from graphret.data.fetch import fetch_medmnist
from graphret.data.folder import load_folder
from graphret.data.imageset import ImageSet
from graphret.data.npz import load_npz
from graphret.errors import InputError

SCHEMES = ("demo", "medmnist", "npz", "csv", "folder")
_HELP = "use demo, demo:anatomy, medmnist:NAME, or a path to an .npz, a .csv or a folder"


def _demo(spec: str, *, seed: int, split: bool) -> ImageSet:
    labels, n, size = "findings", DEFAULT_N, DEFAULT_SIZE
    _, _, rest = spec.partition(":")
    for part in filter(None, (p.strip() for p in re.split(r"[,:]", rest))):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq and key in ("findings", "anatomy"):
            labels = key
        elif eq and key in ("n", "size"):
            try:
                number = int(value)
            except ValueError:
                raise InputError(f"bad demo option {part!r}: {key} must be a whole number (e.g. demo:{key}=500)") from None
            if key == "n":
                n = number
            else:
                size = number
        else:
            raise InputError(f"unknown demo option {part!r} (use demo, demo:anatomy, demo:findings, n=N, size=S)")
    return load_demo(labels=labels, n=n, seed=seed, size=size, split=split)


def _path_source(path: Path, kind: str | None, *, seed: int, split: bool, on_corrupt: str,
                 csv: CsvOptions | None) -> ImageSet:
    p = path.expanduser()
    if not p.exists():
        raise InputError(f"no such file or folder: {p} (check the path)")
    if kind is None:
        if p.is_dir():
            kind = "folder"
        elif p.suffix.lower() == ".npz":
            kind = "npz"
        elif p.suffix.lower() in (".csv", ".tsv"):
            kind = "csv"
        else:
            raise InputError(f"unsupported source file {p} (expected an .npz, a .csv or a folder)")
    if kind == "folder":
        return load_folder(p, seed=seed, split=split, on_corrupt=on_corrupt)
    if kind == "npz":
        return load_npz(p, seed=seed, split=split)
    return load_csv(p, options=csv, seed=seed, split=split, on_corrupt=on_corrupt)


def open_source(
    spec: str | Path | None,
    *,
    seed: int = 0,
    split: bool = True,
    on_corrupt: str = "skip",
    csv: CsvOptions | None = None,
    cache_dir: Path | None = None,
) -> ImageSet:
    """Open the source named by ``spec`` (see the module docstring) as an :class:`ImageSet`.

    ``seed`` drives the demo set and every seeded 70/30 split; ``split=False`` puts every
    item in split "all"; ``on_corrupt`` ("skip" or "error") decides what a corrupt or missing
    image does; ``csv`` sets CSV manifest options; ``cache_dir`` is the MedMNIST cache.
    """
    check_on_corrupt(on_corrupt)
    if spec is None:
        return load_demo(seed=seed, split=split)
    if isinstance(spec, Path):
        return _path_source(spec, None, seed=seed, split=split, on_corrupt=on_corrupt, csv=csv)
    text = str(spec).strip()
    if not text:
        raise InputError(f"empty source ({_HELP})")
    scheme, colon, rest = text.partition(":")
    scheme_l = scheme.lower()
    if scheme_l == "demo":  # "demo" or "demo:...": a folder named demo is "./demo"
        return _demo(text, seed=seed, split=split)
    if colon and scheme_l == "medmnist":
        if not rest.strip():
            raise InputError(f"medmnist: needs a name, e.g. medmnist:breastmnist ({_HELP})")
        path = fetch_medmnist(rest.strip(), cache_dir=cache_dir)
        return load_npz(path, seed=seed, split=split)
    if colon and scheme_l in ("npz", "csv", "folder"):
        return _path_source(Path(rest), scheme_l, seed=seed, split=split, on_corrupt=on_corrupt, csv=csv)
    path = Path(text)
    # "x:..." that is not an existing path and not a Windows drive ("C:\\") is a scheme.
    if colon and not path.expanduser().exists() and len(scheme) > 1 and "/" not in scheme and "\\" not in scheme:
        raise InputError(f"unknown source scheme {scheme + ':'!r} in {text!r} ({_HELP})")
    return _path_source(path, None, seed=seed, split=split, on_corrupt=on_corrupt, csv=csv)
