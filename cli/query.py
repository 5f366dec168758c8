"""`graphret query`: search a store with images, folders of images, stored ids or a whole split."""

from __future__ import annotations

import sys

import click

from graphret.atomic import atomic_write_bytes
from graphret.query.classfilter import CLASS_SOURCES
from graphret.query.output import FORMATS
from graphret.graph.walk import DEFAULT_EF
from graphret.query.graph_region import DEFAULT_REGION_EF
from graphret.query.searcher import DEFAULT_PROBE, MODES, RANKS

from .common import split_list


@click.command("query")
@click.argument("store", type=click.Path())
@click.option("--image", "images", multiple=True, type=click.Path(), help="Query image file or folder of images (repeatable).")
@click.option("--id", "ids", multiple=True, help="Stored item id as query (repeatable).")
@click.option("--split", default=None, help="Every stored item of this split as a query, e.g. test.")
@click.option("--compose", default=None,
              help="Composite query of a decompose store: A:normal,B:abnormal (A, B stored ids or image files) searches with "
              "A's normal code and B's abnormal code in the both space.")
@click.option("--k", "k", type=int, default=10, show_default=True, help="Results per query.")
@click.option("--mode", type=click.Choice(MODES), default=None,
              help="region (Haq's region growing on the graph; the default when the store has communities), graph (a walk "
              "through the graph), flat (exact), class (inside the predicted class) or probe (exact inside the P nearest lists).")
@click.option("--probe", "n_probe", type=int, default=DEFAULT_PROBE, show_default=True, help="Lists probe mode searches (P).")
@click.option("--ef", type=int, default=None, help=f"The walk's effort, graph and region modes: larger finds more, slower [{DEFAULT_EF}; region {DEFAULT_REGION_EF}].")
@click.option("--rank", type=click.Choice(RANKS), default=None, help="Re-order the results by the graph: smoothed (cosine to graph-smoothed codes) or manifold (manifold ranking) [the mode's own order].")
@click.option("--where", "where", multiple=True, help="Metadata filter applied before ranking, e.g. label=CXR, split!=test, 'anatomy in head,chest', age>=40 (repeatable).")
@click.option("--class-from", "class_source", type=click.Choice(CLASS_SOURCES), default="classifier", show_default=True, help="Class mode: the encoder's classifier, or a kNN vote.")
@click.option("--archive", default=None, help="Splits searched, comma list or 'all' [train+val, or all, plus added items].")
@click.option("--space", default="default", show_default=True,
              help="Code space to search (decompose stores: normal, abnormal or both).")
@click.option("--communities", default=None, help="Community method region/probe use and results show [cnm, else leiden].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table (readable), json (one query per line), csv or parquet (one row per result; parquet needs -o).")
@click.option("-o", "--output", type=click.Path(), default=None, help="Write the results to this file instead of stdout.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a PNG of each query beside its top results.")
@click.option("--version", "version", type=int, default=None, help="Read this version of the store [the newest].")
@click.option("--batch-size", type=int, default=None, help="Queries searched per batch [all at once].")
def query_command(store, images, ids, split, compose, k, mode, n_probe, ef, rank, where, class_source, archive, space, communities,
                  fmt, output, montage, version, batch_size) -> None:
    """Find the K most similar archive images for each query."""
    from graphret.errors import InputError
    from graphret.query.output import BINARY_FORMATS, render_bytes
    from graphret.query.searcher import Searcher
    from graphret.store import open_store

    given = [(kind, value) for kind, value in (("images", list(images)), ("ids", list(ids)), ("split", split), ("compose", compose)) if value]
    if len(given) != 1:
        raise InputError("give exactly one kind of query: --image PATH, --id ID, --split NAME or --compose A:normal,B:abnormal")
    kind, value = given[0]
    if fmt in BINARY_FORMATS and not output:
        raise InputError(f"--format {fmt} writes a binary file; give -o FILE")
    snapshot = open_store(store, version=version)
    if kind == "compose":
        from graphret.query.compose import COMPOSITE_SPACE, composite_queries

        if space not in ("default", COMPOSITE_SPACE):
            raise InputError(f"a composite query searches the {COMPOSITE_SPACE} space, not {space!r}; leave {{space}} out", param="space")
        queries = composite_queries(snapshot, value)
        space = COMPOSITE_SPACE
    searcher = Searcher(snapshot, space=space, archive=split_list(archive), communities=communities)
    if kind != "compose":
        queries = searcher.queries(value, kind=kind)
    result = searcher.search(queries, k=k, mode=mode, where=list(where) or None, n_probe=n_probe,
                             ef=ef, rank=rank, class_source=class_source, batch_size=batch_size)
    data = render_bytes(result, fmt=fmt)
    if montage:
        from graphret.query.montage import write_montage

        write_montage(result, montage)
    if output:
        atomic_write_bytes(output, data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
        sys.stdout.buffer.flush()
