"""Read an encoder file of plain containers and tensors (``torch.save``'s zip layout) without
importing torch: each tensor comes back as a numpy array.

For encoders whose :meth:`~graphret.encoders.base.Encoder.from_state` takes arrays (the pixel
baseline): a query by image on a pixel store then needs no neural-network library (importing
torch costs seconds).  Only the globals ``torch.load(weights_only=True)`` would meet in such a
file are known (a tensor's rebuild, its typed storage, ``OrderedDict``); anything else, or any
file this reader cannot read, returns None and the caller reads it with torch as before (its
one-line errors included).
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

#: torch's typed storages -> the little-endian dtype of their bytes.
_STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "LongStorage": "<i8",
    "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class _NotArrays(Exception):
    """The file holds something this reader does not know (torch reads it instead)."""


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, requires_grad: bool = False,
                    hooks: Any = None, metadata: Any = None) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2 as numpy: the strided view of the storage, copied in its
    layout (a column-major tensor stays column-major, as torch's ``.numpy()`` gives it)."""
    if not isinstance(storage, np.ndarray) or len(size) != len(stride) or offset < 0 or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise _NotArrays("bad tensor layout")
    if all(size) and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= len(storage):
        raise _NotArrays("tensor outside its storage")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * storage.itemsize for s in stride), writeable=False)
    tensor = np.empty_like(view)  # order "K": the view's layout
    np.copyto(tensor, view)
    return tensor


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive, self._prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise _NotArrays(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] in _STORAGE_DTYPES.values()):
            raise _NotArrays("unknown persistent id")
        _, dtype, key, _location, numel = pid
        storage = np.frombuffer(self._archive.read(f"{self._prefix}data/{key}"), dtype=dtype)
        if len(storage) < int(numel):
            raise _NotArrays("short storage")
        return storage


def read_arrays_file(path: str | Path) -> Any | None:
    """The object ``torch.load(path, weights_only=True)`` returns, its tensors as numpy arrays;
    None when the file is not such a file of containers and tensors (read it with torch)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            if len(names) != 1:
                return None
            prefix = names[0][: -len("data.pkl")]
            if f"{prefix}byteorder" in archive.namelist() and archive.read(f"{prefix}byteorder") != b"little":
                return None
            with archive.open(names[0]) as file:
                return _Unpickler(file, archive, prefix).load()
    except (_NotArrays, pickle.UnpicklingError, zipfile.BadZipFile, KeyError, ValueError, TypeError, EOFError, OSError, RecursionError):
        return None
