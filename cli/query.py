"""`graphret query`: search a store with images, folders of images, stored ids or a whole split.
Its search options are generated from :class:`~graphret.query.config.SearchConfig`, as
``graphret.Store.search`` takes them."""

from __future__ import annotations

import click

from graphret.atomic import atomic_write_bytes
from graphret.query.config import SearchConfig
from graphret.query.output import FORMATS

from .options import config_options


@click.command("query")
@click.argument("store", type=click.Path())
@click.option("--image", "images", multiple=True, type=click.Path(), help="Query image file or folder of images (repeatable).")
@click.option("--id", "ids", multiple=True, help="Stored item id as query (repeatable).")
@click.option("--split", default=None, help="Every stored item of this split as a query, e.g. test.")
@click.option("--compose", default=None,
              help="Composite query of a decompose store: A:normal,B:abnormal (A, B stored ids or image files) searches with "
              "A's normal code and B's abnormal code in the both space.")
@config_options(SearchConfig)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(), default=None, help="Write the results to this file instead of stdout.")
@click.option("--montage", type=click.Path(), default=None, help="Also write a PNG of each query beside its top results.")
@click.option("--version", "version", type=int, default=None, help="Read this version of the store [the newest].")
def query_command(store, images, ids, split, compose, fmt, output, montage, version, **options) -> None:
    """Find the K most similar archive images for each query."""
    from graphret.api.store import Store
    from graphret.errors import InputError
    from graphret.query.output import render

    given = [(kind, value) for kind, value in (("images", list(images)), ("ids", list(ids)), ("split", split), ("compose", compose)) if value]
    if len(given) != 1:
        raise InputError("give exactly one kind of query: --image PATH, --id ID, --split NAME or --compose A:normal,B:abnormal")
    kind, value = given[0]
    opened = Store(store, version=version)
    if kind == "compose":
        result = opened.search(compose=value, **options)
    else:
        result = opened.search(value, kind=kind, **options)
    text = render(result, fmt=fmt)
    if montage:
        from graphret.query.montage import write_montage

        write_montage(result, montage)
    if output:
        atomic_write_bytes(output, text.encode())
    else:
        click.echo(text, nl=not text.endswith("\n"))
