"""`graphret`: the command group.  A GraphretError becomes one line on stderr and exit 1."""

from __future__ import annotations

import sys

import click

from graphret import __version__
from graphret.errors import GraphretError


class GraphretGroup(click.Group):
    """A click group that reports user mistakes as one line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraphretError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
            sys.exit(130)


@click.group(cls=GraphretGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphret")
def main() -> None:
    """graphret: graph-analytics retrieval for medical images.

    Build a store with `graphret build-graph`, then search it with `graphret query`.
    """


def _register() -> None:
    from cli.build import build_graph_command
    from cli.query import query_command

    main.add_command(build_graph_command)
    main.add_command(query_command)
    try:
        from cli.train import train_command
    except ImportError:  # the train command arrives with the encoders
        return
    main.add_command(train_command)


_register()

if __name__ == "__main__":
    main()
