"""`graphret verify | compact | vacuum | upgrade | versions`: keep a store in shape."""

from __future__ import annotations

import json

import click


@click.command("verify")
@click.argument("store", type=click.Path())
@click.option("--version", type=int, default=None, help="Check this version [the newest].")
@click.option("--all", "all_versions", is_flag=True, help="Check every committed version.")
def verify_command(store, version, all_versions) -> None:
    """Check every file of STORE's newest version (or --version N, or --all) against its size and
    checksum, as Arrow data, and against the manifest; print what is wrong and exit 1 if anything is."""
    from graphret.store.maintain import verify

    problems = verify(store, version=version, all_versions=all_versions)
    for line in problems:
        click.echo(line, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{store}: ok")


@click.command("compact")
@click.argument("store", type=click.Path())
def compact_command(store) -> None:
    """Merge each table's fragments into one file, as a new version (old files stay until vacuum); a store
    written before format 3 also gets its prepared tables (what a query would build from the edges)."""
    from graphret.query.archive import prepared_tables
    from graphret.store.maintain import compact

    click.echo(json.dumps({"store": store, "version": compact(store, prepare=prepared_tables)}))


@click.command("vacuum")
@click.argument("store", type=click.Path())
@click.option("--keep", type=int, default=1, show_default=True, help="Newest versions kept whatever their age.")
@click.option("--grace", type=float, default=3600.0, show_default=True,
              help="Seconds a superseded version stays (a reader may still be reading it).")
def vacuum_command(store, keep, grace) -> None:
    """Remove old versions of STORE and the files no remaining version lists."""
    from graphret.store.maintain import vacuum

    click.echo(json.dumps({"store": store, **vacuum(store, keep=keep, grace=grace)}))


@click.command("upgrade")
@click.argument("store", type=click.Path())
def upgrade_command(store) -> None:
    """Rewrite a format 1 store (graphret 0.1) in the current format, in place."""
    from graphret.store.maintain import upgrade

    click.echo(json.dumps({"store": store, "version": upgrade(store)}))


@click.command("versions")
@click.argument("store", type=click.Path())
def versions_command(store) -> None:
    """List STORE's committed versions: number, operation, when, items, edges."""
    from graphret.store.maintain import history

    for row in history(store):
        click.echo(json.dumps(row))
