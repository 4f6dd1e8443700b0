"""Benchmark of the job history store (rpdash/store/history.py).

Measures what the dashboard feels:
- stream chunks/s through ``append_chunks`` (the stream follower's hot path), with the
  batch sizes a follower sees (one /stream answer = one call), and one chunk per call as
  the worst case;
- ``recent(10000)`` on a 100,000-job history, right after opening the file (first paint of
  the dashboard) and again warm; ``recent(1000)``, ``active()``, ``recent_inputs()``;
- ``prune`` of half the history.

Run: ``.venv/bin/python bench/store_bench.py [--jobs 100000] [--chunks 200000] [--dir D]``.
The file lives in a temporary directory unless ``--dir`` is given; it is a real file on
disk with the store's own settings (WAL, synchronous=NORMAL), nothing tuned for the bench.
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rpdash.core.models import JobStatus  # noqa: E402
from rpdash.core.records import JobRecord  # noqa: E402
from rpdash.store.history import HistoryStore  # noqa: E402

STATUSES = [JobStatus.COMPLETED] * 8 + [JobStatus.FAILED, JobStatus.IN_PROGRESS]


def _timed(fn, repeat: int = 1) -> tuple[float, object]:
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def bench_chunks(directory: Path, total: int) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    rng = random.Random(1)
    tokens = [
        " ".join(rng.choice(["the", "a", "token", "stream", "json"]) for _ in range(3))
        for _ in range(1000)
    ]
    for batch in (100, 10):
        store = HistoryStore(directory / f"chunks-{batch}.sqlite3")
        job = JobRecord(
            job_id=f"stream-{batch}", endpoint_id="ep", mode="stream", submitted_at=time.time()
        )
        store.record_submitted(job)
        t0 = time.perf_counter()
        seq = 0
        while seq < total:
            n = min(batch, total - seq)
            store.append_chunks(
                job.job_id, seq, [{"token": tokens[(seq + i) % 1000]} for i in range(n)]
            )
            seq += n
        dt = time.perf_counter() - t0
        # idempotent re-delivery of the last batch must not add rows
        store.append_chunks(job.job_id, total - batch, [{"dup": True}] * batch)
        assert store.get(job.job_id).chunk_count == total
        t1 = time.perf_counter()
        got = store.chunks(job.job_id)
        dt_read = time.perf_counter() - t1
        assert len(got) == total and got[0] == {"token": tokens[0]}
        store.close()
        rows.append(
            (
                f"append_chunks, {total:,} chunks in batches of {batch}",
                f"{dt:.2f} s = {total / dt:,.0f} chunks/s",
            )
        )
        rows.append((f"chunks() read back {total:,}", f"{dt_read:.2f} s"))
    # worst case: one chunk per call (one transaction each)
    single = min(total, 5000)
    store = HistoryStore(directory / "chunks-1.sqlite3")
    store.record_submitted(JobRecord(job_id="s1", endpoint_id="ep", submitted_at=time.time()))
    t0 = time.perf_counter()
    for i in range(single):
        store.append_chunks("s1", i, [{"token": tokens[i % 1000]}])
    dt = time.perf_counter() - t0
    store.close()
    rows.append(
        (
            f"append_chunks, {single:,} chunks one per call",
            f"{dt:.2f} s = {single / dt:,.0f} chunks/s",
        )
    )
    return rows


def build_history(path: Path, jobs: int) -> float:
    rng = random.Random(2)
    store = HistoryStore(path)
    t_base = time.time() - jobs * 10
    t0 = time.perf_counter()
    batch: list[tuple[JobRecord, dict | None]] = []
    for i in range(jobs):
        status = rng.choice(STATUSES)
        submitted = t_base + i * 10
        rec = JobRecord(
            job_id=f"{i:08x}-1111-2222-3333-444455556666-u1",
            endpoint_id=f"ep{i % 4}",
            status=status,
            input={"prompt": f"request number {i}", "max_tokens": 128, "seed": i % 50},
            submitted_at=submitted,
            updated_at=submitted + 5,
            finished_at=submitted + 5 if status.terminal else None,
            delay_ms=rng.randint(10, 5000),
            execution_ms=rng.randint(100, 60000) if status.terminal else None,
            output={"text": "x" * rng.randint(20, 300), "tokens": rng.randint(1, 500)}
            if status is JobStatus.COMPLETED
            else None,
            error="worker exited with code 1" if status is JobStatus.FAILED else None,
            worker_id=f"w{i % 7}",
        )
        batch.append((rec, {"id": rec.job_id, "status": rec.status.value}))
        if len(batch) >= 1000:
            store.update_many(batch)
            batch.clear()
    if batch:
        store.update_many(batch)
    dt = time.perf_counter() - t0
    store.close()
    return dt


def bench_recent(directory: Path, jobs: int) -> list[tuple[str, str]]:
    path = directory / "history.sqlite3"
    build_s = build_history(path, jobs)
    size_mb = path.stat().st_size / 1e6
    rows = [
        (
            f"build {jobs:,} jobs (update_many, 1000 per transaction)",
            f"{build_s:.1f} s = {jobs / build_s:,.0f} jobs/s; file {size_mb:.0f} MB",
        )
    ]

    # Cold: a new process would open the file and read; drop what we can of caches by
    # opening a fresh store (the OS page cache stays warm: that is the usual case too).
    t0 = time.perf_counter()
    store = HistoryStore(path)
    t_open = time.perf_counter() - t0
    t_first, got = _timed(lambda: store.recent(10000))
    assert len(got) == 10000 and got[0].submitted_at >= got[-1].submitted_at  # type: ignore[union-attr]
    rows.append(
        (
            f"open + first recent(10000) on {jobs:,} jobs",
            f"{(t_open + t_first) * 1000:.0f} ms (open {t_open * 1000:.0f} ms)",
        )
    )
    samples = [_timed(lambda: store.recent(10000))[0] for _ in range(5)]
    rows.append(("recent(10000) warm, median of 5", f"{statistics.median(samples) * 1000:.0f} ms"))
    t, _ = _timed(lambda: store.recent(10000, with_output=False), repeat=3)
    rows.append(("recent(10000, with_output=False)", f"{t * 1000:.0f} ms"))
    t, _ = _timed(lambda: store.recent(1000), repeat=3)
    rows.append(("recent(1000)", f"{t * 1000:.1f} ms"))
    t, _ = _timed(lambda: store.recent(10000, endpoint_id="ep2"), repeat=3)
    rows.append(("recent(10000, endpoint_id=...) (1 of 4 endpoints)", f"{t * 1000:.0f} ms"))
    t, act = _timed(lambda: store.active(), repeat=3)
    rows.append((f"active() ({len(act):,} live jobs)", f"{t * 1000:.0f} ms"))  # type: ignore[arg-type]
    t, _ = _timed(lambda: store.recent_inputs(20), repeat=3)
    rows.append(("recent_inputs(20)", f"{t * 1000:.1f} ms"))
    one = store.recent(1)[0]
    t, _ = _timed(lambda: store.update(one.copy(status=JobStatus.COMPLETED)), repeat=20)
    rows.append(("update() of one job (one commit)", f"{t * 1e6:.0f} µs"))
    t, pruned = _timed(lambda: store.prune(jobs * 10 / 2))
    rows.append((f"prune half ({pruned:,} jobs deleted)", f"{t * 1000:.0f} ms"))
    store.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--dir", type=Path, default=None, help="where to put the files")
    args = ap.parse_args()
    print(
        f"# store bench: python {platform.python_version()}, sqlite {sqlite3.sqlite_version},"
        f" {platform.machine()}, {platform.system()}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        rows = bench_chunks(directory, args.chunks) + bench_recent(directory, args.jobs)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
