"""The scale a drain replaced, kept in the job history's SQLite file (table
``scale_memory``, schema step 4), so ``restore`` can put it back after a restart.

``ScaleMemory(history)`` works on an open :class:`~rpdash.store.history.HistoryStore`
(same file, connection, lock and one-line ``StoreError``), like ``AlertStore``. One row per
endpoint: saving again replaces it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rpdash.store.history import HistoryStore

__all__ = ["SavedScale", "ScaleMemory"]

_COLS = "endpoint_id, name, saved_at, workers_min, workers_max, idle_timeout, scaler_type, scaler_value"


@dataclass(frozen=True, slots=True)
class SavedScale:
    """An endpoint's scale as it was before a drain (None = the API did not say)."""

    endpoint_id: str
    name: str | None
    saved_at: float
    workers_min: int | None
    workers_max: int | None
    idle_timeout: int | None
    scaler_type: str | None
    scaler_value: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ScaleMemory:
    """Save, read and forget the scale a drain replaced, on top of an open history store."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history

    def save(self, scale: SavedScale) -> None:
        """Keep ``scale`` for its endpoint (committed before this returns)."""
        with self.history._write() as conn:
            conn.execute(f"INSERT OR REPLACE INTO scale_memory ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         tuple(asdict(scale).values()))  # fmt: skip

    def get(self, endpoint_id: str) -> SavedScale | None:
        if not self._ready():
            return None
        with self.history._read() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM scale_memory WHERE endpoint_id = ?",
                               (endpoint_id,)).fetchone()  # fmt: skip
        return SavedScale(*row) if row else None

    def forget(self, endpoint_id: str) -> None:
        with self.history._write() as conn:
            conn.execute("DELETE FROM scale_memory WHERE endpoint_id = ?", (endpoint_id,))

    def _ready(self) -> bool:
        """False for a read-only file written before step 4 (reads then find nothing)."""
        return self.history.has_table("scale_memory")
