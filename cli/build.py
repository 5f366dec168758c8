"""`graphret build-graph`: source -> encoder -> kNN graph -> communities -> store."""

from __future__ import annotations

import json

import click

from graphret.api.config import BuildConfig

from .common import stderr_logger
from .options import config_options


@click.command("build-graph")
@click.argument("source", required=False)
@click.option("-o", "--output", required=True, type=click.Path(), help="Store folder to write (created atomically).")
@config_options(BuildConfig)
@click.option("--quiet", is_flag=True, help="No progress lines or bars.")
def build_graph_command(source, output, quiet, **options) -> None:
    """Build a graph store from SOURCE (default: the embedded demo set).

    SOURCE is a MedMNIST-style .npz, a folder of class sub-folders, a CSV manifest,
    `demo`, or `medmnist:NAME` (downloaded once into a cache).
    """
    from graphret.api import build

    store = build(source, output, log=None if quiet else stderr_logger(), **options)
    manifest = store.manifest
    click.echo(json.dumps({
        "store": output,
        "items": manifest["counts"]["items"],
        "edges": manifest["counts"]["edges"],
        "communities": {m: info["n_communities"] for m, info in manifest["communities"].items()},
        "seconds": manifest["build"]["seconds"]["total"],
        "peak_rss_mib": manifest["build"]["peak_rss_mib"],
    }))
