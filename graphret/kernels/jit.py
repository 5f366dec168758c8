"""numba's ``njit``, applied on first use: every kernel of graphret is a plain Python function
that numba compiles when a call needs compiled speed, so importing graphret never imports numba.

``@njit(**options)`` (the same options as numba's) returns a :class:`Kernel`.  Called from
Python, a kernel runs its numba-compiled form, made on the first call (numba's on-disk cache
still applies); other kernels it calls are compiled with it, as with numba's own ``njit``.
Why lazily: a process that runs one small search (``graphret query STORE --id X``) would
otherwise pay numba's import and the refresh numba runs before loading any cached kernel
(0.6-1 s together, benchmarks/results/cli_query), many times the search itself.

:func:`interpreted` lets such a process run, instead, the very same functions as Python: a
kernel declared ``interpretable=True`` (one whose work per call is bounded, e.g. one query's
walk, not a scan of the archive) then runs uncompiled, and so does every kernel it calls.
Kernels not so declared compile as always.  A few primitives written for the compiler (a SIMD
dot product's loop, a prefetch intrinsic) name, with ``python=``, how numpy computes the same
value in Python.  Inside a kernel, ``prange`` is numba's parallel range when compiled and
``range`` in Python.
"""

from __future__ import annotations

import threading
import types as pytypes
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["njit", "prange", "interpreted", "interpreting", "Kernel"]


class _Local(threading.local):
    """This thread's state: ``python``, inside a kernel run as Python; ``prefer``, inside
    :func:`interpreted`.  (Class defaults: a kernel called from Python reads both per call, and
    an attribute a thread never set costs a caught AttributeError, about 0.5 us, each time.)"""

    python = 0
    prefer = False


_local = _Local()
_lock = threading.RLock()


def prange(*args: int) -> range:
    """numba's ``prange`` in a compiled kernel (its iterations spread over threads), ``range``
    when the kernel runs as Python."""
    return range(*args)


class Kernel:
    """A kernel: a plain Python function (``py_func``) and its numba dispatcher, made on first
    use with the ``options`` given to :func:`njit`.

    ``python``: how numpy computes the same value, run instead of ``py_func`` as Python (only
    for primitives whose compiled form is a loop or an intrinsic); ``compiled``: a factory of
    the compiled form when it is not ``numba.njit(**options)(py_func)`` (an intrinsic)."""

    def __init__(self, py_func: Callable, options: dict[str, Any], *, interpretable: bool = False,
                 python: Callable | None = None, compiled: Callable[[], Any] | None = None) -> None:
        self.py_func = py_func
        self.options = options
        self.interpretable = interpretable
        self._python = python or py_func
        self._factory = compiled
        self._dispatcher = None  # set as soon as made (a kernel naming itself finds it) ...
        self._ready = None  # ... and here once the kernels it names are compiled forms too
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func

    def __repr__(self) -> str:
        return f"<kernel {self.__module__}.{self.__qualname__}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _local.python:
            return self._python(*args, **kwargs)
        if self.interpretable and _local.prefer:
            _local.python = 1
            try:
                return self._python(*args, **kwargs)
            finally:
                _local.python = 0
        return (self._ready or self.dispatcher)(*args, **kwargs)

    @property
    def dispatcher(self) -> Any:
        """The compiled form (numba's dispatcher, or the ``compiled`` factory's object), made
        once: ``py_func`` over a copy of its module's globals in which every kernel it names is
        that kernel's compiled form and ``prange`` is numba's.  Safe across threads (a build
        compiles the graph steps' kernels in one while its encoder trains): another thread
        waits for the lock until the globals are complete, so numba never reads a half-made
        copy."""
        if self._ready is None:
            with _lock:
                if self._dispatcher is None:
                    self._dispatcher = self._compile()
                    self._ready = self._dispatcher
        return self._dispatcher

    def cache_missing(self) -> bool:
        """Whether numba's on-disk cache certainly holds no compiled form of this kernel for its
        source as it is now (so the first call compiles it).  False when unsure: not a cached
        kernel, no place to cache, or a numba whose cache this cannot read."""
        if not self.options.get("cache") or self._factory is not None:
            return False
        try:
            from numba.core.caching import FunctionCache

            return not FunctionCache(self.py_func)._cache_file._load_index()
        except Exception:  # noqa: BLE001 - nowhere to cache, or another numba's layout: unsure
            return False

    def _compile(self) -> Any:
        import numba

        if self._factory is not None:
            return self._factory()
        f = self.py_func
        names = _global_names(f.__code__)
        glob = dict(f.__globals__)
        func = pytypes.FunctionType(f.__code__, glob, f.__name__, f.__defaults__, f.__closure__)
        func.__qualname__, func.__doc__, func.__kwdefaults__ = f.__qualname__, f.__doc__, f.__kwdefaults__
        dispatcher = numba.njit(**self.options)(func)
        self._dispatcher = dispatcher  # (before its callees: a kernel naming itself finds it)
        for name in names & glob.keys():
            value = glob[name]
            if isinstance(value, Kernel):
                glob[name] = value.dispatcher
            elif value is prange:
                glob[name] = numba.prange
        return dispatcher


def _global_names(code: pytypes.CodeType) -> set[str]:
    """The names a code object (and the code nested in it) may read as globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, pytypes.CodeType):
            names |= _global_names(const)
    return names


def njit(*args: Any, interpretable: bool = False, python: Callable | None = None, compiled: Callable[[], Any] | None = None,
         **options: Any) -> Any:
    """numba's ``njit`` (the same ``options``), compiled on first use: ``@njit(cache=True)``
    or ``njit(**options)(func)`` give a :class:`Kernel`.  ``interpretable``: under
    :func:`interpreted`, a call from Python runs the function as Python (its work per call is
    small); ``python`` / ``compiled``: see :class:`Kernel`."""
    def wrap(func: Callable) -> Kernel:
        return Kernel(func, options, interpretable=interpretable, python=python, compiled=compiled)

    if args and callable(args[0]) and len(args) == 1:
        return wrap(args[0])
    return wrap


@contextmanager
def interpreted() -> Iterator[None]:
    """Within this block (this thread), kernels declared ``interpretable`` run as Python when
    called from Python, and never import numba: for a process that runs a search or two and
    exits, where compiling (or loading the compiled kernels) costs far more than the search."""
    before = _local.prefer
    _local.prefer = True
    try:
        yield
    finally:
        _local.prefer = before


def interpreting() -> bool:
    """Whether this thread is inside :func:`interpreted` (a process answering a few queries:
    what would pay off over many, such as a renumbered copy of the archive, need not be made)."""
    return bool(_local.prefer)
