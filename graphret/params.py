"""Declarative parameters: typed, frozen config dataclasses whose fields carry their own help,
bounds and choices, so that one definition gives the Python signature, the validation, the
manifest record and the command line's options (``graphret.cli.options`` reads them).

A field is declared with :func:`param`::

    @dataclass(frozen=True)
    class GraphConfig:
        k: int = param(10, help="Neighbours per image in the kNN graph.", min=1)
        knn: Literal["exact", "approx"] = param("exact", help="How the kNN lists are found.")

Choices come from a ``Literal`` annotation; ``min``/``max`` bound numbers; ``applies_to`` names
the values of a sibling selector field (``selector``, e.g. the encoder's ``name``) for which the
field means something.  :func:`validate` checks every field and raises one
:class:`~graphret.errors.InputError` naming the parameter (scikit-learn's declarative
``_parameter_constraints`` in spirit).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from graphret.errors import InputError, ParameterError

__all__ = ["param", "validate", "fields_of", "choices_of", "flat_options", "nested_update", "record", "owner_of",
           "default_of", "keyword_options"]

_UNSET = object()


def param(
    default: Any = _UNSET,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    option: str | None = None,
    flag: str | None = None,
    applies_to: tuple[str, ...] | None = None,
    cli: bool = True,
    label: str | None = None,
    repeat: bool = False,
    default_factory: Any = _UNSET,
) -> Any:
    """A dataclass field with its documentation and constraints.

    ``option``: the field's flat name where it differs from the attribute (the name Python
    callers and error messages use, e.g. ``communities`` for ``CommunityConfig.methods``);
    ``flag``: the command-line flag where it is not ``--`` + the option name; ``applies_to``:
    the selector values the field applies to; ``cli``: False to keep it off the command line;
    ``label``: how messages name the value (e.g. ``K``; default: the parameter); ``repeat``: a
    tuple field the command line takes once per value (``--where A --where B``) rather than as
    a comma list (for values that may hold commas).
    """
    metadata = {"help": help, "min": min, "max": max, "option": option, "flag": flag,
                "applies_to": applies_to, "cli": cli, "label": label, "repeat": repeat}
    if default_factory is not _UNSET:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    if default is _UNSET:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields_of(config_type: type) -> tuple[dataclasses.Field, ...]:
    return dataclasses.fields(config_type)


def option_name(field: dataclasses.Field) -> str:
    """The field's flat (Python keyword and error-message) name."""
    return field.metadata.get("option") or field.name


@functools.cache
def _hints(config_type: type) -> dict[str, Any]:
    """The config's resolved annotations (once per class: a search builds its config per call)."""
    return typing.get_type_hints(config_type)


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
        if len(args) < len(get_args(annotation)):  # e.g. str | int | None
            return Union[tuple(args)], True
    return annotation, False


def choices_of(config_type: type, name: str) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal``-typed field (None when it is not one)."""
    annotation, _ = _strip_optional(_hints(config_type)[name])
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return None


def base_type(config_type: type, name: str) -> tuple[Any, bool]:
    """(the field's type without Optional, whether None is allowed)."""
    return _strip_optional(_hints(config_type)[name])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@functools.cache
def _plan(config_type: type) -> tuple[tuple[dataclasses.Field, str, Any, bool, tuple[Any, ...] | None], ...]:
    """(field, option name, type, whether None is allowed, choices) per field: what
    :func:`validate` checks, worked out once per config class."""
    return tuple((field, option_name(field), *base_type(config_type, field.name), choices_of(config_type, field.name))
                 for field in fields_of(config_type))


def validate(config: Any, *, selector: str | None = None, noun: str = "", selected: Any = _UNSET) -> None:
    """Check every field of ``config`` against its type, choices, bounds and ``applies_to``
    (against the value of the ``selector`` field, a kind of ``noun``, or ``selected`` when given:
    what ``applies_to`` names, where the selector's value says more, as ``onnx:model.onnx``
    does); one InputError naming the parameter (:class:`~graphret.errors.ParameterError` for a
    field that does not apply)."""
    chosen = selected if selected is not _UNSET else getattr(config, selector) if selector else None
    plan = _plan(type(config))
    chooser = next(name for field, name, *_ in plan if field.name == selector) if selector else ""
    for field, name, kind, optional, choices in plan:
        value = getattr(config, field.name)
        if value is None:
            if not optional:
                raise InputError(f"{{{name}}} needs a value", param=name)
            continue
        applies = field.metadata.get("applies_to")
        if applies and chosen is not None and chosen not in applies:
            where = applies[0] if len(applies) == 1 else ", ".join(applies[:-1]) + " and " + applies[-1]
            what = noun if len(applies) == 1 else noun + "s"
            fix = f" or use {{{chooser}={applies[0]}}}" if len(applies) == 1 else ""
            raise ParameterError(f"{{{name}}} applies to the {where} {what} only; leave it out{fix}", param=name)
        if choices is not None:
            if value not in choices:
                raise InputError(f"unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}", param=name)
            continue
        if kind is bool and not isinstance(value, bool):
            raise InputError(f"{{{name}}} must be True or False, got {value!r}", param=name)
        if kind is int and not (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
            raise InputError(f"{{{name}}} must be a whole number, got {value!r}", param=name)
        if kind is float and not _is_number(value):
            raise InputError(f"{{{name}}} must be a number, got {value!r}", param=name)
        low, high = field.metadata.get("min"), field.metadata.get("max")
        label = field.metadata.get("label") or f"{{{name}}}"
        if _is_number(value):
            if value != value or value in (float("inf"), float("-inf")):
                raise InputError(f"{label} must be a finite number, got {value!r}", param=name)
            if low is not None and value < low:
                raise InputError(f"{label} must be at least {low:g}, got {value!r}; use e.g. {{{name}={_example(field)}}}", param=name)
            if high is not None and value > high:
                raise InputError(f"{label} must be at most {high:g}, got {value!r}", param=name)


def _example(field: dataclasses.Field) -> str:
    default = field.default
    if default is not dataclasses.MISSING and default is not None:
        return f"{default:g}" if isinstance(default, float) else str(default)
    return f"{field.metadata.get('min'):g}"


def flat_options(config_type: type) -> dict[str, tuple[tuple[str, ...], dataclasses.Field]]:
    """Flat option name -> (path of attribute names, field) over a config and its nested
    config fields; flat names are unique by construction (a clash is a programming error)."""
    out: dict[str, tuple[tuple[str, ...], dataclasses.Field]] = {}
    for field in fields_of(config_type):
        kind, _ = base_type(config_type, field.name)
        if dataclasses.is_dataclass(kind):
            for name, (path, inner) in flat_options(kind).items():
                if name in out:
                    raise TypeError(f"option {name!r} defined twice in {config_type.__name__}")
                out[name] = ((field.name,) + path, inner)
        else:
            name = option_name(field)
            if name in out:
                raise TypeError(f"option {name!r} defined twice in {config_type.__name__}")
            out[name] = ((field.name,), field)
    return out


def owner_of(config_type: type, path: tuple[str, ...]) -> type:
    """The (nested) config type that holds the field at ``path`` (see :func:`flat_options`)."""
    owner = config_type
    for attr in path[:-1]:
        owner, _ = base_type(owner, attr)
    return owner


def default_of(field: dataclasses.Field) -> Any:
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]


def keyword_options(config_type: type) -> Any:
    """Decorate a function that takes a config's flat options as ``**options`` so that its
    signature (``help()``, ``inspect.signature``, completion) lists each of them as a keyword
    with its type and default, generated from ``config_type`` (one home for them)."""
    def decorate(function: Any) -> Any:
        signature = inspect.signature(function)
        kept = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in kept}
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default_of(field),
                                   annotation=_hints(owner_of(config_type, path))[field.name])
                 for name, (path, field) in flat_options(config_type).items() if name not in taken]
        function.__signature__ = signature.replace(parameters=kept + added)
        return function

    return decorate


def nested_update(config: Any, options: dict[str, Any]) -> Any:
    """A copy of ``config`` with flat ``options`` (see :func:`flat_options`) set where they
    belong; an unknown name is an InputError listing the known ones."""
    known = flat_options(type(config))
    unknown = [name for name in options if name not in known]
    if unknown:
        raise InputError(f"unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}", param=unknown[0])
    grouped: dict[tuple[str, ...], dict[str, Any]] = {}
    for name, value in options.items():
        path, field = known[name]
        grouped.setdefault(path[:-1], {})[path[-1]] = value
    return _apply(config, (), grouped)


def _apply(config: Any, prefix: tuple[str, ...], grouped: dict[tuple[str, ...], dict[str, Any]]) -> Any:
    changes = dict(grouped.get(prefix, {}))
    for field in fields_of(type(config)):
        inner = getattr(config, field.name)
        if dataclasses.is_dataclass(inner) and any(p[: len(prefix) + 1] == prefix + (field.name,) for p in grouped):
            changes[field.name] = _apply(inner, prefix + (field.name,), grouped)
    return dataclasses.replace(config, **changes) if changes else config


def record(config: Any) -> dict[str, Any]:
    """The config as JSON-able nested dicts (tuples as lists), for the manifest."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in fields_of(type(value))}
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value

    return plain(config)
