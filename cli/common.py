"""Helpers shared by the commands: progress logging and comma-separated lists."""

from __future__ import annotations

import time

import click

from graphret.errors import python_spelling


def stderr_logger(quiet: bool = False):
    """A log function printing timestamped progress lines to stderr."""
    start = time.perf_counter()

    def log(message: str) -> None:
        if not quiet:
            click.echo(f"[{time.perf_counter() - start:7.1f}s] {message}", err=True)

    return log


def split_list(value: str | None) -> list[str] | None:
    """'a,b' -> ['a', 'b']; None stays None."""
    if value is None:
        return None
    items = [part.strip() for part in value.split(",") if part.strip()]
    if not items:
        raise click.BadParameter("give at least one name")
    return items


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
