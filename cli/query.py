"""`graphret query`: search a store with images, stored ids or a whole split."""

from __future__ import annotations

import click

from cli.common import split_list
from graphret.store.atomic import atomic_write_bytes


@click.command("query")
@click.argument("store", type=click.Path())
@click.option("--image", "images", multiple=True, type=click.Path(), help="Query image file (repeatable).")
@click.option("--id", "ids", multiple=True, help="Stored item id as query (repeatable).")
@click.option("--split", default=None, help="Every stored item of this split as a query, e.g. test.")
@click.option("--k", "k", type=int, default=10, show_default=True, help="Results per query.")
@click.option("--mode", type=click.Choice(["flat"]), default="flat", show_default=True)
@click.option("--archive", default=None, help="Splits searched, comma list or 'all' (default: train+val, or all).")
@click.option("--space", default="default", show_default=True, help="Code space to search.")
@click.option("--communities", "community_method", default=None, help="Community method shown in results (default: cnm, else leiden).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None, help="Write the results to this file instead of stdout.")
def query_command(store, images, ids, split, k, mode, archive, space, community_method, fmt, output) -> None:
    """Find the K most similar archive images for each query."""
    from graphret.errors import InputError
    from graphret.query.output import render
    from graphret.query.search import queries_from_ids, queries_from_images, queries_from_split, search
    from graphret.store import open_store

    given = [name for name, value in (("--image", images), ("--id", ids), ("--split", split)) if value]
    if len(given) != 1:
        raise InputError("give exactly one kind of query: --image PATH, --id ID or --split NAME")
    graph_store = open_store(store)
    if images:
        queries = queries_from_images(graph_store, list(images), space=space)
    elif ids:
        queries = queries_from_ids(graph_store, list(ids), space=space)
    else:
        queries = queries_from_split(graph_store, split, space=space)
    result = search(graph_store, queries, k=k, mode=mode, archive=split_list(archive), space=space)
    text = render(result, graph_store, fmt=fmt, community_method=community_method)
    if output:
        atomic_write_bytes(output, text.encode())
    else:
        click.echo(text, nl=not text.endswith("\n"))
