"""Health samples and metrics queries, kept in the job history's SQLite file.

``MetricsStore(history)`` works on an open :class:`~rpdash.store.history.HistoryStore`:
same file, same connection, same lock and the same one-line ``StoreError`` on failure
(the table comes with migration step 2 in ``schema.py``, applied when the history opens).
It is a separate module so the history's own code stays as it is; it uses the history's
transaction helpers, which is why it lives in the same package.

Why samples are stored: the health panel's trends (queue length, workers by state,
completed/failed per minute) should survive a restart, like the console's charts. A
sample is one ``/health`` answer, at most one per endpoint per instant; the pollers write
one every few seconds, so an hour is ~720 small rows per endpoint. ``prune`` drops old
ones with the history's retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rpdash.core.models import Health, JobStatus
from rpdash.store.history import HistoryStore

_SAMPLE_COLS = (
    "endpoint_id, at, in_queue, in_progress, completed, failed, retried, w_idle, "
    "w_initializing, w_running, w_throttled, w_unhealthy"
)


@dataclass(frozen=True, slots=True)
class HealthSample:
    """One ``/health`` answer at ``at`` (epoch seconds). Job counters ``completed``,
    ``failed`` and ``retried`` are cumulative as RunPod reports them."""

    endpoint_id: str
    at: float
    in_queue: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    idle: int = 0
    initializing: int = 0
    running: int = 0
    throttled: int = 0
    unhealthy: int = 0

    @classmethod
    def from_health(cls, endpoint_id: str, health: Health, at: float) -> HealthSample:
        j, w = health.jobs, health.workers
        return cls(endpoint_id, at, j.inQueue, j.inProgress, j.completed, j.failed, j.retried,
                   w.idle, w.initializing, w.running, w.throttled, w.unhealthy)  # fmt: skip

    @property
    def workers(self) -> int:
        """Workers that exist (any state)."""
        return self.idle + self.initializing + self.running + self.throttled + self.unhealthy

    def value(self, key: str) -> int:
        """A field by name; ``workers`` is the total."""
        return self.workers if key == "workers" else int(getattr(self, key))


@dataclass(frozen=True, slots=True)
class FinishedJob:
    """What metrics need of a finished job (no inputs or outputs)."""

    job_id: str
    endpoint_id: str
    status: JobStatus
    mode: str
    submitted_at: float
    finished_at: float | None
    delay_ms: int | None
    execution_ms: int | None
    worker_id: str | None
    expired: bool = False


class MetricsStore:
    """Health samples and metrics reads on top of an open history store."""

    def __init__(self, history: HistoryStore) -> None:
        self.history = history
        self._has_table = False

    # ------------------------------------------------------------------ health samples

    def record_health(self, endpoint_id: str, health: Health, at: float | None = None) -> HealthSample:
        """Store one sample (``at`` defaults to the history's clock); a second sample of
        the same endpoint at the same instant replaces the first."""
        t = self.history._clock.time() if at is None else at
        sample = HealthSample.from_health(endpoint_id, health, t)
        self.record_samples([sample])
        return sample

    def record_samples(self, samples: Iterable[HealthSample]) -> None:
        rows = [
            (s.endpoint_id, s.at, s.in_queue, s.in_progress, s.completed, s.failed, s.retried,
             s.idle, s.initializing, s.running, s.throttled, s.unhealthy)
            for s in samples
        ]  # fmt: skip
        if not rows:
            return
        with self.history._write() as conn:
            conn.executemany(
                f"INSERT OR REPLACE INTO health_samples ({_SAMPLE_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def health_samples(self, endpoint_id: str, since: float, until: float | None = None,
                       *, limit: int | None = None) -> list[HealthSample]:  # fmt: skip
        """Samples of one endpoint with ``since <= at <= until``, oldest first; with
        ``limit``, the newest ``limit`` of them (still oldest first)."""
        if not self._ready():
            return []
        hi = float("inf") if until is None else until
        with self.history._read() as conn:
            if limit is None:
                rows = conn.execute(
                    f"SELECT {_SAMPLE_COLS} FROM health_samples WHERE endpoint_id = ? "
                    "AND at >= ? AND at <= ? ORDER BY at",
                    (endpoint_id, since, hi),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_SAMPLE_COLS} FROM health_samples WHERE endpoint_id = ? "
                    "AND at >= ? AND at <= ? ORDER BY at DESC LIMIT ?",
                    (endpoint_id, since, hi, limit),
                ).fetchall()
                rows.reverse()
        return [HealthSample(*r) for r in rows]

    def sampled_endpoints(self, since: float) -> list[str]:
        if not self._ready():
            return []
        with self.history._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT endpoint_id FROM health_samples WHERE at >= ? ORDER BY endpoint_id",
                (since,),
            ).fetchall()
        return [r[0] for r in rows]

    def prune_health(self, older_than_s: float) -> int:
        """Delete samples older than ``older_than_s`` seconds; returns how many."""
        cutoff = self.history._clock.time() - older_than_s
        with self.history._write() as conn:
            return conn.execute("DELETE FROM health_samples WHERE at < ?", (cutoff,)).rowcount

    # ------------------------------------------------------------------ jobs for metrics

    def finished_jobs(self, endpoint_id: str | None, since: float,
                      until: float | None = None) -> list[FinishedJob]:  # fmt: skip
        """Jobs (of one endpoint, or all) that finished with ``since <= finished_at <=
        until``, oldest first."""
        if not self._ready():
            return []
        hi = float("inf") if until is None else until
        cols = ("job_id, endpoint_id, status, mode, submitted_at, finished_at, delay_ms, execution_ms, "
                "worker_id, expired")  # fmt: skip
        with self.history._read() as conn:
            if endpoint_id is None:
                rows = conn.execute(
                    f"SELECT {cols} FROM jobs WHERE finished_at >= ? AND finished_at <= ? "
                    "ORDER BY finished_at",
                    (since, hi),
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {cols} FROM jobs WHERE endpoint_id = ? AND finished_at >= ? "
                    "AND finished_at <= ? ORDER BY finished_at",
                    (endpoint_id, since, hi),
                ).fetchall()
        return [_finished(r) for r in rows]

    def first_jobs_of_workers(self, endpoint_id: str, worker_ids: Sequence[str]) -> dict[str, str]:
        """For each worker id, the job rpdash saw it start first (by start time =
        submit + delay): the cold-start job of that worker, as far as rpdash knows."""
        ids = [w for w in dict.fromkeys(worker_ids) if w]
        if not ids or not self._ready():
            return {}
        out: dict[str, str] = {}
        with self.history._read() as conn:
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows = conn.execute(
                    "SELECT worker_id, job_id, submitted_at + COALESCE(delay_ms, 0) / 1000.0 AS started "
                    f"FROM jobs WHERE endpoint_id = ? AND worker_id IN ({marks}) "
                    "ORDER BY worker_id, started, rowid",
                    (endpoint_id, *part),
                ).fetchall()
                for worker_id, job_id, _ in rows:
                    out.setdefault(worker_id, job_id)
        return out

    def _ready(self) -> bool:
        """False for a read-only file written before step 2 (reads then return nothing)."""
        self._has_table = self._has_table or self.history.has_table("health_samples")
        return self._has_table


def _finished(r: tuple[Any, ...]) -> FinishedJob:
    (job_id, endpoint_id, status, mode, submitted_at, finished_at, delay_ms, execution_ms,
     worker_id, expired) = r  # fmt: skip
    return FinishedJob(job_id, endpoint_id, JobStatus.parse(status), mode, submitted_at, finished_at,
                       delay_ms, execution_ms, worker_id, bool(expired))  # fmt: skip
