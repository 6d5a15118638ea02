"""Exit statuses of the ``kryon`` command (BSD's sysexits), and the error a
command raises for a user's mistake that is not a script's.

=====  ===============  ==================================================
 0     ok
 64    EX_USAGE         the command line is wrong (unknown option, missing
                        ``--lang`` for ``run -``, ``--call`` of no function)
 65    EX_DATAERR       a script does not compile; ``app.json`` is invalid
 66    EX_NOINPUT       a file or directory given does not exist / cannot
                        be read, or a directory holds no ``app.json``
 69    EX_UNAVAILABLE   no engine for the language (or none known for the
                        extension), a missing optional dependency, a busy port
 70    EX_SOFTWARE      a script failed while running (limits included)
 130                    interrupted (Ctrl-C)
=====  ===============  ==================================================
"""

from __future__ import annotations

from ..errors import CompileError, EngineNotFoundError, ScriptError

__all__ = [
    "OK", "USAGE", "DATAERR", "NOINPUT", "UNAVAILABLE", "SOFTWARE", "INTERRUPTED",
    "CommandError", "status_for",
]

OK = 0
USAGE = 64
DATAERR = 65
NOINPUT = 66
UNAVAILABLE = 69
SOFTWARE = 70
INTERRUPTED = 130


class CommandError(Exception):
    """A mistake in how the command was used (not in a script): a message
    for the user and the exit status it ends with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def status_for(exc: BaseException) -> int:
    """The exit status a failure ends the command with."""
    if isinstance(exc, CommandError):
        return exc.status
    if isinstance(exc, CompileError):
        return DATAERR
    if isinstance(exc, EngineNotFoundError):
        return UNAVAILABLE
    if isinstance(exc, ScriptError):
        return SOFTWARE
    return SOFTWARE
