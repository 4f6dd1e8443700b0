"""The job history: every job rpdash submitted or watched, its status changes, its output
and its stream chunks, in one SQLite file (stdlib ``sqlite3``).

Why it is set up this way:

- **The file is private.** It is created with mode 0600 (``os.open`` with ``O_CREAT``)
  *before* SQLite opens it, so it is never readable by others even for an instant; its
  directory is created 0700; the ``-wal``/``-shm`` files SQLite makes beside it take the
  file's mode, and are tightened too when an older run left them looser. Inputs and
  outputs can be private data.
- **WAL journal.** Readers never block the writer and the writer never blocks readers,
  so the UI reads while a stream follower writes, and two rpdash instances can share one
  file. ``busy_timeout`` makes a write wait (a few seconds at most) for the other
  instance's short transaction instead of failing at once.
- **synchronous=NORMAL.** In WAL mode a commit is then written to the WAL but fsynced
  only at checkpoints. A crash of rpdash itself (an exception, ``kill -9``) loses nothing
  that was committed: the data is in the OS cache. Only a power cut or an OS crash can
  roll back the last few commits, and the file is never corrupted either way. FULL would
  fsync every commit (milliseconds each, on the event-loop thread, on the stream hot path)
  for protection against a power cut that the history does not need: the jobs themselves
  live on RunPod.
- **Each call is one short transaction** (``BEGIN IMMEDIATE``: it takes the write lock up
  front, so two writers queue on the busy timeout instead of failing with a deadlock).
  ``record_submitted`` commits before it returns: a submitted job's id is never lost.
- **Errors are StoreError** with one line saying what to do ("cannot write job history at
  PATH: disk is full"), never a traceback. A file that can be read but not written opens
  read-only (``writable`` is False, ``problem`` says why) so the history can still be
  shown.
- **Thread-safe.** One connection (``check_same_thread=False``) behind a lock: the asyncio
  thread and a helper thread may both use the store.

JSON is stored with ``ensure_ascii=True``: strings holding lone surrogates (which some
JSON decoders let through) are stored as ``\\udxxx`` escapes and come back unchanged.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import RpdashError
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.paths import display_path, ensure_private_dir
from rpdash.store.reasons import is_corrupt, os_reason, sqlite_reason
from rpdash.store.schema import ACTIVE_WHERE, MIGRATIONS, SCHEMA_VERSION, TERMINAL_SQL

#: How long a write waits for another process's transaction before giving up.
DEFAULT_BUSY_TIMEOUT_S = 3.0
#: Keep the WAL file from staying large after a burst (bytes).
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024
#: recent_inputs() looks at this many of the newest jobs at most.
RECENT_INPUTS_SCAN = 500


class StoreError(RpdashError):
    """The job history cannot be read or written. The message says where and why."""

    label = "history"


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


class HistoryStore:
    """Job history in one SQLite file (``path``), or in memory when ``path`` is None.

    ``writable`` is False when the file could only be opened read-only; ``problem`` then
    holds the StoreError that says why (show it once), and every write raises it.
    With ``readonly_fallback=False`` such a file raises StoreError at once instead.
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
        self._lock = threading.RLock()
        self._busy_timeout = busy_timeout
        if path is not None and str(path) == ":memory:":
            path = None
        self.path: Path | None = Path(path).expanduser() if path is not None else None
        self.writable = True
        self.problem: StoreError | None = None
        #: False when a read-only file has no history tables yet (reads return nothing).
        self._has_schema = True
        self._conn: sqlite3.Connection | None = None
        if self.path is None:
            self._conn = self._connect(":memory:")
            self._migrate()
        else:
            self._open_file(self.path, readonly_fallback)

    # ------------------------------------------------------------------ opening

    @property
    def where(self) -> str:
        return display_path(self.path) if self.path is not None else "(memory)"

    def _connect(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(
            target,
            timeout=self._busy_timeout,
            check_same_thread=False,
            isolation_level=None,  # autocommit; transactions are explicit (BEGIN IMMEDIATE)
            uri=uri,
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return conn

    def _open_file(self, path: Path, readonly_fallback: bool) -> None:
        reason: str | None = None
        try:
            ensure_private_dir(path.parent)
            _create_private(path)
        except OSError as e:
            reason = os_reason(e)
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) and not path.exists():
                reason = "cannot create the file (its directory is not writable)"
        if reason is None:
            try:
                self._conn = self._connect(str(path))
                self._set_wal(self._conn)
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
                self._migrate()
                _tighten_sidecars(path)
                return
            except sqlite3.Error as e:
                self._close_quietly()
                why = sqlite_reason(e, self._busy_timeout, self.path)
                if is_corrupt(e):
                    raise StoreError(f"cannot open job history at {self.where}: {why}") from None
                reason = why
            except StoreError:
                self._close_quietly()
                raise
        # Not writable: fall back to reading what is there.
        message = f"cannot write job history at {self.where}: {reason}"
        if not readonly_fallback or not path.is_file():
            raise StoreError(message)
        self._open_readonly(path)
        self.writable = False
        self.problem = StoreError(message + "; showing it read-only")

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. SQLite answers this pragma with SQLITE_BUSY at once, without
        calling the busy handler, while another process opens or converts the same file
        (two rpdash started together on a new history): so wait for it here, as long as
        the busy timeout."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL").fetchall()
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e).lower() or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _open_readonly(self, path: Path) -> None:
        uri = "file:" + quote(str(path.resolve()))
        last: sqlite3.Error | None = None
        # mode=ro needs to create the -shm file when the database is in WAL mode and no
        # other process has it open; in a read-only directory only immutable=1 can read.
        for params in ("?mode=ro", "?mode=ro&immutable=1"):
            conn: sqlite3.Connection | None = None
            try:
                conn = self._connect(uri + params, uri=True)
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.Error as e:
                last = e
                if conn is not None:
                    conn.close()
                continue
            self._conn = conn
            self._has_schema = version >= 1
            return
        assert last is not None
        raise StoreError(
            f"cannot read job history at {self.where}: {sqlite_reason(last, 0, self.path)}"
        ) from None

    def _migrate(self) -> None:
        conn = self._require()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            # A newer rpdash wrote this file: read what we understand, write nothing.
            self.writable = False
            self.problem = StoreError(
                f"cannot write job history at {self.where}: it was written by a newer "
                "rpdash; showing it read-only"
            )
            return
        while version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another instance may have migrated while we waited for the lock.
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version < SCHEMA_VERSION:
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
                    conn.execute(f"PRAGMA user_version = {version}")
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def _close_quietly(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"job history at {self.where} is closed")
        return self._conn

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; every sqlite error becomes a StoreError."""
        with self._lock:
            conn = self._require()
            if not self.writable:
                assert self.problem is not None
                raise StoreError(self.problem.message.removesuffix("; showing it read-only"))
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            except sqlite3.Error as e:
                why = sqlite_reason(e, self._busy_timeout, self.path)
                raise StoreError(f"cannot write job history at {self.where}: {why}") from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._require()
            try:
                yield conn
            except sqlite3.Error as e:
                why = sqlite_reason(e, self._busy_timeout, self.path)
                raise StoreError(f"cannot read job history at {self.where}: {why}") from None

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

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connection (the last one out checkpoints the WAL). Idempotent."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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


def _create_private(path: Path) -> None:
    """Create ``path`` 0600 if missing (before SQLite does it with the umask's mode), and
    tighten it when an older file is readable by others. Raises OSError when the file
    cannot be opened for writing."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            try:
                os.fchmod(fd, 0o600)
            except OSError:
                pass  # not our file to change; it still works
    finally:
        os.close(fd)


def _tighten_sidecars(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        side = Path(str(path) + suffix)
        try:
            if side.stat().st_mode & 0o077:
                os.chmod(side, 0o600)
        except OSError:
            pass


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass
