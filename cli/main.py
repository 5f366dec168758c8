"""`graphret`: the command group.  A GraphretError becomes one line on stderr and exit 1."""

from __future__ import annotations

import sys

import click

from graphret import __version__
from graphret.errors import GraphretError, python_spelling


class GraphretGroup(click.Group):
    """A click group that reports user mistakes as one line, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GraphretError as error:
            command = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            raise click.ClickException(error.render(flag_speller(command))) from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
            sys.exit(130)


def flag_speller(command: click.Command | None):
    """How a library error's parameters read on this command's line: ``k`` -> ``--k`` and
    ``k=50`` -> ``--k 50`` for the command's options (a flag for a boolean option); a
    parameter the command has no option for keeps its Python spelling."""
    flags: dict[str, tuple[str, bool]] = {}
    for param in getattr(command, "params", []):
        if isinstance(param, click.Option) and param.name:
            longest = max(param.opts, key=len)
            flags[param.name] = (longest, bool(param.is_flag))
        elif isinstance(param, click.Argument) and param.name:
            flags[param.name] = (param.human_readable_name, False)

    def spell(name: str, value: str | None) -> str:
        if name not in flags:
            return python_spelling(name, value)
        flag, is_flag = flags[name]
        if value is None or is_flag:
            return flag
        return f"{flag} {value}"

    return spell


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
