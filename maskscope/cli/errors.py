"""The error type of the command line."""

from maskscope.errors import MaskscopeError


class CommandError(MaskscopeError):
    """An error the user can fix on the command line; printed as one line, exit status 2."""
