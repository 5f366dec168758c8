"""`graphret add`: append new images to a store without a rebuild."""

from __future__ import annotations

import json

import click

from cli.common import stderr_logger


@click.command("add")
@click.argument("store", type=click.Path())
@click.argument("source")
@click.option("--k", "k", type=int, default=None, help="Edges per new image (default: the store's k).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the source's 70/30 split where it has none.")
@click.option("--no-split", is_flag=True, help="Put every new image in split 'all' (no seeded split).")
@click.option("--on-corrupt", type=click.Choice(["skip", "error"]), default="skip", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress lines.")
def add_command(store, source, k, seed, no_split, on_corrupt, quiet) -> None:
    """Encode the images of SOURCE, append them to STORE, link each to its k most similar
    archive images and assign it to the community of largest quality gain.

    Added images join the archive whatever their split (marked by the `added` column); the
    manifest's counts.added_since_clustering tells when a full rebuild is due.  Prints a
    one-line JSON summary."""
    from graphret.store.append import add_to_store

    summary = add_to_store(store, source, k=k, seed=seed, split=not no_split, on_corrupt=on_corrupt, log=stderr_logger(quiet))
    click.echo(json.dumps(summary))
