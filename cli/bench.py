"""`graphret bench`: every query mode on a store's split, side by side in one run."""

from __future__ import annotations

import click

from graphret.evaluation.bench import BenchConfig

from graphret.errors import GraphretError

from .common import flag_speller, stderr_logger
from .options import config_options


@click.command("bench")
@click.argument("store", type=click.Path())
@config_options(BenchConfig)
@click.option("--version", "version", type=int, default=None, help="Read this version of the store [the newest].")
@click.option("--out", type=click.Path(), default=None, help="Write bench.json (with the store's manifest), bench.md and PNG plots here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
def bench_command(store, version, out, fmt, quiet, **options) -> None:
    """Run the --split items as queries against STORE's archive in every mode (region with each
    stored community method, probe, class, flat) on the same codes, and print quality and cost."""
    from graphret.evaluation import run_bench, to_json, write_report
    from graphret.evaluation.report import check_out_dir, header_lines, text_table
    from graphret.store import open_store

    config = BenchConfig(**options)
    if out is not None:
        check_out_dir(out)  # fail before the run, not after it
    result = run_bench(open_store(store, version=version), config, log=stderr_logger(quiet))
    spell = flag_speller(click.get_current_context().command)
    for skipped in result.skipped:  # the reasons as this command's flags say them
        skipped["reason"] = GraphretError(skipped["template"]).render(spell)
    if fmt == "json":
        click.echo(to_json(result), nl=False)
    else:
        click.echo("\n".join(header_lines(result)))
        click.echo("")
        click.echo(text_table(result))
    if out is not None:
        paths = write_report(result, out)
        click.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)
