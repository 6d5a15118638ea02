"""Reading script files a script or an app names: never more than the policy
lets a source be, and only regular files.

A sandboxed app's folder is as untrusted as its scripts: a sparse file of
8 GiB (no disk space) read whole took 8 GiB of host memory before the
``max_source_size`` check saw it, and a named pipe blocked the host forever
at ``open``. So a file is opened without blocking, must be a regular file, and
is read only up to the limit (plus what a byte-order mark and one more byte
take, so the exact check in ``ScriptManager`` still decides)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import ScriptError, SizeLimitError

#: a UTF-8 byte-order mark, which the source check strips before it counts
_BOM = 3


def read_source(path: "str | Path", limit: int | None, *, language: str | None = None,
                script: str | None = None, what: str = "source") -> bytes:
    """The bytes of the file at ``path``: SizeLimitError past ``limit`` bytes
    (None: no limit; ``what`` names the file in its message), ScriptError for
    anything but a regular file, OSError as ``open`` raises it."""
    nonblock = getattr(os, "O_NONBLOCK", 0)  # POSIX: opening a named pipe does not wait for a writer
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ScriptError(f"'{Path(path).name}' is not a regular file", language=language, script=script)
        if nonblock:
            os.set_blocking(fd, True)
        if limit is None:
            return f.read()
        data = f.read(limit + _BOM + 1)
    if len(data) > limit + _BOM:
        raise SizeLimitError(f"{what} is larger than the policy's max_source_size ({limit} bytes)",
                             language=language, script=script)
    return data
