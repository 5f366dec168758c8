"""`graphret add`: append new images to a store without a rebuild."""

from __future__ import annotations

import json

import click

from graphret.api.config import AddConfig
from graphret.data.config import MaskConfig

from .common import stderr_logger
from .options import config_options

MASK_OPTIONS = tuple(MaskConfig.__dataclass_fields__)


@click.command("add")
@click.argument("store", type=click.Path())
@click.argument("source")
@config_options(AddConfig, exclude=MASK_OPTIONS)  # masks train an encoder; add only encodes
@click.option("--quiet", is_flag=True, help="No progress lines.")
def add_command(store, source, quiet, **options) -> None:
    """Encode the images of SOURCE, append them to STORE, link each to its k most similar
    archive images and assign it to the community of largest quality gain.

    Added images join the archive whatever their split (marked by the `added` column); the
    manifest's counts.added_since_clustering tells when a full rebuild is due.  Prints a
    one-line JSON summary."""
    from graphret.api.add import add_to_store

    summary = add_to_store(store, source, AddConfig.from_options(**options), log=stderr_logger(quiet))
    click.echo(json.dumps(summary))
