"""Reports written to files: readable by their owner only (they hold captured, maybe personal, data)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_MODE = 0o600


def write_private(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path` with mode 0600, also when the file already existed."""
    # Created 0600 from the start (no window in which another user can open it); an existing
    # file keeps its mode through O_TRUNC, so it is narrowed with fchmod, but only a regular
    # file: `-o /dev/stdout` must not change a terminal's or a pipe's permissions.
    data = text.encode("utf-8", "backslashreplace")  # a lone surrogate is written as \udXXX
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_MODE)
        handle = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        handle.write(data)
