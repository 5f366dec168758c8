"""Build a store: source -> encoder -> cosine kNN graph -> communities -> store.

The graph and communities cover the archive (:func:`graphret.data.split.archive_splits`: train
+ val when the source has splits, every item otherwise); the store keeps every item and its
code, so test items can be queries.  :func:`build_store_from_codes` does the same from codes a user
already has.
"""

from __future__ import annotations

import platform
import resource
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Mapping, Sequence

import numpy as np
import pyarrow as pa

import graphret
from graphret.api.ahead import compiled_ahead
from graphret.api.config import BuildConfig
from graphret.communities.config import find_partition
from graphret.communities.partition import Partition
from graphret.data.imageset import ImageSet
from graphret.data.split import archive_splits
from graphret.encoders import DEFAULT_SPACE, Encoded, Encoder, load_encoder
from graphret.encoders.base import check_nonzero_codes
from graphret.encoders.cnn import PRETRAINED_IMAGE_SIZE, default_backbone
from graphret.encoders.config import (
    DEFAULT_ENCODER,
    DEFAULT_THREADS,
    DEFAULT_WORK,
    UNLABELLED_BACKBONE,
    UNLABELLED_ENCODER,
)
from graphret.encoders.frozen import FROZEN_BACKBONES
from graphret.encoders.training import train_encoder, training_indices
from graphret.errors import InputError
from graphret.graph import layout
from graphret.graph.build import edges_arrow, graph_to_edges, knn_graph_and_candidates, resolve_method
from graphret.graph.knn import real_array
from graphret.graph.search_graph import WalkEffort, build_search_graph, entry_points, walk_effort
from graphret.store.items import items_table
from graphret.store.schema import ENCODER_FILE
from graphret.store.thumbnails import thumbnails_table
from graphret.query.archive import prepared_tables
from graphret.store.write import StoreContent, check_store_target, write_store

if TYPE_CHECKING:
    from graphret.cluster.session import RaySession

__all__ = ["build_store", "build_store_from_codes", "choose_encoder", "DEFAULT_ENCODER", "DEFAULT_ENCODER_OPTIONS",
           "DEFAULT_TRAINING_OPTIONS"]

Log = Callable[[str], None]

# The build's default encoder (one home, in the encoders' config, whose help texts name it); its
# backbone follows the images' size (graphret.encoders.cnn.default_backbone).
DEFAULT_ENCODER_OPTIONS: dict[str, Any] = {}
DEFAULT_TRAINING_OPTIONS: dict[str, Any] = {"work": DEFAULT_WORK, "threads": DEFAULT_THREADS}
UNLABELLED_ENCODER_OPTIONS: dict[str, Any] = {"backbone": UNLABELLED_BACKBONE}


#: codes whose norms all lie this close to 1 are taken as normalised (no copy)
UNIT_TOLERANCE = 1e-6


def _quiet(_: str) -> None:
    pass


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: Called between build steps when set, to start a new peak-memory count so that each step's
#: ``peak_rss_mib_by_step`` is its own (benchmarks set it: ``benchmarks/common.reset_peak``
#: writes /proc/self/clear_refs).  A library must not reset its caller's memory counters, so by
#: default each step records the process's peak so far.
STEP_PEAK_RESET: Callable[[], None] | None = None


def _peak_so_far_mib() -> float | None:
    """The process's peak resident memory (``VmHWM``) in MiB; None where Linux's /proc is not there."""
    try:
        with open("/proc/self/status") as status:
            return round(next(float(line.split()[1]) / 1024.0 for line in status if line.startswith("VmHWM:")), 1)
    except (OSError, StopIteration, ValueError):
        return None


class _Clock:
    """Seconds and peak resident memory (MiB) per build step, for the manifest."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        self._t0 = self.started
        self._new_peak()

    @staticmethod
    def _new_peak() -> None:
        if STEP_PEAK_RESET is not None:
            STEP_PEAK_RESET()

    def step(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._t0, 3)
        peak = _peak_so_far_mib()
        if peak is not None:
            self.peak_mib[name] = peak
        self._new_peak()
        self._t0 = now

    def total(self) -> None:
        self.seconds["total"] = round(time.perf_counter() - self.started, 3)


def has_class_labels(images: ImageSet) -> bool:
    """True when the train split carries labels a classifier can learn: two classes or more
    (multi-class), or at least one positive (multi-label)."""
    if images.labels is None:
        return False
    train, _ = training_indices(images)
    labels = np.asarray(images.labels)[train]
    if images.task == "multilabel":
        return bool((labels == 1).any())
    return len(np.unique(labels[labels >= 0])) >= 2


def choose_encoder(config: BuildConfig, images: ImageSet) -> tuple[str, dict[str, Any]]:
    """The encoder to train and its options: the configured one, else the default (a classifier:
    ImageNet EfficientNet-Lite0 fine-tuned, or the small CNN for images under 96 px), else, for
    sources without class labels, the same ImageNet network frozen (the pixel baseline for
    images under 96 px, or when a backbone it does not have was asked for)."""
    name = config.encoder.name
    if name is None:
        name = DEFAULT_ENCODER if has_class_labels(images) else UNLABELLED_ENCODER
        pretrained = default_backbone(images) != "small" or config.encoder.backbone in FROZEN_BACKBONES
        if name == UNLABELLED_ENCODER and (not pretrained or config.encoder.backbone not in (None, *FROZEN_BACKBONES)):
            return "pixels", {key: value for key, value in config.encoder.options().items() if key in ("image_size", "dim")}
    encoder = config.encoder.with_name(name)
    options = encoder.options()
    if name == UNLABELLED_ENCODER and config.encoder.name is None:
        options = {**UNLABELLED_ENCODER_OPTIONS, "image_size": PRETRAINED_IMAGE_SIZE, **{key: value for key, value in options.items() if key in ("image_size", "weights")}}
    elif name == DEFAULT_ENCODER and config.encoder.name is None:
        options = {**DEFAULT_ENCODER_OPTIONS, "backbone": default_backbone(images), **options}
    return name, options


def default_checkpoint(output: Path) -> Path:
    """Where a build's training writes its checkpoint when none is configured: beside the
    store, removed once the store is written (it only serves to resume an interrupted build)."""
    return output.with_name(output.name + ".encoder.ckpt")


def fit_encoder(config: BuildConfig, images: ImageSet, output: Path, log: Log, *, progress: bool = False) -> Encoder:
    """Load ``config.model``, or train the chosen encoder on the train split (val for early
    stopping when the source has one); ``progress``: the training's progress bars."""
    if config.model:
        encoder = load_encoder(config.model, expect=config.encoder.name)
        log(f"loaded encoder {encoder.name} from {config.model}")
        return encoder
    name, options = choose_encoder(config, images)
    if config.encoder.name is None:
        reason = "the default" if name == DEFAULT_ENCODER else "the default for a source without class labels"
        log(f"encoder: {name} ({reason}; choose another encoder to change it)")
    training = config.training.options(name, checkpoint_default=str(default_checkpoint(output)), progress=progress)
    if config.encoder.name is None and name in (DEFAULT_ENCODER, UNLABELLED_ENCODER):  # the defaults, where the user set none
        if name == DEFAULT_ENCODER and not any(key in training for key in ("epochs", "work", "time_limit")):
            training["work"] = DEFAULT_TRAINING_OPTIONS["work"]
        if training.get("threads") is None:
            training["threads"] = DEFAULT_TRAINING_OPTIONS["threads"]
    log(f"fitting encoder {name}")
    return train_encoder(images, name, seed=config.seed, **options, **training)


def _engine(config: BuildConfig) -> ContextManager["RaySession | None"]:
    """The Ray session a build runs its encoding and kNN graph on (``--engine ray``), or None."""
    if config.engine.name == "local":
        return nullcontext(None)
    from graphret.cluster.session import ray_session

    return ray_session(config.engine.address)


def _encode(encoder: Encoder, images: ImageSet, session: "RaySession | None", config: BuildConfig,
            engine_info: dict[str, Any], log: Log) -> Encoded:
    """All items' codes, here or on the Ray actor pool."""
    if session is None:
        return encoder.encode(images)
    from graphret.cluster.encode import encode_on_ray

    encoded, info = encode_on_ray(encoder, images, session, workers=config.engine.workers)
    engine_info["encode"] = info
    log(f"encoded on Ray: {info['workers']} actors, {info['blocks']} blocks")
    return encoded


def _knn(codes: np.ndarray, session: "RaySession | None", config: BuildConfig, engine_info: dict[str, Any], keep: int = 0):
    """The kNN graph, its stats and each code's ``keep`` most similar codes of the same search
    (the walk lists' candidates; None where the method keeps none): exact kNN (asked for, or
    chosen by ``auto``) as sharded Ray tasks on the Ray engine, every other case here."""
    method = resolve_method(config.graph.knn, len(codes))
    candidates = None
    if session is not None and method == "exact":
        from graphret.cluster.knn import ray_knn_graph_with_stats

        graph, stats = ray_knn_graph_with_stats(codes, config.graph.k, session, symmetrize=config.graph.symmetrize)
        engine_info["knn"] = {"shards": stats["shards"], "shard_rows": stats["shard_rows"]}
    else:
        options = {"threads": config.graph.knn_threads} if method == "faiss" else {}
        graph, stats, candidates = knn_graph_and_candidates(codes, config.graph.k, keep=keep, method=method,
                                                            symmetrize=config.graph.symmetrize, seed=config.seed, **options)
    if method != config.graph.knn:
        stats["requested"] = config.graph.knn
    return graph, stats, candidates


def _community_table(partitions: Mapping[str, Partition], rows: np.ndarray, n: int) -> pa.Table:
    """One int32 column per method over all n items (-1 outside the clustered archive)."""
    columns = {}
    for method, partition in partitions.items():
        full = np.full(n, -1, np.int32)
        full[rows] = partition.membership
        columns[method] = pa.array(full, pa.int32())
    return pa.table(columns) if columns else pa.table({})


def _community_info(graph, partitions: Mapping[str, Partition], config: BuildConfig) -> dict[str, Any]:
    from graphret.communities.quality import haq_modularity, newman_modularity

    info = {}
    for method, partition in partitions.items():
        info[method] = {
            "resolution": config.communities.resolution,
            "n_communities": partition.n_communities,
            "newman_modularity": newman_modularity(graph, partition.membership, resolution=config.communities.resolution),
            "haq_modularity": haq_modularity(graph, partition.membership, resolution=config.communities.resolution),
            "seconds": round(partition.seconds, 3),
            **partition.settings(),
        }
    return info


def _walk_effort(config: BuildConfig, n: int, *, searched: bool = True) -> WalkEffort:
    """The walk lists' effort for an archive of n items: the config's, else the size's default
    (``searched``: whether the kNN search kept the candidates asked for)."""
    return walk_effort(n, passes=config.graph.walk_passes, expand=config.graph.walk_expand,
                       local_passes=config.graph.walk_local, candidates=config.graph.walk_candidates, searched=searched)


def _walk_lists(codes: np.ndarray, graph, candidates: np.ndarray | None, partitions: Mapping[str, Partition],
                rows: np.ndarray, config: BuildConfig, clock: _Clock,
                log: Log) -> tuple[pa.Table | None, pa.Table | None, dict[str, Any] | None]:
    """The walk lists over the archive (from the kNN search's ``candidates`` where it kept them,
    else from its kNN graph) and their entry points, the medoids of the default method's
    communities, as store tables (item rows), and their manifest record."""
    if not config.graph.walk:
        return None, None, None
    passes, expand, local, _ = _walk_effort(config, len(codes), searched=candidates is not None)
    kept = 0 if candidates is None else int(candidates.shape[1])
    if kept:  # the search's candidates already hold the neighbours' neighbours an expansion would find
        expand = False
    source = f"the kNN search's {kept} most similar" if kept else "kNN lists" + (" and theirs" if expand else " only")
    log(f"walk lists (at most {config.graph.walk_degree} neighbours from {source}, {passes} passes"
        f"{f', {local} local' if local else ''})")
    method = "cnm" if "cnm" in partitions else next(iter(partitions), None)
    # built in community order on large archives (graphret.graph.layout: several times faster at 1M)
    groups = partitions[method].membership if method is not None and layout.pays(len(codes)) else None
    indptr, indices = build_search_graph(codes, graph if candidates is None else candidates, max_degree=config.graph.walk_degree,
                                         passes=passes, expand=expand, local_passes=local,
                                         ef_construction=config.graph.walk_ef, seed=config.seed, groups=groups)
    entries = entry_points(codes, None if method is None else partitions[method].membership, graph=(indptr, indices))
    clock.step("walk")
    walk = pa.table({"src": pa.array(rows[np.repeat(np.arange(len(rows)), np.diff(indptr))], pa.int64()),
                     "dst": pa.array(rows[indices], pa.int64())})
    info = {"max_degree": config.graph.walk_degree, "passes": passes, "expand": expand, "local_passes": local,
            "candidates": kept,
            "built_in": "community order" if groups is not None else "archive order",
            "ef_construction": config.graph.walk_ef,
            "edges": int(len(indices)), "entries": int(len(entries)), "entries_from": method or "the global medoid"}
    return walk, pa.table({"row": pa.array(rows[entries], pa.int64())}), info


def _index_and_write(images: ImageSet, encoded: Encoded, output: Path, config: BuildConfig, *, spec: str | None,
                     encoder_info: dict[str, Any], write_encoder: Callable[[Path], None] | None, clock: _Clock, log: Log,
                     thumbnails: pa.Table | None = None, session: "RaySession | None" = None,
                     engine_info: dict[str, Any] | None = None) -> Path:
    """The graph and communities over the archive of ``images`` (codes ``encoded``), the
    manifest, and the store written at ``output`` (with ``thumbnails`` where given): the part
    of a build after encoding."""
    archive = archive_splits(images.splits)
    rows = np.arange(len(images)) if archive == ["all"] else images.indices_of(archive)
    codes = encoded.spaces[DEFAULT_SPACE]
    archive_codes = codes if len(rows) == len(codes) else codes[rows]  # every item: no copy
    log(f"{resolve_method(config.graph.knn, len(rows))} cosine {config.graph.k}-NN graph over {len(rows)} archive images ({'+'.join(archive)})")
    engine_info = {"name": "local"} if session is None else {**session.info(), **(engine_info or {})}
    keep = _walk_effort(config, len(rows)).candidates if config.graph.walk else 0
    graph, stats, candidates = _knn(archive_codes, session, config, engine_info, keep)
    clock.step("knn")
    partitions: dict[str, Partition] = {}
    for method in config.communities.methods:
        log(f"communities: {method}")
        partitions[method] = find_partition(graph, method, config.communities, seed=config.seed)
        clock.step(method)
    walk, entries, walk_info = _walk_lists(archive_codes, graph, candidates, partitions, rows, config, clock, log)
    del candidates
    src, dst, weight = graph_to_edges(graph)
    n = len(images)
    by_split = {s: int(c) for s, c in zip(*np.unique(images.splits.astype(str), return_counts=True))}
    clock.total()
    manifest = {
        "graphret_version": graphret.__version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": {
            "spec": spec,
            "description": images.source,
            "task": images.task,
            "class_names": list(images.class_names),
            "split_origin": images.split_origin,
            "skipped": dict(images.skipped),
            "metadata_columns": sorted(images.metadata),
            "group_by": images.group_by or None,
            "groups": None if images.groups is None else int(len(set(images.groups))),
            "layout": images.layout or None,
        },
        "encoder": encoder_info,
        "archive": archive,
        "graph": {"items": "+".join(archive), "weights": "cosine similarity clipped to > 0", **stats},
        "walk": walk_info,
        "communities": _community_info(graph, partitions, config),
        "params": config.flat(),
        "seed": config.seed,
        "counts": {"items": n, "archive": int(len(rows)), "edges": int(len(src)), "by_split": by_split, "added_since_clustering": 0},
        "build": {"seconds": clock.seconds, "peak_rss_mib": round(max([_peak_rss_mib(), *clock.peak_mib.values()]), 1),
                  "peak_rss_mib_by_step": clock.peak_mib, "engine": engine_info,
                  "machine": platform.machine(), "python": platform.python_version()},
    }
    cnm = partitions.get("cnm")
    write_store(output, StoreContent(
        items=items_table(images, encoded),
        edges=edges_arrow(rows[src], rows[dst], weight),
        communities=_community_table(partitions, rows, n),
        dendrogram=None if cnm is None else cnm.dendrogram_table(),
        write_encoder=write_encoder,
        manifest=manifest,
        thumbnails=thumbnails,
        walk=walk,
        entries=entries,
    ), overwrite=config.overwrite, prepare=prepared_tables)
    log(f"wrote {output}: {n} items, {len(src)} edges, " + ", ".join(f"{m} {p.n_communities} communities" for m, p in partitions.items()))
    return output


def _check_archive(images: ImageSet, config: BuildConfig) -> int:
    """The number of archive items, which must be more than the graph's k."""
    archive = archive_splits(images.splits)
    n_archive = len(images) if archive == ["all"] else len(images.indices_of(archive))
    if config.graph.k >= n_archive:
        raise InputError(f"k = {config.graph.k} needs more than {n_archive} archive images; use {{k={max(n_archive - 1, 1)}}} or less", param="k")
    return n_archive


def build_store(source: str | Path | ImageSet | None, output: str | Path, config: BuildConfig, *,
                log: Log | None = None) -> Path:
    """Build the store of ``source`` (a source spec for :func:`graphret.data.open_source`,
    None for the embedded demo set, or an ImageSet) at ``output`` with ``config``.  With the
    ray engine the cluster is reached (or a local instance started) first, so a wrong address
    fails before any work.  ``log``: progress lines go to it and the training shows progress
    bars; None: quiet, nothing printed.  Nothing is left beside the store: the default training
    checkpoint is removed once the store is written."""
    output = Path(output)
    with _engine(config) as session:
        path = _build_store(source, output, config, session=session, log=log or _quiet, progress=log is not None)
    if config.training.checkpoint is None:  # the default checkpoint only serves an interrupted build
        default_checkpoint(output).unlink(missing_ok=True)
    return path


def _build_store(source: str | Path | ImageSet | None, output: Path, config: BuildConfig, *,
                 session: "RaySession | None", log: Log, progress: bool) -> Path:
    if config.source.codes:
        if not isinstance(source, (str, Path)):
            raise InputError("a code table source is a Parquet or CSV file; give its path", param="source")
        table = config.source.read_codes(source)
        return build_store_from_codes(table.codes, output, ids=table.ids, labels=table.labels, class_names=table.class_names,
                                      metadata=table.metadata, splits=table.splits, config=config, description=table.source, log=log)
    check_store_target(output, overwrite=config.overwrite)
    clock = _Clock()
    images = source if isinstance(source, ImageSet) else config.source.open(source, seed=config.seed)
    clock.step("load")
    log(f"source: {images.source}: {len(images)} images, task {images.task}" + (f", skipped {images.skipped}" if images.skipped else ""))
    n_archive = _check_archive(images, config)

    # numba compiles the graph steps' kernels in other processes meanwhile when its cache lacks them
    with compiled_ahead(config, n_archive, log) if session is None else nullcontext() as ahead:
        encoder = fit_encoder(config, images, output, log, progress=progress)
        clock.step("fit_encoder")
        log(f"encoding {len(images)} images with {encoder.description}" + ("" if session is None else " on Ray"))
        engine_info: dict[str, Any] = {}
        encoded = _encode(encoder, images, session, config, engine_info, log)
        check_nonzero_codes(encoded, images.ids)
        clock.step("encode")
        thumbnails = None
        if config.thumbnail_size:
            log(f"thumbnails of {len(images)} images ({config.thumbnail_size} px)")
            thumbnails = thumbnails_table(len(images), images.image, size=config.thumbnail_size)
            clock.step("thumbnails")
        if ahead is not None and ahead.processes:
            ahead.wait()
            clock.step("compile_wait")

    spec = str(source) if isinstance(source, (str, Path)) else ("demo" if source is None else images.source)
    encoder_info = {
        "name": encoder.name,
        "description": encoder.description,
        "config": encoder.config(),
        "file": ENCODER_FILE,
        "spaces": {space: int(codes.shape[1]) for space, codes in encoded.spaces.items()},
        "classifier": encoder.has_classifier,
    }
    return _index_and_write(images, encoded, output, config, spec=spec, encoder_info=encoder_info,
                            write_encoder=encoder.save, clock=clock, log=log, thumbnails=thumbnails,
                            session=session, engine_info=engine_info)


def _labels_of(labels: Any, class_names: Sequence[str] | None, n: int) -> tuple[np.ndarray | None, list[str], str]:
    """(labels, class names, task) from what a user passes: class names per item, class
    indices (with ``class_names``), or a 0/1 matrix (multi-label, with ``class_names``)."""
    if labels is None:
        return None, [], "unlabelled"
    array = np.asarray(labels)
    if len(array) != n:
        raise InputError(f"{{labels}} has {len(array)} entries for {n} codes; give one label per code", param="labels")
    if array.ndim == 2:
        if class_names is None or len(class_names) != array.shape[1]:
            raise InputError("multi-label {labels} need {class_names}, one per column", param="class_names")
        if not np.isin(array, (-1, 0, 1)).all():
            raise InputError("multi-label {labels} must hold 1 (positive), 0 (negative) or -1 (unknown)", param="labels")
        return array.astype(np.int8), [str(c) for c in class_names], "multilabel"
    if array.ndim != 1:
        raise InputError(f"{{labels}} must be one label per code or a 0/1 matrix, got shape {array.shape}", param="labels")
    if np.issubdtype(array.dtype, np.integer):
        if class_names is None and len(array) and int(array.max()) >= n:
            raise InputError(f"integer {{labels}} go up to {int(array.max())} for {n} codes; renumber them 0..C-1 or give "
                             "{class_names}", param="labels")
        names = [str(c) for c in class_names] if class_names is not None else [str(c) for c in range(int(array.max()) + 1)]
        if array.min() < -1 or array.max() >= len(names):
            raise InputError(f"integer {{labels}} must lie in -1..{len(names) - 1} (one per class name)", param="labels")
        return array.astype(np.int64), names, "multiclass"
    text = np.asarray([None if v is None else str(v) for v in array.tolist()], dtype=object)
    names = sorted({v for v in text if v not in (None, "")}) if class_names is None else [str(c) for c in class_names]
    index = {name: i for i, name in enumerate(names)}
    unknown = [v for v in text if v not in (None, "") and v not in index]
    if unknown:
        raise InputError(f"label {unknown[0]!r} is not one of {{class_names}}", param="class_names")
    return np.asarray([index.get(v, -1) if v not in (None, "") else -1 for v in text], np.int64), names, "multiclass"


def build_store_from_codes(
    codes: np.ndarray,
    path: str | Path,
    *,
    ids: Sequence[str] | None = None,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, Sequence[Any]] | None = None,
    splits: Sequence[str] | None = None,
    config: BuildConfig | None = None,
    description: str = "codes",
    log: Log | None = None,
) -> Path:
    """Build a store at ``path`` from codes a user already has (n, d): normalised here, one
    item per row, no encoder (query it with codes or stored ids).

    ``ids`` (default ``"0".."n-1"``), ``labels`` (class names, class indices with
    ``class_names``, or a 0/1/-1 matrix with ``class_names`` for multi-label), ``metadata``
    (columns usable by ``where`` filters), ``splits`` (default: every item in the archive)."""
    config = config or BuildConfig()
    log = log or _quiet
    output = Path(path)
    check_store_target(output, overwrite=config.overwrite)
    array = real_array(codes, name="{codes}", param="codes")
    owned = array is not codes and not np.shares_memory(array, codes) if isinstance(codes, np.ndarray) else True
    if array.ndim != 2 or len(array) < 2:
        raise InputError(f"{{codes}} must be an (n, d) array with n >= 2, got shape {array.shape}", param="codes")
    if not np.all(np.isfinite(array)):
        raise InputError("{codes} hold NaN or infinite values; fix or drop those rows", param="codes")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError(f"{{codes}} has {int((norms == 0).sum())} all-zero rows, which have no direction; drop them", param="codes")
    if owned:  # a float32 copy made above: normalise it in place, never a third copy
        array /= norms
    elif np.abs(norms - 1).max() > UNIT_TOLERANCE:  # the caller's array: normalise a copy
        array = array / norms
    # else: the caller's float32 codes are unit already (most embeddings): used as they are, no copy
    del norms
    n = len(array)
    ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
    if len(ids) != n or len(set(ids)) != n:
        raise InputError("{ids} must give one distinct id per code", param="ids")
    label_array, names, task = _labels_of(labels, class_names, n)
    split_array = np.full(n, "all", dtype=object) if splits is None else np.asarray([str(s) for s in splits], dtype=object)
    if len(split_array) != n:
        raise InputError("{splits} must give one split per code", param="splits")
    columns = {str(k): np.asarray(v) for k, v in (metadata or {}).items()}
    for key, column in columns.items():
        if len(column) != n:
            raise InputError(f"metadata column {key!r} has {len(column)} values for {n} codes", param="metadata")

    def no_pixels(i: int) -> np.ndarray:
        raise InputError("this store was built from codes and holds no pixels")

    images = ImageSet(ids=ids, paths=[None] * n, splits=split_array, labels=label_array, class_names=names, task=task,
                      source=description, read=no_pixels, split_origin="source" if splits is not None else "none",
                      metadata=columns)
    _check_archive(images, config)
    encoder_info = {"name": "none", "description": "codes given by the user", "config": {}, "file": None,
                    "spaces": {DEFAULT_SPACE: int(array.shape[1])}, "classifier": False}
    with _engine(config) as session:
        return _index_and_write(images, Encoded(spaces={DEFAULT_SPACE: array}), output, config, spec=None,
                                encoder_info=encoder_info, write_encoder=None, clock=_Clock(), log=log, session=session)
