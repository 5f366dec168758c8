"""`graphret query`: search a store with images, folders of images, stored ids or a whole split.
Its search options are generated from :class:`~graphret.query.config.SearchConfig`, as
``graphret.Store.search`` takes them."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

import click

from graphret.atomic import atomic_write_bytes
from graphret.query.config import SearchConfig
from graphret.query.output import FORMATS

from .options import config_options

#: at most this many queries (stored ids or image files) run the search kernels as Python
#: (graphret.kernels.jit.interpreted): 10-30 ms a query against 0.6-1 s to import numba and load
#: the compiled kernels, which a command that answers and exits would pay for them
INTERPRETED_QUERIES = 8


@click.command("query")
@click.argument("store", type=click.Path())
@click.option("--image", "images", multiple=True, type=click.Path(), help="Query image file or folder of images (repeatable).")
@click.option("--id", "ids", multiple=True, help="Stored item id as query (repeatable).")
@click.option("--split", default=None, help="Every stored item of this split as a query, e.g. test.")
@click.option("--compose", default=None,
              help="Composite query of a decompose store: A:normal,B:abnormal (A, B stored ids or image files) searches with "
              "A's normal code and B's abnormal code in the both space.")
@config_options(SearchConfig)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table (readable), json (one query per line), csv or parquet (one row per result; parquet needs -o).")
@click.option("-o", "--output", type=click.Path(), default=None, help="Write the results to this file instead of stdout.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a PNG of each query beside its top results.")
@click.option("--version", "version", type=int, default=None, help="Read this version of the store [the newest].")
def query_command(store, images, ids, split, compose, fmt, output, montage, version, **options) -> None:
    """Find the K most similar archive images for each query."""
    from graphret.errors import InputError
    from graphret.kernels.jit import interpreted
    from graphret.query.searcher import Searcher, search_store
    from graphret.store.read import open_store
    from graphret.query.output import BINARY_FORMATS, render_parts

    given = [(kind, value) for kind, value in (("images", list(images)), ("ids", list(ids)), ("split", split), ("compose", compose)) if value]
    if len(given) != 1:
        raise InputError("give exactly one kind of query: --image PATH, --id ID, --split NAME or --compose A:normal,B:abnormal")
    kind, value = given[0]
    if fmt in BINARY_FORMATS and not output:
        raise InputError(f"--format {fmt} writes a binary file; give -o FILE")
    snapshot = open_store(store, version=version)  # the query layer: a search needs nothing of build or add
    searcher_for = lambda **index: Searcher(snapshot, **index)  # noqa: E731
    config = SearchConfig.from_options(**options)
    with interpreted() if few_queries(kind, value) else nullcontext():
        if kind == "compose":
            result = search_store(snapshot, searcher_for, compose=value, config=config)
        else:
            result = search_store(snapshot, searcher_for, value, kind=kind, config=config)
    parts = render_parts(result, fmt=fmt)
    if montage:
        from graphret.query.montage import write_montage

        write_montage(result, montage)
    if output:
        atomic_write_bytes(output, parts)
    else:
        sys.stdout.flush()
        last = b""
        for part in parts:
            sys.stdout.buffer.write(part)
            last = bytes(part[-1:]) or last
        if last != b"\n":
            sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()


def few_queries(kind: str, value) -> bool:
    """Whether this command's queries are few enough to search without compiling the kernels:
    at most :data:`INTERPRETED_QUERIES` stored ids or image files (not folders)."""
    if kind == "ids":
        return len(value) <= INTERPRETED_QUERIES
    if kind == "images":
        return len(value) <= INTERPRETED_QUERIES and all(Path(path).is_file() for path in value)
    return kind == "compose"
