"""User-facing errors.

Every mistake a user can make (a bad path, an unknown id, K too large, a corrupt file) is raised
as :class:`GraphretError` with one line that names the problem and the fix.  The command line
prints that line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class GraphretError(Exception):
    """A user mistake or bad input, with a one-line message naming the problem and the fix."""

    exit_code = 2


class InputError(GraphretError):
    """Bad outside input: a file, folder, CSV, id, K or option."""


class StoreError(GraphretError):
    """A graph store that is missing, corrupt, or from an unsupported format version."""
