"""Reading a file a user named (capture, policy, key): regular files only, never blocking, bounded.

A FIFO named `policy.yaml` would block `open()` until a writer appears (forever), and a
device such as /dev/zero never ends: both are refused before anything is read. The file is
opened with O_NONBLOCK, so opening a FIFO returns at once, and then checked with fstat — the
check is on what was opened, not on a name that may have been swapped meanwhile.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class NotARegularFile(OSError):
    """The path names a FIFO, a device, a socket or a directory. `strerror` says which."""

    def __init__(self, path: Path | str, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", str(path))
        self.kind = kind


class FileTooLarge(OSError):
    """The file is larger than the caller's limit. `strerror` gives both sizes."""

    def __init__(self, path: Path | str, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"{size} bytes, larger than the limit of {limit} bytes", str(path))
        self.size = size
        self.limit = limit


def kind_of(mode: int) -> str:
    """What a file of this `st_mode` is, in words."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def open_regular(path: Path | str) -> BinaryIO:
    """Open `path` for binary reading; raises NotARegularFile (an OSError) unless it is a regular file."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, kind_of(mode))
        os.set_blocking(fd, True)  # no meaning for a regular file; restores ordinary reads
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of a regular file; FileTooLarge past `limit` (without reading more than limit + 1)."""
    with open_regular(path) as handle:
        if limit is None:
            return handle.read()
        data = handle.read(limit + 1)
        if len(data) > limit:
            size = os.fstat(handle.fileno()).st_size
            raise FileTooLarge(path, max(size, len(data)), limit)
        return data


def is_regular(path: Path | str) -> bool:
    """True when `path` (followed if a symlink) is a regular file; never opens it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


__all__ = ["FileTooLarge", "NotARegularFile", "is_regular", "kind_of", "open_regular", "read_regular"]
