"""Alert history, kept in the job history's SQLite file (table ``alerts``, schema step 3).

``AlertStore(history)`` works on an open :class:`~rpdash.store.history.HistoryStore`
(same file, connection, lock and one-line ``StoreError``), like ``MetricsStore``. It
appends the FIRED / RECOVERED events of :class:`rpdash.services.alerts.AlertEngine` (any
object with their attributes) and lists recent ones, newest first, for an alerts view.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from rpdash.store.history import HistoryStore

#: messages longer than this are cut when stored (they are one line by design)
MAX_MESSAGE = 500
_COLS = "rowid, at, endpoint_id, rule, kind, severity, message, since"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    at: float
    endpoint_id: str
    rule: str
    kind: str  # fired | recovered
    severity: str
    message: str
    since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AlertStore:
    """Append and read alert events on top of an open history store."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self._has_table = False

    def record(self, event: Any) -> None:
        """Store one event (``kind, endpoint_id, rule, severity, message, at, since``)."""
        self.record_many([event])

    def record_many(self, events: Iterable[Any]) -> None:
        rows = [(float(e.at), str(e.endpoint_id), str(e.rule), str(getattr(e.kind, "value", e.kind)),
                 str(e.severity), str(e.message)[:MAX_MESSAGE], getattr(e, "since", None))
                for e in events]  # fmt: skip
        if not rows:
            return
        with self.history._write() as conn:
            conn.executemany(
                "INSERT INTO alerts (at, endpoint_id, rule, kind, severity, message, since) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def recent(self, limit: int = 100, *, endpoint_id: str | None = None,
               since: float | None = None) -> list[AlertRecord]:  # fmt: skip
        """The newest ``limit`` events (of one endpoint, or all; at or after ``since``),
        newest first."""
        if limit <= 0 or not self._ready():
            return []
        where, params = "at >= ?", [float("-inf") if since is None else since]
        if endpoint_id is not None:
            where, params = "endpoint_id = ? AND " + where, [endpoint_id, *params]
        with self.history._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM alerts WHERE {where} ORDER BY at DESC, rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [AlertRecord(*r) for r in rows]

    def prune(self, older_than_s: float) -> int:
        """Delete events older than ``older_than_s`` seconds; returns how many."""
        cutoff = self.history._clock.time() - older_than_s
        with self.history._write() as conn:
            return conn.execute("DELETE FROM alerts WHERE at < ?", (cutoff,)).rowcount

    def _ready(self) -> bool:
        """False for a read-only file written before step 3 (reads then return nothing)."""
        self._has_table = self._has_table or self.history.has_table("alerts")
        return self._has_table
