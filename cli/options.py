"""Command-line options generated from the library's typed configs, so each option's name,
type, choices, default and help are written once, on the config's field
(:func:`graphret.params.param`)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, get_origin

import click

from graphret.params import base_type, choices_of, default_of, flat_options, owner_of

__all__ = ["config_options", "flag_of", "given"]


def flag_of(name: str, field: dataclasses.Field) -> str:
    """The field's flag: its ``flag`` metadata, else ``--`` + its option name with dashes."""
    return field.metadata.get("flag") or "--" + name.replace("_", "-")


def _comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if value.strip().lower() == "none":
        return ()
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    if not items:
        raise click.BadParameter("give at least one name, or none")
    return items


def _option(name: str, owner: type, field: dataclasses.Field) -> Callable:
    kind, optional = base_type(owner, field.name)
    flag = flag_of(name, field)
    default = default_of(field)
    help_text = field.metadata["help"]
    if kind is bool:
        negative = "--no-" + flag[2:]
        if default is False and not optional:
            return click.option(flag, name, is_flag=True, default=False, help=help_text)
        return click.option(f"{flag}/{negative}", name, default=default, show_default=default is not None, help=help_text)
    choices = choices_of(owner, field.name)
    if choices is not None:
        return click.option(flag, name, type=click.Choice([str(c) for c in choices]), default=default,
                            show_default=default is not None, help=help_text)
    if get_origin(kind) is tuple and field.metadata.get("repeat"):
        return click.option(flag, name, multiple=True, help=help_text)
    if get_origin(kind) is tuple:
        shown = ",".join(default) if isinstance(default, tuple) else None
        return click.option(flag, name, default=shown, callback=_comma_list, show_default=bool(shown),
                            help=help_text + " (comma list)")
    click_type = {int: int, float: float, str: str}.get(kind, str)
    return click.option(flag, name, type=click_type, default=default, show_default=default is not None, help=help_text)


def config_options(config_type: type, *, exclude: tuple[str, ...] = ()) -> Callable:
    """Decorate a click command with an option per flat field of ``config_type`` (nested
    configs included) that is meant for the command line; the command receives them as keyword
    arguments named by the fields' option names."""
    fields = [(name, path, field) for name, (path, field) in flat_options(config_type).items()
              if field.metadata.get("cli", True) and name not in exclude]

    def decorate(command: Callable) -> Callable:
        for name, path, field in reversed(fields):
            command = _option(name, owner_of(config_type, path), field)(command)
        return command

    return decorate


def given(options: dict[str, Any], config_type: type) -> dict[str, Any]:
    """The options that belong to ``config_type`` (a command may take others too)."""
    names = set(flat_options(config_type))
    return {name: value for name, value in options.items() if name in names}
