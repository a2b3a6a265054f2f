"""The store: one TinyDB file (JSON Lines operation log) with tables events, rules, sessions.

See `inspector.store.log` for the file format, `AppendLogStorage` / `AppendLogTable` for the
TinyDB integration, and `Store` for the API the proxy, TUI and CLI use.
"""

from inspector.store.check import StoreReport, check_store, repair_store
from inspector.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StorePathError,
    StoreReadOnlyError,
)
from inspector.store.paths import check_store_path
from inspector.store.storage import AppendLogStorage
from inspector.store.store import RULE_ACTIONS, RULE_KINDS, TABLES, Store, default_store_path, open_recording
from inspector.store.table import AppendLogTable, StoreDB

__all__ = [
    "RULE_ACTIONS",
    "RULE_KINDS",
    "TABLES",
    "AppendLogStorage",
    "AppendLogTable",
    "Store",
    "StoreCorruptError",
    "StoreDB",
    "StoreError",
    "StoreLockedError",
    "StorePathError",
    "StoreReadOnlyError",
    "StoreReport",
    "check_store",
    "check_store_path",
    "default_store_path",
    "open_recording",
    "repair_store",
]
