"""Store paths: only a regular file, reached without a symbolic link at the end.

Following a symlinked store would chmod its target to 0600 and, on compaction or repair,
replace the link by a regular file (``os.replace`` renames over the link, not the target).
Refusing it with one clear line is simpler and safer than getting every path right. A FIFO
or a device is refused before it is opened: opening either can block or have side effects.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

from inspector.store.errors import StorePathError

# O_NONBLOCK: opening a FIFO that appeared after the lstat check must not wait for a writer
OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def symlink_error(path: Path | str) -> StorePathError:
    """The one line for a store path that is a symbolic link."""
    try:
        where = f" (it points to {os.readlink(path)})"
    except OSError:
        where = ""
    return StorePathError(f"store {path} is a symbolic link{where}; give the real path")


def check_store_path(path: Path | str) -> os.stat_result | None:
    """lstat `path`: None if nothing is there; StorePathError if it is a symbolic link or anything
    but a regular file (a FIFO, a device, a directory, a socket)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorePathError(f"cannot read store {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_error(path)
    if not stat.S_ISREG(st.st_mode):
        raise StorePathError(f"store {path} is {_kind(st.st_mode)}, not a regular file")
    return st


def open_store_file(path: Path | str, flags: int, mode: int = 0o600) -> int:
    """os.open without following a final symbolic link and without blocking on a FIFO; the
    descriptor of a regular file (StorePathError otherwise). OSError is left to the caller."""
    check_store_path(path)
    try:
        fd = os.open(path, flags | OPEN_FLAGS, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):  # made a link since the lstat
            raise symlink_error(path) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced since the lstat
            raise StorePathError(f"store {path} is {_kind(st.st_mode)}, not a regular file")
        # O_NONBLOCK means nothing for a regular file; cleared so that no reader is surprised
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd


def refuse_link(path: Path) -> None:
    """Before renaming a file over `path`: StorePathError if `path` is now a symbolic link."""
    if os.path.islink(path):
        raise symlink_error(path)
