"""Store errors: every one carries a one-line message meant for the user."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors (I/O failures, bad files, misuse)."""


class StoreCorruptError(StoreError):
    """A record in the middle of the store file cannot be read."""


class StoreReadOnlyError(StoreError):
    """The store cannot be opened for writing: a read-only file system, or no permission."""


class StoreLockedError(StoreError):
    """Another process held the store's write lock for too long."""


class StorePathError(StoreError):
    """The store path is a symbolic link, a FIFO, a device or anything but a regular file."""


def repair_hint(path: object) -> str:
    return f"run `telemetry-inspector store repair --store {path}`"
