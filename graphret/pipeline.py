"""``build-graph``: source -> encoder -> cosine kNN graph -> communities -> store.

The graph and communities cover the archive (train + val when the source has splits, every
item otherwise); the store keeps every item and its code, so test items can be queries.
"""

from __future__ import annotations

import platform
import resource
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

import graphret
from graphret.data import ImageSet, open_source
from graphret.data.csv_manifest import CsvOptions
from graphret.encoders import DEFAULT_SPACE, Encoded, Encoder, load_encoder
from graphret.errors import InputError
from graphret.store import schema
from graphret.store.write import (
    check_store_target,
    edges_table,
    file_entries,
    fixed_size_list,
    write_arrow,
    write_manifest,
    write_store_folder,
)

COMMUNITY_METHODS = ("cnm", "leiden")
DEFAULT_ENCODER = "cnn"
# A ResNet-18 classifier trained for at most 3 minutes (then the epoch in progress ends): the
# best retrieval within a few CPU minutes on MedMNIST-sized sets (benchmarks/results/encoders).
DEFAULT_ENCODER_OPTIONS: dict[str, Any] = {"backbone": "resnet18", "time_limit": 180.0}
UNLABELLED_ENCODER = "pixels"


@dataclass
class BuildConfig:
    """Every parameter of a build; recorded whole in the manifest."""

    source: str | None = None  # None: the embedded demo set
    output: str = "graphret-store"
    encoder: str | None = None  # None: see choose_encoder, or the encoder of ``model``
    encoder_options: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # a saved encoder to load instead of training
    k: int = 10
    knn: str = "exact"  # "exact" | "approx"
    symmetrize: str = "union"  # "union" | "mutual"
    communities: tuple[str, ...] = ("cnm", "leiden")
    quality: str = "newman"  # CNM's quality function: "newman" | "haq"
    resolution: float = 1.0
    cnm_heuristic: str | None = None  # None | "size" (Wakita-Tsurumi consolidation) | "degree"
    cnm_refine: str | None = None  # None | "moves" (node moves on the best cut) | "multilevel"
    seed: int = 0
    split: bool = True
    on_corrupt: str = "skip"
    csv_options: dict[str, Any] = field(default_factory=dict)  # CsvOptions fields for a CSV source
    overwrite: bool = False


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def archive_rows(images: ImageSet) -> tuple[np.ndarray, list[str]]:
    """The default archive: train + val when the source has splits, every item otherwise."""
    splits = set(images.splits.astype(str))
    if splits <= {"all"} or "train" not in splits:
        return np.arange(len(images)), ["all"]
    chosen = [s for s in ("train", "val") if s in splits]
    return images.indices_of(chosen), chosen


def has_class_labels(images: ImageSet) -> bool:
    """True when the train split carries labels a classifier can learn: two classes or more
    (multi-class), or at least one positive (multi-label)."""
    from graphret.encoders.training import training_indices

    if images.labels is None:
        return False
    train, _ = training_indices(images)
    labels = np.asarray(images.labels)[train]
    if images.task == "multilabel":
        return bool((labels == 1).any())
    return len(np.unique(labels[labels >= 0])) >= 2


def choose_encoder(config: BuildConfig, images: ImageSet) -> tuple[str, dict[str, Any]]:
    """The encoder to train and its options: ``config.encoder``, else the default (the CNN
    classifier, best retrieval in a few CPU minutes on MedMNIST-sized sets), else, for sources
    without class labels, the pixel baseline."""
    if config.encoder:
        return config.encoder, dict(config.encoder_options)
    if has_class_labels(images):
        return DEFAULT_ENCODER, {**DEFAULT_ENCODER_OPTIONS, **config.encoder_options}
    pixel_options = {key: value for key, value in config.encoder_options.items() if key in ("image_size", "dim")}
    return UNLABELLED_ENCODER, pixel_options


def fit_encoder(config: BuildConfig, images: ImageSet, log: Callable[[str], None]) -> Encoder:
    """Load ``config.model``, or train the chosen encoder on the train split (val for early
    stopping when the source has one)."""
    from graphret.encoders.training import train_encoder

    if config.model:
        encoder = load_encoder(config.model, expect=config.encoder)
        log(f"loaded encoder {encoder.name} from {config.model}")
        return encoder
    name, options = choose_encoder(config, images)
    if not config.encoder:
        reason = "the default" if name == DEFAULT_ENCODER else "the default for a source without class labels"
        log(f"encoder: {name} ({reason}; choose another with --encoder)")
    log(f"fitting encoder {name}")
    return train_encoder(images, name, seed=config.seed, **options)


def items_table(images: ImageSet, encoded: Encoded) -> pa.Table:
    """One row per item: ids, paths, splits, labels, metadata, codes (and predictions)."""
    n = len(images)
    columns: dict[str, pa.Array] = {
        "id": pa.array(images.ids, pa.string()),
        "path": pa.array(images.paths, pa.string()),
        "split": pa.array([str(s) for s in images.splits], pa.string()),
    }
    if images.task == "multiclass" and images.labels is not None:
        label = np.asarray(images.labels, np.int32)
        names = [images.class_names[c] if c >= 0 else None for c in label]
    else:
        label = np.full(n, -1, np.int32)
        names = [None if images.labels is None else "|".join(images.label_names(i) or []) for i in range(n)]
    columns["label"] = pa.array(label, pa.int32())
    columns["label_name"] = pa.array(names, pa.string())
    if images.task == "multilabel" and images.labels is not None:
        columns["labels"] = fixed_size_list(np.asarray(images.labels, np.int8), pa.int8())
    for name, values in images.metadata.items():
        if name in schema.RESERVED_ITEM_COLUMNS or name.startswith(schema.CODE_COLUMN):
            raise InputError(f"metadata column {name!r} clashes with a store column; rename it")
        columns[name] = pa.array(list(values))
    for space, codes in encoded.spaces.items():
        columns[schema.code_column(space)] = fixed_size_list(np.asarray(codes, np.float32), pa.float32())
    if encoded.predicted is not None:
        columns["predicted"] = pa.array(np.asarray(encoded.predicted, np.int32), pa.int32())
    if encoded.probabilities is not None:
        columns["probabilities"] = fixed_size_list(np.asarray(encoded.probabilities, np.float32), pa.float32())
    return pa.table(columns)


def build_graph(config: BuildConfig, *, images: ImageSet | None = None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Build a store from ``config`` and return its manifest."""
    from graphret.communities import cnm, haq_modularity, leiden, newman_modularity
    from graphret.graph.build import graph_to_edges, knn_graph_with_stats

    unknown = [m for m in config.communities if m not in COMMUNITY_METHODS]
    if unknown:
        raise InputError(f"unknown community method {unknown[0]!r}; choose from {', '.join(COMMUNITY_METHODS)}")
    if config.k < 1:
        raise InputError(f"k must be at least 1, got {config.k} (use e.g. --k 10)")
    if config.resolution <= 0:
        raise InputError(f"the resolution must be positive, got {config.resolution} (use e.g. --resolution 1.0)")

    check_store_target(config.output, overwrite=config.overwrite)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    if images is None:
        csv = CsvOptions(**config.csv_options) if config.csv_options else None
        images = open_source(config.source, seed=config.seed, split=config.split, on_corrupt=config.on_corrupt, csv=csv)
    step("load", t0)
    log(f"source: {images.source}: {len(images)} images, task {images.task}" + (f", skipped {images.skipped}" if images.skipped else ""))
    rows, archive = archive_rows(images)
    if config.k >= len(rows):
        raise InputError(f"k = {config.k} needs more than {len(rows)} archive images; use --k {max(len(rows) - 1, 1)} or less")

    t0 = time.perf_counter()
    encoder = fit_encoder(config, images, log)
    step("fit_encoder", t0)
    t0 = time.perf_counter()
    log(f"encoding {len(images)} images with {encoder.description}")
    encoded = encoder.encode(images)
    step("encode", t0)

    t0 = time.perf_counter()
    codes = encoded.spaces[DEFAULT_SPACE][rows]
    log(f"{config.knn} cosine {config.k}-NN graph over {len(rows)} archive images ({'+'.join(archive)})")
    local, stats = knn_graph_with_stats(codes, config.k, method=config.knn, symmetrize=config.symmetrize, seed=config.seed)
    step("knn", t0)

    memberships: dict[str, np.ndarray] = {}
    community_info: dict[str, Any] = {}
    dendrogram: dict[str, np.ndarray] | None = None
    for method in config.communities:
        t0 = time.perf_counter()
        log(f"communities: {method}")
        if method == "cnm":
            refine = {None: False, "moves": True, "multilevel": "multilevel"}.get(config.cnm_refine)
            if refine is None:
                raise InputError(f"unknown CNM refinement {config.cnm_refine!r}; use moves or multilevel")
            result = cnm(local, quality=config.quality, resolution=config.resolution, heuristic=config.cnm_heuristic, refine=refine)
            membership = result.membership
            dendrogram = result.dendrogram
            extra: dict[str, Any] = {
                "quality_function": config.quality,
                "heuristic": config.cnm_heuristic,
                "refine": config.cnm_refine,
                "dendrogram_best_step": int(result.best_step),
            }
        else:
            membership = leiden(local, resolution=config.resolution, seed=config.seed)
            extra = {"partition": "RBConfigurationVertexPartition", "seed": config.seed}
        step(method, t0)
        memberships[method] = membership
        community_info[method] = {
            "resolution": config.resolution,
            "n_communities": int(membership.max()) + 1 if len(membership) else 0,
            "newman_modularity": newman_modularity(local, membership, resolution=config.resolution),
            "haq_modularity": haq_modularity(local, membership, resolution=config.resolution),
            "seconds": timings[method],
            **extra,
        }

    src, dst, weight = graph_to_edges(local)
    n = len(images)

    def fill(folder: Path) -> None:
        write_arrow(folder / schema.ITEMS_FILE, items_table(images, encoded))
        write_arrow(folder / schema.EDGES_FILE, edges_table(rows[src], rows[dst], weight))
        columns = {}
        for method, membership in memberships.items():
            full = np.full(n, -1, np.int32)
            full[rows] = membership
            columns[method] = pa.array(full, pa.int32())
        write_arrow(folder / schema.COMMUNITIES_FILE, pa.table(columns) if columns else pa.table({}))
        names = [schema.ITEMS_FILE, schema.EDGES_FILE, schema.COMMUNITIES_FILE]
        if dendrogram is not None:
            write_arrow(folder / schema.DENDROGRAM_FILE, pa.table(dendrogram))
            names.append(schema.DENDROGRAM_FILE)
        encoder.save(folder / schema.ENCODER_FILE)
        names.append(schema.ENCODER_FILE)
        timings["total"] = round(time.perf_counter() - started, 3)
        manifest["build"]["peak_rss_mib"] = round(_peak_rss_mib(), 1)
        manifest["files"] = file_entries(folder, names)
        write_manifest(folder, manifest)

    by_split = {s: int(c) for s, c in zip(*np.unique(images.splits.astype(str), return_counts=True))}
    manifest: dict[str, Any] = {
        "graphret_version": graphret.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {
            "spec": config.source or "demo",
            "description": images.source,
            "task": images.task,
            "class_names": list(images.class_names),
            "split_origin": images.split_origin,
            "skipped": dict(images.skipped),
            "metadata_columns": sorted(images.metadata),
        },
        "encoder": {
            "name": encoder.name,
            "description": encoder.description,
            "config": encoder.config(),
            "file": schema.ENCODER_FILE,
            "spaces": {space: int(codes.shape[1]) for space, codes in encoded.spaces.items()},
            "classifier": encoder.has_classifier,
        },
        "archive": archive,
        "graph": {"items": "+".join(archive), "weights": "cosine similarity clipped to > 0", **stats},
        "communities": community_info,
        "params": asdict(config),
        "seed": config.seed,
        "counts": {"items": n, "archive": int(len(rows)), "edges": int(len(src)), "by_split": by_split, "added_since_clustering": 0},
        "build": {"seconds": timings, "machine": platform.machine(), "python": platform.python_version()},
    }
    manifest["params"]["communities"] = list(config.communities)
    write_store_folder(config.output, fill, overwrite=config.overwrite)
    if memberships:  # community centroids, cached now so the first query need not compute them
        from graphret.query.centroids import write_centroids
        from graphret.store import open_store

        write_centroids(open_store(config.output, verify=False))
    log(f"wrote {config.output}: {n} items, {len(src)} edges, " + ", ".join(f"{m} {i['n_communities']} communities" for m, i in community_info.items()))
    return manifest
