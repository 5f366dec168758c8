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


#: (module, command object) of every subcommand.
COMMANDS = (
    ("cli.build", "build_graph_command"),
    ("cli.query", "query_command"),
    ("cli.train", "train_command"),
    ("cli.add", "add_command"),
    ("cli.communities", "communities_command"),
    ("cli.bench", "bench_command"),
)


def _register() -> None:
    import importlib

    for module_name, attribute in COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:  # a command not written yet
                continue
            raise
        main.add_command(getattr(module, attribute))


_register()

if __name__ == "__main__":
    main()
