"""`graphret serve`: the retrieval service and web page over one store (a thin wrapper of
:func:`graphret.serve.serve`)."""

from __future__ import annotations

import click

from graphret.serve.config import TOKEN_ENV, ServeConfig

from .options import config_options


@click.command("serve")
@click.argument("store", type=click.Path())
@config_options(ServeConfig)
@click.option("--write-token", "write_token", envvar=TOKEN_ENV, default=None, show_envvar=True,
              help="Token that add requests must send (Authorization: Bearer TOKEN); without it the server is read-only.")
def serve_command(store, write_token, **options) -> None:
    """Serve STORE: an HTTP JSON API (schema at /openapi.json) and a web page at /.

    Safe by default: it listens on 127.0.0.1 only, is read-only unless a write token is given
    (--write-token or the environment variable), bounds uploads, and answers errors as JSON."""
    from graphret.serve.run import serve

    config = ServeConfig.from_options(write_token=write_token, **options)
    serve(store, config, log=lambda line: click.echo(line, err=True))
