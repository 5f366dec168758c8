"""Helpers shared by the commands: progress logging and comma-separated lists."""

from __future__ import annotations

import time

import click


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
