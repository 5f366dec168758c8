"""`graphret`: the command group.  A GraphretError becomes one line on stderr and exit 1 (a
ParameterError, options that do not go together, a usage error and exit 2), its parameters
spelled as the invoked command's flags."""

from __future__ import annotations

import importlib
import os
import signal
import sys

import click

from graphret import __version__
from graphret.errors import GraphretError, ParameterError

from .common import flag_speller

#: the exit status of a run ended by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
INTERRUPTED = 130


class GraphretGroup(click.Group):
    """A click group that reports user mistakes as one line, never a traceback, and imports a
    command's module only when that command is asked for (:data:`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            self.add_command(_load(name), name)
        return super().get_command(ctx, name)

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
            sys.exit(INTERRUPTED)


@click.group(cls=GraphretGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="graphret")
def main() -> None:
    """graphret: graph-analytics retrieval for medical images.

    Build a store with `graphret build-graph`, then search it with `graphret query`.
    """


#: command name -> "module:function", imported when the command runs (or help lists it), so
#: that `graphret query` does not import what `build-graph` needs (torch, pandas, the CNM kernels)
COMMANDS = {
    "build-graph": "build:build_graph_command",
    "query": "query:query_command",
    "train": "train:train_command",
    "add": "add:add_command",
    "communities": "communities:communities_command",
    "bench": "bench:bench_command",
    "verify": "maintain:verify_command",
    "compact": "maintain:compact_command",
    "vacuum": "maintain:vacuum_command",
    "upgrade": "maintain:upgrade_command",
    "versions": "maintain:versions_command",
    "serve": "serve:serve_command",
}


def _load(name: str) -> click.Command:
    module, attribute = COMMANDS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


def _terminate(signum, frame) -> None:
    """SIGTERM ends a run the way Ctrl-C does: what was being written is discarded."""
    raise KeyboardInterrupt


#: commands whose process, once they have returned with success and their output is flushed,
#: ends without the interpreter's teardown of every module it imported (after numba's import,
#: 0.1-0.2 s of CPU that a query from the command line need not wait for): a query keeps
#: nothing to finish (its file is written, synced and renamed before it returns), and no
#: thread of its own
ENDS_WITHOUT_TEARDOWN = frozenset({"query"})


def _invoked(argv: list[str]) -> str | None:
    """The command a command line names (the group takes no option with a value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _end(status: int) -> None:
    """End the process now with ``status``, its standard streams flushed (``os._exit``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def run() -> None:
    """The `graphret` command (the console script): SIGTERM handled like SIGINT.

    An interrupted run ends with status 130 through ``os._exit`` once its output is flushed:
    the interrupt has unwound every ``with`` and ``finally`` already, and Python's own exit
    would turn a KeyboardInterrupt that had passed through C-level code run by a library
    (``PyRun_*``) into death by SIGINT (status -2) despite the ``sys.exit(130)``.  A command of
    :data:`ENDS_WITHOUT_TEARDOWN` that succeeded ends the same way, with status 0."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        main()
    except SystemExit as stop:
        if stop.code == 0 and _invoked(sys.argv[1:]) in ENDS_WITHOUT_TEARDOWN:
            _end(0)
        if stop.code != INTERRUPTED:
            raise
        _end(INTERRUPTED)


if __name__ == "__main__":
    run()
