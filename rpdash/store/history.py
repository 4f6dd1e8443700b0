"""The job history: every job rpdash submitted or watched, its status changes, its output
and its stream chunks, in one SQLite file (stdlib ``sqlite3``).

The file itself (created private, WAL with synchronous=NORMAL, read-only fallback,
migrations, one short ``BEGIN IMMEDIATE`` transaction per write, one connection behind a
lock) is :mod:`rpdash.store.database`; :class:`HistoryStore` builds on it with what is
stored and how it is queried:

- **Each call is one short transaction.** ``record_submitted`` commits before it returns:
  a submitted job's id is never lost. ``update_many`` writes one poll's changes at once.
- **An update never loses what a caller did not know.** The upsert keeps the stored
  input, raw answer, worker, timings and a finished job's output when a later update
  lacks them; a status change is added to the status log.
- **Errors are StoreError** (importable from here) with one line saying what to do
  ("cannot write job history at PATH: disk is full"), never a traceback. A history opened
  read-only still answers every read; a file without the history tables reads as empty.

JSON is stored with ``ensure_ascii=True``: strings holding lone surrogates (which some
JSON decoders let through) are stored as ``\\udxxx`` escapes and come back unchanged.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.store.database import DEFAULT_BUSY_TIMEOUT_S, HistoryDatabase, StoreError
from rpdash.store.schema import ACTIVE_WHERE, TERMINAL_SQL

__all__ = ["HistoryStore", "StoreError"]

#: recent_inputs() looks at this many of the newest jobs at most.
RECENT_INPUTS_SCAN = 500

_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode


def _dumps(value: Any) -> str | None:
    return None if value is None else _encode(value)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:  # written by something else; show it as text rather than fail
        return text


_COLUMNS = (
    "job_id, endpoint_id, status, mode, input, submitted_at, updated_at, finished_at, "
    "delay_ms, execution_ms, retries, progress, output, error, worker_id, expired, "
    "chunk_count, extra"
)
_COLUMNS_LIGHT = _COLUMNS.replace("progress, output,", "NULL, NULL,")

# Upsert. Fields the caller may not know on a later update keep what is stored: input,
# raw, worker and timings (a 404 "expired" update knows none of them), the output of a
# finished job (a record loaded without outputs must not erase it; a retried job, back in
# the queue, does clear it). chunk_count only grows; on first insert it also counts chunks
# stored before the job row existed.
_UPSERT = f"""
INSERT INTO jobs (job_id, endpoint_id, status, mode, input, submitted_at, updated_at,
    finished_at, delay_ms, execution_ms, retries, progress, output, error, worker_id,
    expired, chunk_count, raw, extra)
VALUES (:job_id, :endpoint_id, :status, :mode, :input, :submitted_at, :updated_at,
    :finished_at, :delay_ms, :execution_ms, :retries, :progress, :output, :error,
    :worker_id, :expired,
    MAX(:chunk_count, (SELECT COALESCE(MAX(seq) + 1, 0) FROM chunks WHERE job_id = :job_id)),
    :raw, :extra)
ON CONFLICT(job_id) DO UPDATE SET
    endpoint_id = excluded.endpoint_id,
    status = excluded.status,
    mode = excluded.mode,
    input = COALESCE(excluded.input, jobs.input),
    updated_at = MAX(excluded.updated_at, jobs.updated_at),
    finished_at = CASE WHEN excluded.status IN {TERMINAL_SQL} OR excluded.expired
                       THEN COALESCE(excluded.finished_at, jobs.finished_at)
                       ELSE excluded.finished_at END,
    delay_ms = COALESCE(excluded.delay_ms, jobs.delay_ms),
    execution_ms = COALESCE(excluded.execution_ms, jobs.execution_ms),
    retries = MAX(excluded.retries, jobs.retries),
    progress = excluded.progress,
    output = CASE WHEN excluded.output IS NOT NULL THEN excluded.output
                  WHEN excluded.status IN ('IN_QUEUE', 'IN_PROGRESS') THEN NULL
                  ELSE jobs.output END,
    error = excluded.error,
    worker_id = COALESCE(excluded.worker_id, jobs.worker_id),
    expired = MAX(excluded.expired, jobs.expired),
    chunk_count = MAX(excluded.chunk_count, jobs.chunk_count),
    raw = COALESCE(excluded.raw, jobs.raw),
    extra = COALESCE(excluded.extra, jobs.extra)
"""

_PRUNABLE = f"(status IN {TERMINAL_SQL} OR expired = 1) AND COALESCE(finished_at, updated_at) < ?"


class HistoryStore(HistoryDatabase):
    """Job history in one SQLite file (``path``), or in memory when ``path`` is None.

    ``writable`` is False when the file could only be opened read-only; ``problem`` then
    holds the StoreError that says why (show it once), and every write raises it.
    With ``readonly_fallback=False`` such a file raises StoreError at once instead.
    Opening, closing and the transactions are :class:`HistoryDatabase`'s.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        clock: Clock | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        readonly_fallback: bool = True,
    ) -> None:
        self._clock: Clock = clock or RealClock()
        super().__init__(path, busy_timeout=busy_timeout, readonly_fallback=readonly_fallback)

    # ------------------------------------------------------------------ writes

    def record_submitted(self, rec: JobRecord) -> None:
        """Store a job rpdash just submitted; committed before this returns."""
        with self._write() as conn:
            self._upsert(conn, rec, None)

    def update(self, rec: JobRecord, raw: dict[str, Any] | None = None) -> None:
        """Insert or update ``rec`` (also for a job never seen before, e.g. ``:watch``);
        a status change is added to the status log. ``raw`` is the API's last answer."""
        with self._write() as conn:
            self._upsert(conn, rec, raw)

    def update_many(self, items: Iterable[tuple[JobRecord, dict[str, Any] | None]]) -> None:
        """``update`` for many jobs in one transaction (one poll's worth of changes)."""
        with self._write() as conn:
            for rec, raw in items:
                self._upsert(conn, rec, raw)

    def _upsert(self, conn: sqlite3.Connection, rec: JobRecord, raw: dict[str, Any] | None) -> None:
        now = self._clock.time()
        status = JobStatus.parse(rec.status).value
        updated_at = rec.updated_at or now
        finished_at = rec.finished_at
        if finished_at is None and (JobStatus.parse(rec.status).terminal or rec.expired):
            finished_at = updated_at
        row = conn.execute("SELECT status FROM jobs WHERE job_id = ?", (rec.job_id,)).fetchone()
        conn.execute(
            _UPSERT,
            {
                "job_id": rec.job_id,
                "endpoint_id": rec.endpoint_id,
                "status": status,
                "mode": rec.mode,
                "input": _dumps(rec.input),
                # A job first seen by :watch has no submit time: "first seen" stands in.
                "submitted_at": rec.submitted_at or updated_at,
                "updated_at": updated_at,
                "finished_at": finished_at,
                "delay_ms": rec.delay_ms,
                "execution_ms": rec.execution_ms,
                "retries": rec.retries or 0,
                "progress": _dumps(rec.progress),
                "output": _dumps(rec.output),
                "error": rec.error,
                "worker_id": rec.worker_id,
                "expired": 1 if rec.expired else 0,
                "chunk_count": rec.chunk_count or 0,
                "raw": _dumps(raw),
                "extra": _dumps(rec.extra) if rec.extra else None,
            },
        )
        if row is None or row[0] != status:
            conn.execute(
                "INSERT INTO status_log (job_id, at, status) VALUES (?, ?, ?)",
                (rec.job_id, now, status),
            )

    def append_chunks(self, job_id: str, seq: int, outputs: list[Any]) -> None:
        """Store stream outputs ``seq, seq+1, ...`` of a job. Idempotent: a chunk already
        stored under its seq is kept (a re-delivered batch changes nothing)."""
        if not outputs:
            return
        if seq < 0:
            raise ValueError("seq must be >= 0")
        rows = [(job_id, seq + i, _dumps(o)) for i, o in enumerate(outputs)]
        with self._write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO chunks (job_id, seq, output) VALUES (?, ?, ?)", rows
            )
            conn.execute(
                "UPDATE jobs SET chunk_count = MAX(chunk_count, ?) WHERE job_id = ?",
                (seq + len(outputs), job_id),
            )

    def prune(self, older_than_s: float) -> int:
        """Delete finished jobs (and their chunks and status log) that finished more than
        ``older_than_s`` seconds ago. Live jobs are never pruned. Returns how many."""
        cutoff = self._clock.time() - older_than_s
        ids = f"SELECT job_id FROM jobs WHERE {_PRUNABLE}"
        with self._write() as conn:
            conn.execute(f"DELETE FROM chunks WHERE job_id IN ({ids})", (cutoff,))
            conn.execute(f"DELETE FROM status_log WHERE job_id IN ({ids})", (cutoff,))
            cur = conn.execute(f"DELETE FROM jobs WHERE {_PRUNABLE}", (cutoff,))
            return cur.rowcount

    # ------------------------------------------------------------------ reads

    def get(self, job_id: str) -> JobRecord | None:
        if not self._has_schema:
            return None
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return _record(row) if row else None

    def raw(self, job_id: str) -> dict[str, Any] | None:
        """The last JSON answer the API gave about this job (for the raw view)."""
        if not self._has_schema:
            return None
        with self._read() as conn:
            row = conn.execute("SELECT raw FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _loads(row[0]) if row else None

    def recent(
        self, limit: int = 1000, endpoint_id: str | None = None, *, with_output: bool = True
    ) -> list[JobRecord]:
        """The newest ``limit`` jobs, newest first (by submit time), of one endpoint or all.

        ``with_output=False`` leaves ``output`` and ``progress`` out (None): cheaper when
        outputs are large and only the list is shown; ``get()`` has the whole record, and
        an ``update()`` of such a record does not erase the stored output.
        """
        if not self._has_schema:
            return []
        cols = _COLUMNS if with_output else _COLUMNS_LIGHT
        with self._read() as conn:
            if endpoint_id is None:
                rows = conn.execute(
                    f"SELECT {cols} FROM jobs ORDER BY submitted_at DESC, rowid DESC LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {cols} FROM jobs WHERE endpoint_id = ? "
                    "ORDER BY submitted_at DESC, rowid DESC LIMIT ?",
                    (endpoint_id, limit),
                ).fetchall()
        return [_record(r) for r in rows]

    def active(self) -> list[JobRecord]:
        """Jobs that may still change (not terminal, not expired), newest first."""
        if not self._has_schema:
            return []
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE {ACTIVE_WHERE} "
                "ORDER BY submitted_at DESC, rowid DESC"
            ).fetchall()
        return [_record(r) for r in rows]

    def status_log(self, job_id: str) -> list[tuple[float, str]]:
        """``(epoch seconds, status)`` for each status change rpdash saw, oldest first."""
        if not self._has_schema:
            return []
        with self._read() as conn:
            rows = conn.execute(
                "SELECT at, status FROM status_log WHERE job_id = ? ORDER BY at, rowid",
                (job_id,),
            ).fetchall()
        return [(float(at), str(st)) for at, st in rows]

    def chunks(self, job_id: str, start: int = 0, limit: int | None = None) -> list[Any]:
        """Stored stream outputs of a job from ``seq >= start``, in order."""
        if not self._has_schema:
            return []
        with self._read() as conn:
            rows = conn.execute(
                "SELECT output FROM chunks WHERE job_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (job_id, start, -1 if limit is None else limit),
            ).fetchall()
        return [_loads(r[0]) for r in rows]

    def recent_inputs(self, limit: int = 20, endpoint_id: str | None = None) -> list[dict]:
        """Distinct inputs of the newest jobs, newest first (for recall in the submit form)."""
        if not self._has_schema or limit <= 0:
            return []
        out: list[dict] = []
        seen: set[int] = set()
        where = "input IS NOT NULL" + (" AND endpoint_id = ?" if endpoint_id else "")
        args: tuple[Any, ...] = (endpoint_id,) if endpoint_id else ()
        with self._read() as conn:
            cur = conn.execute(
                f"SELECT input FROM jobs WHERE {where} "
                "ORDER BY submitted_at DESC, rowid DESC LIMIT ?",
                (*args, RECENT_INPUTS_SCAN),
            )
            for (text,) in cur:
                h = hash(text)
                if h in seen:
                    continue
                seen.add(h)
                value = _loads(text)
                if isinstance(value, dict):
                    out.append(value)
                    if len(out) >= limit:
                        break
        return out

    def count(self, endpoint_id: str | None = None) -> int:
        if not self._has_schema:
            return 0
        with self._read() as conn:
            if endpoint_id is None:
                return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            return conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE endpoint_id = ?", (endpoint_id,)
            ).fetchone()[0]

    def __repr__(self) -> str:
        mode = "" if self.writable else ", read-only"
        return f"HistoryStore({self.where}{mode})"


# ---------------------------------------------------------------------- helpers


def _record(row: tuple[Any, ...]) -> JobRecord:
    (job_id, endpoint_id, status, mode, inp, submitted_at, updated_at, finished_at, delay_ms,
     execution_ms, retries, progress, output, error, worker_id, expired, chunk_count,
     extra) = row  # fmt: skip
    extra_value = _loads(extra)
    return JobRecord(
        job_id=job_id,
        endpoint_id=endpoint_id,
        status=JobStatus.parse(status),
        mode=mode,
        input=_loads(inp),
        submitted_at=submitted_at,
        updated_at=updated_at,
        finished_at=finished_at,
        delay_ms=delay_ms,
        execution_ms=execution_ms,
        retries=retries or 0,
        progress=_loads(progress),
        output=_loads(output),
        error=error,
        worker_id=worker_id,
        expired=bool(expired),
        chunk_count=chunk_count or 0,
        extra=extra_value if isinstance(extra_value, dict) else {},
    )
