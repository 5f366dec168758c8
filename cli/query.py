"""`graphret query`: search a store with images, folders of images, stored ids or a whole split."""

from __future__ import annotations

import click

from cli.common import split_list
from graphret.store.atomic import atomic_write_bytes


@click.command("query")
@click.argument("store", type=click.Path())
@click.option("--image", "images", multiple=True, type=click.Path(), help="Query image file or folder of images (repeatable).")
@click.option("--id", "ids", multiple=True, help="Stored item id as query (repeatable).")
@click.option("--split", default=None, help="Every stored item of this split as a query, e.g. test.")
@click.option("--k", "k", type=int, default=10, show_default=True, help="Results per query.")
@click.option(
    "--mode",
    type=click.Choice(["region", "flat", "class", "probe"]),
    default=None,
    help="region (Haq's region growing; the default when the store has communities), flat (exact), "
    "class (inside the predicted class) or probe (exact inside the P nearest communities).",
)
@click.option("--probe", "n_probe", type=int, default=4, show_default=True, help="Communities probe mode searches (P).")
@click.option("--shortlist", type=int, default=None, help="Communities region mode short-lists by centroid (default 4).")
@click.option("--where", "where", multiple=True, help="Metadata filter applied before ranking, e.g. label=CXR, split!=test, 'anatomy in head,chest', age>=40 (repeatable).")
@click.option("--class-from", "class_source", type=click.Choice(["classifier", "knn"]), default="classifier", show_default=True, help="Class mode: the encoder's classifier, or a kNN vote.")
@click.option("--archive", default=None, help="Splits searched, comma list or 'all' (default: train+val, or all, plus added items).")
@click.option("--space", default="default", show_default=True, help="Code space to search.")
@click.option("--communities", "community_method", default=None, help="Community method region/probe use and results show (default: cnm, else leiden).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None, help="Write the results to this file instead of stdout.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a PNG of each query beside its top results.")
@click.option("--batch-size", type=int, default=None, help="Queries searched per batch (default: all at once).")
def query_command(store, images, ids, split, k, mode, n_probe, shortlist, where, class_source, archive, space, community_method, fmt, output, montage, batch_size) -> None:
    """Find the K most similar archive images for each query."""
    from graphret.errors import InputError
    from graphret.query.output import render
    from graphret.query.search import queries_from_ids, queries_from_images, queries_from_split, search
    from graphret.store import open_store

    given = [name for name, value in (("--image", images), ("--id", ids), ("--split", split)) if value]
    if len(given) != 1:
        raise InputError("give exactly one kind of query: --image PATH, --id ID or --split NAME")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if k < 1:
        raise InputError(f"K must be at least 1, got {k} (use e.g. --k 10)")
    graph_store = open_store(store)
    if space not in graph_store.spaces:
        raise InputError(f"the store has no code space {space!r}; choose one of {', '.join(graph_store.spaces)}")
    if images:
        queries = queries_from_images(graph_store, list(images), space=space)
    elif ids:
        queries = queries_from_ids(graph_store, list(ids), space=space)
    else:
        queries = queries_from_split(graph_store, split, space=space)
    result = search(
        graph_store,
        queries,
        k=k,
        mode=mode,
        archive=split_list(archive),
        space=space,
        where=list(where) or None,
        n_probe=n_probe,
        shortlist=shortlist,
        communities=community_method,
        class_source=class_source,
        batch_size=batch_size,
    )
    text = render(result, graph_store, fmt=fmt, community_method=community_method)
    if montage:
        from graphret.query.montage import write_montage

        write_montage(result, montage)
    if output:
        atomic_write_bytes(output, text.encode())
    else:
        click.echo(text, nl=not text.endswith("\n"))
