"""The error types of the command line and the exit status of each.

Every error a user can fix derives from :class:`maskscope.errors.MaskscopeError`; the command
line catches that one class (in :func:`maskscope.cli.main.main`) and prints its message as one
line. Its exit status is the error's ``exit_status`` attribute: :data:`BAD_ARGUMENTS` (2, the
default: an argument, a file or a setting to correct), or 1 for an error class that declares
``exit_status = 1``: the arguments were fine but the run could not finish (e.g.
:class:`~maskscope.core.explanation.SaveError`, a full disk).
"""

from maskscope.errors import MaskscopeError

#: exit status of an error in the arguments (argparse's own)
BAD_ARGUMENTS = 2


class CommandError(MaskscopeError):
    """An error the user can fix on the command line; printed as one line, exit status 2."""


def exit_status(error: MaskscopeError) -> int:
    """The exit status of ``error``: its ``exit_status`` attribute, else :data:`BAD_ARGUMENTS`."""
    status = getattr(error, "exit_status", BAD_ARGUMENTS)
    return status if isinstance(status, int) and status > 0 else BAD_ARGUMENTS
