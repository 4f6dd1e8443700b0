"""The job history's SQLite file: opening it, its settings, its transactions, closing it
(stdlib ``sqlite3``). :class:`~rpdash.store.history.HistoryStore` builds on
:class:`HistoryDatabase` and adds what is stored and how it is queried.

Why it is set up this way:

- **The file is private.** It is created with mode 0600 (``os.open`` with ``O_CREAT``)
  *before* SQLite opens it, so it is never readable by others even for an instant; its
  directory is created 0700; the ``-wal``/``-shm`` files SQLite makes beside it take the
  file's mode, and are tightened too when an older run left them looser. Inputs and
  outputs can be private data.
- **WAL journal.** Readers never block the writer and the writer never blocks readers,
  so the UI reads while a stream follower writes, and two rpdash instances can share one
  file. ``busy_timeout`` makes a write wait (a few seconds at most) for the other
  instance's short transaction instead of failing at once; switching a new file to WAL
  waits the same way for another instance doing the same.
- **synchronous=NORMAL.** In WAL mode a commit is then written to the WAL but fsynced
  only at checkpoints. A crash of rpdash itself (an exception, ``kill -9``) loses nothing
  that was committed: the data is in the OS cache. Only a power cut or an OS crash can
  roll back the last few commits, and the file is never corrupted either way. FULL would
  fsync every commit (milliseconds each, on the event-loop thread, on the stream hot path)
  for protection against a power cut that the history does not need: the jobs themselves
  live on RunPod.
- **Migrations on open.** ``PRAGMA user_version`` says which steps of
  :data:`~rpdash.store.schema.MIGRATIONS` the file has had; the missing ones run, each in
  its own transaction. A file written by a newer rpdash opens read-only.
- **Each write is one short transaction** (``BEGIN IMMEDIATE``: it takes the write lock
  up front, so two writers queue on the busy timeout instead of failing with a deadlock).
- **Errors are StoreError** with one line saying what to do ("cannot write job history at
  PATH: disk is full"), never a traceback. A file that can be read but not written opens
  read-only (``writable`` is False, ``problem`` says why) so the history can still be
  shown.
- **Thread-safe.** One connection (``check_same_thread=False``) behind a lock: the asyncio
  thread and a helper thread may both use the store.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self
from urllib.parse import quote

from rpdash.core.errors import RpdashError
from rpdash.paths import display_path, ensure_private_dir
from rpdash.store.reasons import is_corrupt, os_reason, sqlite_reason
from rpdash.store.schema import MIGRATIONS, SCHEMA_VERSION

#: How long a write waits for another process's transaction before giving up.
DEFAULT_BUSY_TIMEOUT_S = 3.0
#: Keep the WAL file from staying large after a burst (bytes).
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024


class StoreError(RpdashError):
    """The job history cannot be read or written. The message says where and why."""

    label = "history"


class HistoryDatabase:
    """The open history file (``path``), or an in-memory database when ``path`` is None:
    one connection, its lock, and the ``_write``/``_read`` transaction helpers.

    ``writable`` is False when the file could only be opened read-only; ``problem`` then
    holds the StoreError that says why (show it once), and every write raises it.
    With ``readonly_fallback=False`` such a file raises StoreError at once instead.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT_S,
        readonly_fallback: bool = True,
    ) -> None:
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

    # ------------------------------------------------------------------ transactions

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

    def has_table(self, name: str) -> bool:
        """Whether the file has table ``name``: a read-only file written by an older rpdash
        may lack the tables later migrations add (its readers then find nothing)."""
        if not self._has_schema:
            return False
        with self._read() as conn:
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                               (name,)).fetchone()
        return row is not None

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the connection (the last one out checkpoints the WAL). Idempotent."""
        with self._lock:
            self._close_quietly()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------- helpers


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
