"""Latency metrics and health trends (pure), and their storage in the history file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rpdash.core.clock import FakeClock
from rpdash.core.errors import InvalidInput
from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.metrics import (
    LatencyStats,
    cold_start_jobs,
    compute_metrics,
    counter_rate,
    downsample,
    format_ms,
    health_series,
    parse_window,
    percentile,
)
from rpdash.store.history import HistoryStore
from rpdash.store.metrics_store import HealthSample, MetricsStore
from rpdash.store.schema import MIGRATIONS, SCHEMA_VERSION

NOW = 1_800_000_000.0
C, F, T, X = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.TIMED_OUT, JobStatus.CANCELLED


def job(i: int, status: JobStatus = C, *, ago: float = 60.0, delay: int | None = 100,
        exe: int | None = 1000, worker: str | None = "w1", ep: str = "e") -> JobRecord:  # fmt: skip
    fin = NOW - ago
    return JobRecord(f"j{i}", ep, status, submitted_at=fin - 5, finished_at=fin, delay_ms=delay,
                     execution_ms=exe, worker_id=worker)  # fmt: skip


# ------------------------------------------------------------------ percentiles


def test_percentiles_nearest_rank_on_known_data() -> None:
    values = list(range(1, 101))  # 1..100
    assert [percentile(values, p) for p in (50, 70, 90, 98, 100)] == [50, 70, 90, 98, 100]
    assert percentile([5.0], 50) == 5.0 and percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2  # order does not matter
    assert percentile([10, 20, 30, 40], 70) == 30  # ceil(2.8) = 3rd
    with pytest.raises(ValueError):
        percentile([1], 0)
    st = LatencyStats.of([100, 200, 300, 400])
    assert (st.count, st.p50, st.p98, st.mean, st.max) == (4, 200, 400, 250, 400)


def test_window_parsing() -> None:
    assert parse_window("1h") == 3600 and parse_window("15m") == 900 and parse_window("90") == 90
    assert parse_window("7d") == 7 * 86400 and parse_window("2w") == 14 * 86400
    for bad in ("", "abc", "0", "-5m"):
        with pytest.raises(InvalidInput):
            parse_window(bad)


# ------------------------------------------------------------------ metrics


def test_metrics_over_a_window() -> None:
    jobs = [job(i, delay=100 * (i + 1), exe=1000 * (i + 1)) for i in range(10)]  # 10 completed
    jobs += [job(20, F, delay=50, exe=300), job(21, T, delay=70, exe=None),
             job(22, X, delay=99_999, exe=None)]  # fmt: skip
    jobs += [job(30, ago=7200), job(31, ep="other")]  # outside the window / other endpoint
    jobs.append(JobRecord("live", "e", JobStatus.IN_PROGRESS, submitted_at=NOW - 10))
    m = compute_metrics(jobs, endpoint_id="e", window_s=3600, now=NOW)
    assert (m.finished, m.completed, m.failed, m.timed_out, m.cancelled) == (13, 10, 1, 1, 1)
    assert m.failure_rate == pytest.approx(2 / 12)  # cancelled counts in neither
    assert m.throughput_per_min == pytest.approx(13 / 60)
    # delay: 10 completed + failed + timed out (cancelled left out) = 12 values
    assert m.delay.count == 12 and m.delay.max == 1000
    # execution: completed + failed only
    assert m.execution.count == 11 and m.execution.p50 == 5000 and m.execution.p98 == 10_000
    assert sum(n for _, n in m.throughput_series) == 13 and len(m.throughput_series) == 60
    assert m.to_dict()["delay"]["p90"] == m.delay.p90


def test_window_edges_and_empty() -> None:
    m = compute_metrics([job(1, ago=3600), job(2, ago=3600.5)], endpoint_id="e", window_s=3600, now=NOW)
    assert m.finished == 1
    empty = compute_metrics([], endpoint_id="e", window_s=600, now=NOW)
    assert empty.failure_rate is None and empty.delay.p50 is None and empty.throughput_per_min == 0


def test_cold_starts_are_first_jobs_per_worker() -> None:
    jobs = [
        job(1, worker="a", ago=300, delay=9000), job(2, worker="a", ago=200, delay=50),
        job(3, worker="b", ago=100, delay=7000), job(4, worker=None, ago=90),
    ]  # fmt: skip
    assert cold_start_jobs(jobs) == {"j1", "j3"}
    m = compute_metrics(jobs, endpoint_id="e", window_s=3600, now=NOW)
    assert m.cold_starts == 2 and m.cold_start_delay.p50 == 7000 and m.without_worker == 1
    # with the whole history: worker "a" had an earlier job, outside these rows
    m2 = compute_metrics(jobs, endpoint_id="e", window_s=3600, now=NOW, first_jobs={"a": "old", "b": "j3"})
    assert m2.cold_starts == 1


# ------------------------------------------------------------------ health trends


def sample(at: float, **kw: int) -> HealthSample:
    return HealthSample("e", at, **kw)


def test_counter_rates_handle_resets_and_gauges_pass_through() -> None:
    s = [sample(0, completed=10, in_queue=3), sample(60, completed=40, in_queue=5),
         sample(120, completed=40, in_queue=0), sample(150, completed=5, idle=1, running=2)]  # fmt: skip
    assert counter_rate(s, "completed") == [(60, 30.0), (120, 0.0), (150, 10.0)]
    assert health_series(s, "in_queue") == [(0, 3.0), (60, 5.0), (120, 0.0), (150, 0.0)]
    assert health_series(s, "workers")[-1] == (150, 3.0)
    with pytest.raises(ValueError):
        health_series(s, "nope")
    assert downsample([(0, 1), (10, 5), (70, 2)], start=0, end=120, buckets=2) == [5, 2]
    assert downsample([(0, 1)], start=0, end=120, buckets=3, how="last") == [1, None, None]


def test_format_ms() -> None:
    assert [format_ms(v) for v in (None, 850, 12_340, 245_000, 7_500_000)] == [
        "-", "850 ms", "12.3 s", "4 min 5 s", "2 h 5 min"]  # fmt: skip


# ------------------------------------------------------------------ storage


def test_health_samples_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    clock = FakeClock(wall=NOW)
    with HistoryStore(path, clock=clock) as store:
        ms = MetricsStore(store)
        for i in range(5):
            h = Health.model_validate({"jobs": {"inQueue": i, "completed": 10 * i},
                                       "workers": {"running": 1, "unhealthy": i % 2}})  # fmt: skip
            ms.record_health("e", h, at=NOW - 100 + 10 * i)
        ms.record_health("other", Health(), at=NOW)
    with HistoryStore(path, clock=clock) as store:
        ms = MetricsStore(store)
        got = ms.health_samples("e", NOW - 1000)
        assert [s.in_queue for s in got] == [0, 1, 2, 3, 4] and got[3].unhealthy == 1
        assert [s.in_queue for s in ms.health_samples("e", NOW - 1000, limit=2)] == [3, 4]
        assert ms.sampled_endpoints(NOW - 1000) == ["e", "other"]
        assert counter_rate(got, "completed")[0][1] == 60.0
        assert ms.prune_health(75) == 3  # older than NOW - 75
        assert len(ms.health_samples("e", 0)) == 2


def test_finished_jobs_and_first_jobs_from_the_history() -> None:
    clock = FakeClock(wall=NOW)
    with HistoryStore(None, clock=clock) as store:
        for rec in [job(1, worker="a", ago=5000), job(2, worker="a", ago=100),
                    job(3, worker="b", ago=50), job(4, F, worker="b", ago=10, ep="x")]:  # fmt: skip
            store.update(rec)
        store.update(JobRecord("q", "e", JobStatus.IN_QUEUE, submitted_at=NOW))
        ms = MetricsStore(store)
        fin = ms.finished_jobs("e", NOW - 3600)
        assert [f.job_id for f in fin] == ["j2", "j3"] and fin[0].endpoint_id == "e"
        assert {f.job_id for f in ms.finished_jobs(None, NOW - 3600)} == {"j2", "j3", "j4"}
        first = ms.first_jobs_of_workers("e", ["a", "b", "a"])
        assert first == {"a": "j1", "b": "j3"}
        m = compute_metrics(fin, endpoint_id="e", window_s=3600, now=NOW, first_jobs=first)
        assert m.cold_starts == 1  # j2 is not worker a's first job


def test_migration_from_the_first_schema_keeps_jobs(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    for st in MIGRATIONS[0]:
        conn.execute(st)
    conn.execute("INSERT INTO jobs (job_id, endpoint_id, status, submitted_at, updated_at, finished_at) "
                 f"VALUES ('old', 'e', 'COMPLETED', {NOW - 10}, {NOW}, {NOW})")  # fmt: skip
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with HistoryStore(path, clock=FakeClock(wall=NOW)) as store:
        assert store.get("old") is not None
        ms = MetricsStore(store)
        ms.record_health("e", Health(), at=NOW)
        assert len(ms.health_samples("e", 0)) == 1
        assert [f.job_id for f in ms.finished_jobs("e", 0)] == ["old"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    conn.close()
