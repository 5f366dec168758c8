"""The operations that compose the layers -- build, add -- and the store-centred public API
(:class:`Store`, :func:`build`, :func:`open`, :func:`build_from_codes`, :func:`train`), re-exported by
:mod:`graphret`."""

from graphret.api.config import AddConfig, BuildConfig
from graphret.api.store import Store, build, build_from_codes, open
from graphret.api.train import train

__all__ = ["AddConfig", "BuildConfig", "Store", "build", "build_from_codes", "open", "train"]
