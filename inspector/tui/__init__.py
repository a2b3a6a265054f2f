"""The Textual terminal UI (not core: imports textual)."""
