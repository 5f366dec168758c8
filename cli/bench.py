"""`graphret bench`: every query mode on a store's split, side by side in one run."""

from __future__ import annotations

import click


@click.command("bench")
@click.argument("store", type=click.Path())
@click.option("--split", default="test", show_default=True, help="The split whose items are the queries.")
@click.option("--k", "k", type=int, default=50, show_default=True, help="K of P@K, mAP@K, nDCG@K, ACG@K and recall@K.")
@click.option("--modes", default="region,probe,class,flat", show_default=True,
              help="Comma list of region, probe, class, flat; region runs once per stored community method "
              "(region:cnm / region:leiden pick one, probe:leiden switches probe's).")
@click.option("--relevance", "relevance_rule", type=click.Choice(["exact", "any"]), default="exact", show_default=True,
              help="Multi-label relevance: exact label-set match, or any shared positive label (multi-class: same class).")
@click.option("--duplicates", type=click.Choice(["keep", "drop"]), default="keep", show_default=True,
              help="Archive items whose code is identical to the query's: keep them retrievable (and count them) or drop them.")
@click.option("--queries", "n_queries", type=int, default=None, help="Use a seeded sample of N queries (default: the whole split).")
@click.option("--single", "n_single", type=int, default=100, show_default=True, help="Queries timed one at a time (latency p50/p95).")
@click.option("--probe", "n_probe", type=int, default=4, show_default=True, help="Communities probe mode searches (P).")
@click.option("--ordinal/--no-ordinal", default=None, help="Treat classes as ordinal grades for graded nDCG (default: when the class names are 0..G-1, G >= 3).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(), default=None, help="Write bench.json (with the store's manifest), bench.md and PNG plots here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def bench_command(store, split, k, modes, relevance_rule, duplicates, n_queries, n_single, n_probe, ordinal, seed, out, fmt, quiet) -> None:
    """Run the --split items as queries against STORE's archive in every mode (region with each
    stored community method, probe, class, flat) on the same codes, and print quality and cost."""
    from cli.common import stderr_logger
    from graphret.errors import InputError
    from graphret.evaluation import run_bench, to_json, write_report
    from graphret.evaluation.report import check_out_dir, header_lines, text_table
    from graphret.store import open_store

    if k < 1:
        raise InputError(f"K must be at least 1, got {k} (use e.g. --k 50)")
    if n_probe < 1:
        raise InputError(f"--probe must be at least 1, got {n_probe}")
    if out is not None:
        check_out_dir(out)  # fail before the run, not after it
    graph_store = open_store(store)
    result = run_bench(graph_store, split=split, modes=modes, k=k, relevance_rule=relevance_rule, duplicates=duplicates,
                       n_queries=n_queries, seed=seed, n_single=n_single, n_probe=n_probe, ordinal=ordinal,
                       log=stderr_logger(quiet))
    if fmt == "json":
        click.echo(to_json(result), nl=False)
    else:
        click.echo("\n".join(header_lines(result)))
        click.echo("")
        click.echo(text_table(result))
    if out is not None:
        paths = write_report(result, out)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)
