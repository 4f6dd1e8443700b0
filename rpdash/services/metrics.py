"""Latency metrics from the jobs rpdash has seen, and health trends. Pure functions.

RunPod's console shows, per endpoint: requests completed/failed/retried, execution, delay
and cold-start time at P70/P90/P98, cold-start count, worker states over time. rpdash can
compute the same from its own history (the jobs it submitted or watched) and from the
``/health`` samples it stored; :func:`compute_metrics` and :func:`health_series` do that,
nothing here does I/O.

Definitions (choices, stated so the numbers can be read):

- **Window**: jobs whose ``finished_at`` (when rpdash saw them end) is in
  ``[now - window, now]``.
- **Percentiles**: nearest rank (the smallest observed value with at least p % of the
  values at or below it), so every figure is a time some job really took. p50, p70, p90,
  p98 like the console (plus p50).
- **Delay** (queue wait, ``delayTime``) over jobs that have one, cancelled ones excluded
  (their wait was cut short by the user). **Execution** over COMPLETED and FAILED jobs
  (a TIMED_OUT job's execution is just the limit).
- **Failure rate**: (FAILED + TIMED_OUT) / (COMPLETED + FAILED + TIMED_OUT). Cancelled jobs
  count in neither; expired jobs whose outcome rpdash never saw are left out.
- **Throughput**: finished jobs (any terminal status) per minute over the window, and a
  per-minute series (``bucket_s``) for a sparkline.
- **Cold starts**: a job is a cold start when it is the first job rpdash saw on its worker
  (``worker_id``; jobs without one cannot be counted). Give ``first_jobs`` (from
  ``MetricsStore.first_jobs_of_workers``, which looks at the whole history) so a worker's
  first job *before* the window is not mistaken for one inside it; without it the first
  job per worker within the given rows is used. **Cold-start time** is the delay of those
  jobs (the wait included the worker's start).
- **Health trends**: gauges (queue, in progress, workers by state) as they were sampled;
  cumulative counters (completed, failed, retried) as per-minute rates from consecutive
  samples; a counter that went down (RunPod reset it) restarts from its new value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from rpdash.core.errors import InvalidInput
from rpdash.core.models import JobStatus

PERCENTILES = (50, 70, 90, 98)
#: health keys that are cumulative counters (charted as rates)
COUNTERS = ("completed", "failed", "retried")
#: health keys that are gauges (charted as they are)
GAUGES = ("in_queue", "in_progress", "idle", "initializing", "running", "throttled",
          "unhealthy", "workers")  # fmt: skip

_WINDOW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day|w)?\s*$", re.IGNORECASE)
_UNIT = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400,
         "day": 86400, "w": 604800}  # fmt: skip


class JobLike(Protocol):
    """What metrics read of a job (``JobRecord`` and ``FinishedJob`` both fit)."""

    job_id: str
    status: JobStatus
    finished_at: float | None
    delay_ms: int | None
    execution_ms: int | None
    worker_id: str | None
    submitted_at: float


class SampleLike(Protocol):
    at: float

    def value(self, key: str) -> int: ...


def parse_window(text: str | float) -> float:
    """``"1h"``, ``"15m"``, ``"90s"``, ``"7d"``, ``"2w"`` or seconds -> seconds (> 0)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        m = _WINDOW.match(str(text))
        if not m:
            raise InvalidInput(f"cannot read window {str(text)[:20]!r}: use e.g. 15m, 1h, 24h, 7d")
        seconds = float(m.group(1)) * _UNIT[(m.group(2) or "s").lower()]
    if not seconds > 0 or math.isinf(seconds):
        raise InvalidInput("the window must be a positive duration, e.g. 1h")
    return seconds


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty). ``p`` in (0, 100]."""
    if not values:
        return None
    if not 0 < p <= 100:
        raise ValueError("p must be in (0, 100]")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Percentiles of one duration, in ms (None when there was no value)."""

    count: int = 0
    p50: float | None = None
    p70: float | None = None
    p90: float | None = None
    p98: float | None = None
    mean: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencyStats:
        if not values:
            return cls()
        return cls(len(values), *(percentile(values, p) for p in PERCENTILES),
                   sum(values) / len(values), max(values))  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndpointMetrics:
    endpoint_id: str
    window_s: float
    start: float
    end: float
    finished: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    failure_rate: float | None = None
    throughput_per_min: float = 0.0
    #: (bucket start epoch s, finished jobs in it), oldest first, covering the window
    throughput_series: list[tuple[float, int]] = field(default_factory=list)
    delay: LatencyStats = field(default_factory=LatencyStats)
    execution: LatencyStats = field(default_factory=LatencyStats)
    cold_starts: int = 0
    cold_start_delay: LatencyStats = field(default_factory=LatencyStats)
    #: jobs in the window with no worker id (cold starts cannot be judged for them)
    without_worker: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["throughput_series"] = [list(x) for x in self.throughput_series]
        return d


def compute_metrics(
    jobs: Iterable[JobLike],
    *,
    endpoint_id: str,
    window_s: float,
    now: float,
    first_jobs: Mapping[str, str] | None = None,
    bucket_s: float = 60.0,
) -> EndpointMetrics:
    """Metrics of ``endpoint_id`` over the ``window_s`` seconds before ``now`` (epoch).
    ``jobs`` may hold other endpoints' jobs (they are skipped only if they carry an
    ``endpoint_id`` attribute that differs) and jobs outside the window."""
    start = now - window_s
    rows: list[JobLike] = []
    for j in jobs:
        ep = getattr(j, "endpoint_id", endpoint_id)
        if ep != endpoint_id or j.finished_at is None or not start <= j.finished_at <= now:
            continue
        if not JobStatus.parse(j.status).terminal:
            continue  # expired before rpdash saw how it ended
        rows.append(j)

    counts = {s: 0 for s in JobStatus}
    delays: list[float] = []
    execs: list[float] = []
    for j in rows:
        st = JobStatus.parse(j.status)
        counts[st] += 1
        if j.delay_ms is not None and st is not JobStatus.CANCELLED:
            delays.append(float(j.delay_ms))
        if j.execution_ms is not None and st in (JobStatus.COMPLETED, JobStatus.FAILED):
            execs.append(float(j.execution_ms))

    done = counts[JobStatus.COMPLETED] + counts[JobStatus.FAILED] + counts[JobStatus.TIMED_OUT]
    failures = counts[JobStatus.FAILED] + counts[JobStatus.TIMED_OUT]

    cold = cold_start_jobs(rows, first_jobs)
    cold_delays = [float(j.delay_ms) for j in rows if j.job_id in cold and j.delay_ms is not None]

    n_buckets = max(1, math.ceil(window_s / bucket_s))
    series_start = now - n_buckets * bucket_s
    buckets = [0] * n_buckets
    for j in rows:
        assert j.finished_at is not None
        i = min(n_buckets - 1, max(0, int((j.finished_at - series_start) // bucket_s)))
        buckets[i] += 1

    return EndpointMetrics(
        endpoint_id=endpoint_id,
        window_s=window_s,
        start=start,
        end=now,
        finished=len(rows),
        completed=counts[JobStatus.COMPLETED],
        failed=counts[JobStatus.FAILED],
        timed_out=counts[JobStatus.TIMED_OUT],
        cancelled=counts[JobStatus.CANCELLED],
        failure_rate=(failures / done) if done else None,
        throughput_per_min=len(rows) / (window_s / 60.0),
        throughput_series=[(series_start + i * bucket_s, n) for i, n in enumerate(buckets)],
        delay=LatencyStats.of(delays),
        execution=LatencyStats.of(execs),
        cold_starts=len(cold),
        cold_start_delay=LatencyStats.of(cold_delays),
        without_worker=sum(1 for j in rows if not j.worker_id),
    )


def _started(j: JobLike) -> float:
    return j.submitted_at + (j.delay_ms or 0) / 1000.0


def cold_start_jobs(jobs: Iterable[JobLike], first_jobs: Mapping[str, str] | None = None) -> set[str]:
    """Ids of the jobs that were their worker's first (see the module docstring)."""
    rows = [j for j in jobs if j.worker_id]
    if first_jobs is not None:
        return {j.job_id for j in rows if first_jobs.get(j.worker_id or "") == j.job_id}
    first: dict[str, JobLike] = {}
    for j in sorted(rows, key=_started):
        first.setdefault(j.worker_id or "", j)
    return {j.job_id for j in first.values()}


# ---------------------------------------------------------------------------- health trends


def health_series(samples: Sequence[SampleLike], key: str, *, per_s: float = 60.0) -> list[tuple[float, float]]:
    """``(at, value)`` points of one health key, oldest first: gauges as sampled, counters
    (:data:`COUNTERS`) as a rate per ``per_s`` seconds between consecutive samples."""
    if key in COUNTERS:
        return counter_rate(samples, key, per_s=per_s)
    if key not in GAUGES:
        raise ValueError(f"unknown health key {key!r}")
    return [(s.at, float(s.value(key))) for s in sorted(samples, key=lambda s: s.at)]


def counter_rate(samples: Sequence[SampleLike], key: str, *, per_s: float = 60.0) -> list[tuple[float, float]]:
    """Rate of a cumulative counter per ``per_s`` s, one point per sample after the first.
    A counter that went down (RunPod reset or windowed it) counts its new value as the
    increase."""
    ordered = sorted(samples, key=lambda s: s.at)
    out: list[tuple[float, float]] = []
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        dt = cur.at - prev.at
        if dt <= 0:
            continue
        a, b = prev.value(key), cur.value(key)
        delta = b - a if b >= a else b
        out.append((cur.at, delta * per_s / dt))
    return out


def downsample(points: Sequence[tuple[float, float]], *, start: float, end: float, buckets: int,
               how: str = "max") -> list[float | None]:  # fmt: skip
    """Points into ``buckets`` equal time buckets over ``[start, end]`` for a sparkline:
    ``max``, ``mean`` or ``last`` of each bucket (None where a bucket has no point)."""
    if buckets <= 0 or end <= start:
        return []
    width = (end - start) / buckets
    groups: list[list[float]] = [[] for _ in range(buckets)]
    for at, v in points:
        if start <= at <= end:
            groups[min(buckets - 1, int((at - start) // width))].append(v)
    out: list[float | None] = []
    for g in groups:
        if not g:
            out.append(None)
        elif how == "max":
            out.append(max(g))
        elif how == "mean":
            out.append(sum(g) / len(g))
        elif how == "last":
            out.append(g[-1])
        else:
            raise ValueError("how must be max, mean or last")
    return out


def format_ms(ms: float | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 5 s``; ``-`` for None."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m} min {s} s"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"
