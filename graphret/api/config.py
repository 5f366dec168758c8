"""Every parameter of a build, as one typed, frozen config: :class:`BuildConfig`.

Its nested configs (source, encoder, training, graph, communities, engine) are the single source of
truth: Python callers pass their fields as flat keyword options (``graphret.build(..., k=5,
epochs=3)``), the command line's options are generated from them
(:mod:`graphret.cli.options`), and the manifest records them (``params``, flat).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphret.cluster.config import EngineConfig
from graphret.communities.config import CommunityConfig
from graphret.data.config import SourceConfig
from graphret.encoders.config import EncoderConfig, TrainingConfig
from graphret.graph.config import GraphConfig
from graphret.errors import ParameterError
from graphret.params import flat_options, nested_update, param, validate
from graphret.store.thumbnails import DEFAULT_THUMBNAIL_SIZE

__all__ = ["BuildConfig", "AddConfig"]


@dataclass(frozen=True)
class BuildConfig:
    """How a store is built: source options, encoder, training, graph, communities, seed."""

    source: SourceConfig = param(default_factory=SourceConfig, help="How the source is read.")
    encoder: EncoderConfig = param(default_factory=EncoderConfig, help="The encoder.")
    training: TrainingConfig = param(default_factory=TrainingConfig, help="How the encoder trains.")
    graph: GraphConfig = param(default_factory=GraphConfig, help="The kNN graph.")
    communities: CommunityConfig = param(default_factory=CommunityConfig, help="The community methods.")
    engine: EngineConfig = param(default_factory=EngineConfig, help="Where encoding and the kNN graph run (this process or Ray).")
    model: str | None = param(None, help="A saved encoder file to use instead of training one.")
    seed: int = param(0, min=0, help="Seed of the split, the demo set, the encoder's training and the community methods.")
    overwrite: bool = param(False, help="Replace an existing store at the output path.")
    thumbnail_size: int = param(DEFAULT_THUMBNAIL_SIZE, min=0, max=512,
                                help="Side in pixels of the small PNG stored per image, so viewers show items after "
                                "their sources move (0: none).")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_options(cls, **options: Any) -> "BuildConfig":
        """A config from flat keyword options (``k=5``, ``encoder="pixels"``, ``epochs=3``...);
        an unknown name is an InputError listing the known ones."""
        return nested_update(cls(), options)

    @classmethod
    def option_names(cls) -> list[str]:
        return sorted(flat_options(cls))

    def flat(self) -> dict[str, Any]:
        """The flat options and their values (what the manifest records as ``params``)."""
        out: dict[str, Any] = {}
        for name, (path, _field) in flat_options(type(self)).items():
            value: Any = self
            for attr in path:
                value = getattr(value, attr)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class AddConfig:
    """How ``add`` reads and links new images."""

    source: SourceConfig = param(default_factory=SourceConfig, help="How the source is read.")
    k: int | None = param(None, min=1, help="Edges per new image, at most the archive and the other new images hold "
                                            "(as query's K) [the store's k].")
    seed: int = param(0, min=0, help="Seed of the source's 70/30 split where it has none.")

    def __post_init__(self) -> None:
        validate(self)
        masks = self.source.masks
        if masks.mask_folder is not None or masks.mask_column is not None:
            raise ParameterError("masks train the decompose encoder, and add only encodes with the store's trained encoder; "
                                 "leave out {mask_folder} and {mask_column} (or rebuild the store with them)", param="mask_folder")

    @classmethod
    def from_options(cls, **options: Any) -> "AddConfig":
        return nested_update(cls(), options)
