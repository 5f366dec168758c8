"""`graphret build-graph`: source -> encoder -> kNN graph -> communities -> store."""

from __future__ import annotations

import json

import click

from pathlib import Path

from cli.common import split_list, stderr_logger
from cli.encoder_options import ENCODER_NAMES, encoder_kwargs, encoder_options


@click.command("build-graph")
@click.argument("source", required=False)
@click.option("-o", "--output", required=True, type=click.Path(), help="Store folder to write (created atomically).")
@click.option("--encoder", type=click.Choice(ENCODER_NAMES), default=None,
              help="Encoder to train [cnn with resnet18 when the source has class labels, else pixels; with --model: the file's].")
@click.option("--model", type=click.Path(), default=None, help="A saved encoder file to use instead of training.")
@encoder_options
@click.option("--k", "k", type=int, default=10, show_default=True, help="Neighbours per image in the kNN graph.")
@click.option("--knn", type=click.Choice(["exact", "approx"]), default="exact", show_default=True)
@click.option("--symmetrize", type=click.Choice(["union", "mutual"]), default="union", show_default=True)
@click.option("--communities", "communities", default="cnm,leiden", show_default=True, help="Comma list of methods: cnm, leiden.")
@click.option("--quality", type=click.Choice(["newman", "haq"]), default="newman", show_default=True, help="CNM's quality function.")
@click.option("--resolution", type=float, default=1.0, show_default=True)
@click.option("--heuristic", type=click.Choice(["none", "size", "degree"]), default="none", show_default=True,
              help="CNM merge heuristic: size = Wakita-Tsurumi consolidation (prefer merges of similar size).")
@click.option("--refine", type=click.Choice(["none", "moves", "multilevel"]), default="none", show_default=True,
              help="Refine CNM's best partition by node moves (multilevel: also from singletons); same quality function.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-split", is_flag=True, help="Keep every image in one archive (no seeded 70/30 split).")
@click.option("--on-corrupt", type=click.Choice(["skip", "error"]), default="skip", show_default=True)
@click.option("--path-column", default=None, help="CSV source: the image path column (default: auto).")
@click.option("--label-columns", default=None, help="CSV source: comma list of label columns (default: the rest).")
@click.option("--split-column", default=None, help="CSV source: a column of train/val/test.")
@click.option("--id-column", default=None, help="CSV source: a column of item ids.")
@click.option("--uncertain", type=click.Choice(["ignore", "ones", "zeros"]), default="ignore", show_default=True,
              help="CSV source, CheXpert convention: what -1 (uncertain) becomes (ignore = masked).")
@click.option("--blank", type=click.Choice(["zeros", "ignore"]), default="zeros", show_default=True,
              help="CSV source, CheXpert convention: what a blank (unmentioned) label becomes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store at --output.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def build_graph_command(source, output, encoder, model, k, knn, symmetrize, communities, quality,
                        resolution, heuristic, refine, seed, no_split, on_corrupt, path_column, label_columns, split_column, id_column,
                        uncertain, blank, overwrite, quiet, **values) -> None:
    """Build a graph store from SOURCE (default: the embedded demo set).

    SOURCE is a MedMNIST-style .npz, a folder of class sub-folders, a CSV manifest,
    `demo`, or `medmnist:NAME` (downloaded once into a cache).
    """
    from graphret.pipeline import BuildConfig, build_graph

    checkpoint = str(Path(output).with_name(Path(output).name + ".encoder.ckpt"))
    options = encoder_kwargs(encoder or "cnn", values, checkpoint_default=checkpoint, progress=not quiet)
    csv_options = {"uncertain": uncertain, "blank": blank}
    for key, value in (("path_column", path_column), ("split_column", split_column), ("id_column", id_column)):
        if value is not None:
            csv_options[key] = value
    if label_columns is not None:
        csv_options["label_columns"] = split_list(label_columns)
    config = BuildConfig(
        source=source,
        output=output,
        encoder=encoder,
        encoder_options=options,
        model=model,
        k=k,
        knn=knn,
        symmetrize=symmetrize,
        communities=tuple(split_list(communities) or ()),
        quality=quality,
        resolution=resolution,
        cnm_heuristic=None if heuristic == "none" else heuristic,
        cnm_refine=None if refine == "none" else refine,
        seed=seed,
        split=not no_split,
        on_corrupt=on_corrupt,
        csv_options=csv_options,
        overwrite=overwrite,
    )
    manifest = build_graph(config, log=stderr_logger(quiet))
    if values.get("checkpoint") is None:  # the default checkpoint only serves an interrupted run
        Path(checkpoint).unlink(missing_ok=True)
    summary = {
        "store": output,
        "items": manifest["counts"]["items"],
        "edges": manifest["counts"]["edges"],
        "communities": {m: info["n_communities"] for m, info in manifest["communities"].items()},
        "seconds": manifest["build"]["seconds"]["total"],
        "peak_rss_mib": manifest["build"]["peak_rss_mib"],
    }
    click.echo(json.dumps(summary))
