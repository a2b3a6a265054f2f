"""The capture adapters' error (its own module: every reader raises it, and the loader imports the readers)."""

from __future__ import annotations


class CaptureError(Exception):
    """An unreadable capture: one line for the user."""
