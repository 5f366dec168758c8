"""Why a file yields no image: :class:`Problem`, and the error it raises.

A source meets files it cannot use (a corrupt PNG, a truncated or undecodable DICOM file, an
object without pixels, a 4-D NIfTI volume, a manifest row naming a missing file).  With
``on_corrupt="skip"`` the file is skipped and counted under :attr:`Problem.kind`; with
``on_corrupt="error"`` the source stops with one line (:attr:`Problem.message`): what is wrong,
naming the file, then the fix, then the alternative ``{on_corrupt=skip}``.

A query image has no ``on_corrupt``: :meth:`Problem.query_error` is the same line without that
alternative.  Both are :class:`UnreadableFile` errors carrying the problem, so callers read
``error.problem.kind`` rather than the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphret.errors import InputError

__all__ = ["Problem", "UnreadableFile"]


@dataclass(frozen=True)
class Problem:
    """What is wrong with one file: ``kind`` (the key a source counts skips under), ``what``
    (the problem, naming the file) and ``fix`` (what the user can do, e.g. "replace the
    file")."""

    kind: str
    what: str
    fix: str

    @property
    def message(self) -> str:
        """The source's one line: the problem, the fix, or skip the file."""
        return f"{self.what}; {self.fix}, or use {{on_corrupt=skip}}"

    def error(self, *, skippable: bool = True, context: str = "") -> "UnreadableFile":
        """The error: under ``on_corrupt="error"`` (``skippable``) the line ends with the
        alternative ``{on_corrupt=skip}``; where skipping cannot help (a query image, an image
        that fails only when it is read) it ends with the fix alone.  ``context`` goes first."""
        return UnreadableFile(self, skippable=skippable, context=context)

    def query_error(self) -> "UnreadableFile":
        """The error for a query image (no skipping: the fix alone)."""
        return self.error(skippable=False, context="bad query image: ")


class UnreadableFile(InputError):
    """A file that yields no image; ``problem`` says why (see :class:`Problem`)."""

    def __init__(self, problem: Problem, *, skippable: bool = True, context: str = "") -> None:
        self.problem = problem
        if skippable:
            super().__init__(context + problem.message, param="on_corrupt")
        else:
            super().__init__(f"{context}{problem.what}; {problem.fix}", param=None)
