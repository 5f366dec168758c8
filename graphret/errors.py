"""User-facing errors.

Every mistake a user can make (a bad path, an unknown id, K too large, a corrupt file) is raised
as :class:`GraphretError` with one line that names the problem and the fix.  The command line
prints that line and exits non-zero; it never shows a traceback for these.

A fix names the *parameter* to change, never a command-line flag, so the same error reads right
in Python and on the command line.  Messages write a parameter as ``{name}`` and a suggested
value as ``{name=value}``::

    raise InputError("K = 60 is larger than the archive (50 items); use {k=50} or less")

``str(error)`` renders the Python spelling (``use k=50 or less``); the command line renders the
same error with its own flags (``use --k 50 or less``) through :meth:`GraphretError.render`.
Callers never test message text: the attributes of the error (its class, ``param``, and
subclass fields such as :attr:`KTooLarge.available`) say what went wrong.
"""

from __future__ import annotations

import re
from typing import Callable

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:=([^{}]*))?\}")


def python_spelling(name: str, value: str | None) -> str:
    """How a parameter reads in Python: ``k`` or ``k=50``."""
    return name if value is None else f"{name}={value}"


class GraphretError(ValueError):
    """A user mistake or bad input, with a one-line message naming the problem and the fix (a
    ValueError: a value given to graphret -- an option, a path, a file's content -- is wrong, so
    ``except ValueError`` in a caller catches it).

    ``template`` may name parameters as ``{name}`` or ``{name=value}`` (see the module
    docstring); ``param`` is the parameter the error is about, when there is one."""

    exit_code = 2

    def __init__(self, template: str, *, param: str | None = None) -> None:
        self.template = template
        self.param = param
        super().__init__(self.render())

    def render(self, spell: Callable[[str, str | None], str] | None = None) -> str:
        """The message with each parameter written by ``spell(name, value)`` (default: the
        Python spelling)."""
        spell = spell or python_spelling
        return _PARAM.sub(lambda m: spell(m.group(1), m.group(2)), self.template)

    def params(self) -> list[str]:
        """The parameters the message names, in order."""
        return [m.group(1) for m in _PARAM.finditer(self.template)]


class InputError(GraphretError):
    """Bad outside input: a file, folder, CSV, id, K or option."""


class ParameterError(InputError):
    """Parameters that do not go together (an option that does not apply to the chosen
    encoder, mode...): a usage mistake rather than bad data."""


class StoreError(GraphretError):
    """A graph store that is missing, corrupt, or from an unsupported format version."""


class VersionRemoved(StoreError):
    """The version being read was removed (by a vacuum) while it was read: the store is sound,
    its newest version reads."""


class KTooLarge(InputError):
    """K asks for more results than there are items to return (``available`` of them)."""

    def __init__(self, template: str, *, available: int, param: str = "k") -> None:
        self.available = int(available)
        super().__init__(template, param=param)


class ModeUnavailable(InputError):
    """A query mode cannot answer on this store or these queries (no communities, no
    classifier, a class smaller than K...); ``mode`` names it."""

    def __init__(self, template: str, *, mode: str, param: str | None = "mode") -> None:
        self.mode = mode
        super().__init__(template, param=param)
