"""The error type of the command line."""


class CommandError(Exception):
    """An error the user can fix; printed as one line, exit status 2."""
