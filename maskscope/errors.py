"""The root of every error a user can fix.

Each error that a user can act on (a bad argument, an unreadable photo, a folder another run
owns, a checkpoint for another classifier) derives from :class:`MaskscopeError`. The command
line catches this one class and prints its message as one line; any other exception is a bug
and keeps its traceback. Errors about a value also derive from :class:`ValueError`, so code
that caught ``ValueError`` before keeps working.
"""

from __future__ import annotations


class MaskscopeError(Exception):
    """An error the user can fix; the message names the input and says what to do."""


class MaskscopeValueError(MaskscopeError, ValueError):
    """A user-fixable error about a value: an argument, a file's content, a setting."""


class MissingFileError(MaskscopeError, FileNotFoundError):
    """A file or folder the user named does not exist (a checkpoint, a groups file, a saved explanation)."""


class MissingPackageError(MaskscopeError, ImportError):
    """An optional package the work needs is not installed; the message names the extra that brings it."""
