"""User-facing errors: one line that says what is wrong and what to do.

The CLI turns a ``ZsadError`` into that line on stderr and exit code 2; anything else is a bug.
"""

from __future__ import annotations

__all__ = ["ZsadError"]


class ZsadError(Exception):
    """Bad input or a missing resource, explained in one line for the user."""

    exit_code = 2
