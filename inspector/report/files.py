"""Reports written to files: readable by their owner only (they hold captured, maybe personal, data)."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TextIO

PRIVATE_MODE = 0o600
ENCODING = {"encoding": "utf-8", "errors": "backslashreplace"}  # a lone surrogate is written as \udXXX


@contextmanager
def open_private(path: Path | str) -> Iterator[BinaryIO]:
    """`path` opened for writing from its start, with mode 0600, also when the file already existed."""
    # Created 0600 from the start (no window in which another user can open it); an existing
    # file keeps its mode through O_TRUNC, so it is narrowed with fchmod, but only a regular
    # file: `-o /dev/stdout` must not change a terminal's or a pipe's permissions.
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, PRIVATE_MODE)
        handle = os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def write_private(path: Path | str, text: str) -> None:
    """Write `text` (UTF-8) to `path` with mode 0600, also when the file already existed."""
    with open_private(path) as handle:
        handle.write(text.encode(**ENCODING))


class HeldReport:
    """A report written as it is made, held in a private temporary file (unlinked from the start,
    on disk, not in memory) until it is complete: a capture that turns out unreadable half-way
    leaves no half report behind, as when the report was made whole in memory."""

    BUFFER = 1 << 20

    def __init__(self) -> None:
        self._raw = tempfile.TemporaryFile(prefix="ti-report-")  # noqa: SIM115 - closed by close()
        self.text: TextIO = io.TextIOWrapper(self._raw, encoding=ENCODING["encoding"], errors=ENCODING["errors"],
                                             newline="", write_through=False)

    def __enter__(self) -> HeldReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.text.close()  # (closes the temporary file too: it is gone)

    def copy_to(self, path: Path | str) -> None:
        """The report into `path`, mode 0600 (see `open_private`)."""
        self.text.flush()
        self._raw.seek(0)
        with open_private(path) as handle:
            shutil.copyfileobj(self._raw, handle, self.BUFFER)

    def chunks(self) -> Iterator[str]:
        """The report as text, a block at a time (for a terminal or a pipe)."""
        self.text.flush()
        self.text.seek(0)
        while chunk := self.text.read(self.BUFFER):
            yield chunk


def write_held(make: Callable[[TextIO], None], path: Path | str | None,
               echo: Callable[[str], None]) -> None:
    """Have `make` write a report, then put it in `path` (mode 0600) or, without one, `echo` it a
    block at a time; nothing is written anywhere if `make` raises."""
    with HeldReport() as held:
        make(held.text)
        if path is not None:
            held.copy_to(path)
        else:
            for chunk in held.chunks():
                echo(chunk)
