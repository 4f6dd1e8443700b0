"""The history database's schema, as a list of migrations.

``PRAGMA user_version`` holds how many migrations a file has had; opening a file applies
the missing ones, in order, each in its own transaction. Never edit a released step: add
a new one at the end.

Why the shapes:
- ``jobs`` is an ordinary rowid table (outputs can be megabytes; a WITHOUT ROWID table
  would carry them inside its primary-key b-tree). ``job_id`` is its primary key.
- ``jobs_recent`` serves ``recent()`` newest first (an index on ``submitted_at`` carries the
  rowid, so ``ORDER BY submitted_at DESC, rowid DESC`` reads the index in order, no sort);
  ``jobs_endpoint_recent`` the same for one endpoint; ``jobs_active`` is a partial index
  holding only the live jobs, so ``active()`` stays small however long the history gets.
- ``chunks`` is WITHOUT ROWID: stream chunks are mostly small (tokens) and read by
  (job_id, seq) ranges, which is exactly its primary key; no second index to maintain on
  the hot path.
- ``health_samples`` (step 2) is WITHOUT ROWID keyed by (endpoint_id, at): samples are
  small, written every few seconds and read as time ranges of one endpoint, which is the
  primary key's order; ``jobs_endpoint_finished`` serves the metrics window ("jobs of this
  endpoint that finished in the last hour") without scanning the history.
- ``alerts`` (step 3) is an ordinary rowid table (the rowid orders events of the same
  instant); ``alerts_recent`` and ``alerts_endpoint_recent`` serve "newest first", for all
  endpoints or one, straight from the index.
"""

from __future__ import annotations

#: Statuses after which a job never changes (JobStatus.terminal). Spelled out here because
#: SQL must match the partial index's WHERE clause word for word to use it.
TERMINAL_SQL = "('COMPLETED','FAILED','CANCELLED','TIMED_OUT')"
ACTIVE_WHERE = f"status NOT IN {TERMINAL_SQL} AND expired = 0"

MIGRATIONS: list[tuple[str, ...]] = [
    # 1: jobs, status log, stream chunks
    (
        """
        CREATE TABLE jobs (
            job_id        TEXT PRIMARY KEY,
            endpoint_id   TEXT NOT NULL,
            status        TEXT NOT NULL,
            mode          TEXT NOT NULL DEFAULT 'run',
            input         TEXT,              -- JSON
            submitted_at  REAL NOT NULL,     -- epoch seconds
            updated_at    REAL NOT NULL,
            finished_at   REAL,
            delay_ms      INTEGER,
            execution_ms  INTEGER,
            retries       INTEGER NOT NULL DEFAULT 0,
            progress      TEXT,              -- JSON, latest IN_PROGRESS output
            output        TEXT,              -- JSON, final output
            error         TEXT,
            worker_id     TEXT,
            expired       INTEGER NOT NULL DEFAULT 0,
            chunk_count   INTEGER NOT NULL DEFAULT 0,
            raw           TEXT,              -- JSON, last answer from the API
            extra         TEXT               -- JSON, JobRecord.extra
        )
        """,
        "CREATE INDEX jobs_recent ON jobs(submitted_at)",
        "CREATE INDEX jobs_endpoint_recent ON jobs(endpoint_id, submitted_at)",
        f"CREATE INDEX jobs_active ON jobs(submitted_at) WHERE {ACTIVE_WHERE}",
        """
        CREATE TABLE status_log (
            job_id  TEXT NOT NULL,
            at      REAL NOT NULL,
            status  TEXT NOT NULL
        )
        """,
        "CREATE INDEX status_log_job ON status_log(job_id, at)",
        """
        CREATE TABLE chunks (
            job_id  TEXT NOT NULL,
            seq     INTEGER NOT NULL,
            output  TEXT,                    -- JSON
            PRIMARY KEY (job_id, seq)
        ) WITHOUT ROWID
        """,
    ),
    # 2: health samples (charts that survive restarts), finished-jobs index (metrics windows)
    (
        """
        CREATE TABLE health_samples (
            endpoint_id     TEXT NOT NULL,
            at              REAL NOT NULL,   -- epoch seconds
            in_queue        INTEGER NOT NULL DEFAULT 0,
            in_progress     INTEGER NOT NULL DEFAULT 0,
            completed       INTEGER NOT NULL DEFAULT 0,   -- cumulative, as /health says
            failed          INTEGER NOT NULL DEFAULT 0,
            retried         INTEGER NOT NULL DEFAULT 0,
            w_idle          INTEGER NOT NULL DEFAULT 0,
            w_initializing  INTEGER NOT NULL DEFAULT 0,
            w_running       INTEGER NOT NULL DEFAULT 0,
            w_throttled     INTEGER NOT NULL DEFAULT 0,
            w_unhealthy     INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (endpoint_id, at)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX jobs_endpoint_finished ON jobs(endpoint_id, finished_at)",
    ),
    # 3: alert history (fired / recovered events, for the alerts view)
    (
        """
        CREATE TABLE alerts (
            at           REAL NOT NULL,     -- epoch seconds of the event
            endpoint_id  TEXT NOT NULL,
            rule         TEXT NOT NULL,
            kind         TEXT NOT NULL,     -- fired | recovered
            severity     TEXT NOT NULL,
            message      TEXT NOT NULL,
            since        REAL               -- when the alert fired
        )
        """,
        "CREATE INDEX alerts_recent ON alerts(at)",
        "CREATE INDEX alerts_endpoint_recent ON alerts(endpoint_id, at)",
    ),
    # 4: the scale a drain replaced (rpdash.store.scale_memory)
    (
        """
        CREATE TABLE scale_memory (
            endpoint_id   TEXT PRIMARY KEY,
            name          TEXT,
            saved_at      REAL NOT NULL,     -- epoch seconds
            workers_min   INTEGER,
            workers_max   INTEGER,
            idle_timeout  INTEGER,
            scaler_type   TEXT,
            scaler_value  INTEGER
        )
        """,
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)
