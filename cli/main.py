"""`graphret`: the command group.  A GraphretError becomes one line on stderr and exit 1 (a
ParameterError, options that do not go together, a usage error and exit 2), its parameters
spelled as the invoked command's flags."""

from __future__ import annotations

import signal
import sys

import click

from graphret import __version__
from graphret.errors import GraphretError, ParameterError

from .common import flag_speller


class GraphretGroup(click.Group):
    """A click group that reports user mistakes as one line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraphretError as error:
            command = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            message = error.render(flag_speller(command))
            if isinstance(error, ParameterError):
                raise click.UsageError(message, ctx=ctx) from None
            raise click.ClickException(message) from None
        except KeyboardInterrupt:
            click.echo("interrupted; the store is at its last committed version", err=True)
            sys.exit(130)


@click.group(cls=GraphretGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphret")
def main() -> None:
    """graphret: graph-analytics retrieval for medical images.

    Build a store with `graphret build-graph`, then search it with `graphret query`.
    """


def _register() -> None:
    from .add import add_command
    from .bench import bench_command
    from .build import build_graph_command
    from .communities import communities_command
    from .maintain import (
        compact_command,
        upgrade_command,
        vacuum_command,
        verify_command,
        versions_command,
    )
    from .query import query_command
    from .serve import serve_command
    from .train import train_command

    for command in (build_graph_command, query_command, train_command, add_command, communities_command, bench_command,
                    verify_command, compact_command, vacuum_command, upgrade_command, versions_command, serve_command):
        main.add_command(command)


def _terminate(signum, frame) -> None:
    """SIGTERM ends a run the way Ctrl-C does: what was being written is discarded."""
    raise KeyboardInterrupt


def run() -> None:
    """The `graphret` command (the console script): SIGTERM handled like SIGINT."""
    signal.signal(signal.SIGTERM, _terminate)
    main()


_register()

if __name__ == "__main__":
    run()
