"""The SQLite job history (stdlib sqlite3, WAL, PRAGMA user_version migrations, file 0600)."""

from rpdash.store.history import HistoryStore, StoreError

__all__ = ["HistoryStore", "StoreError"]
