"""JobTracker scheduling against a FIFO fake of the API on a FakeClock.

What a user would notice: finished jobs show as finished soon, are never asked about again,
only changes produce events, expired jobs say so, on-screen jobs come first, and a big batch
does not hammer the API (the issue-5 target, in simulated time).
"""

from __future__ import annotations

import asyncio


from rpdash.core.clock import FakeClock
from rpdash.core.errors import RateLimited, ServerError
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobFinished, JobsEvent, ProblemEvent
from rpdash.services.tracking import EXPIRED_MESSAGE, JobTracker
from rpdash.store.history import HistoryStore, StoreError
from tests.unit.test_services_fakes import FakeAPI, Recorder, settle


def submit(api: FakeAPI, tr: JobTracker, clock: FakeClock, ep: str = "ep", **inp) -> JobRecord:
    j = api.add_job(ep, inp or None)
    rec = JobRecord(j.id, ep, submitted_at=clock.time(), updated_at=clock.time())
    tr.book.add(rec, submitted=True, emit=False)
    tr.track(rec, fresh=True)
    return rec


def terminal_times(rec: Recorder) -> dict[str, float]:
    out: dict[str, float] = {}
    for ev, t in zip(rec.events, rec.times):
        if isinstance(ev, JobsEvent):
            for r in ev.jobs:
                if r.terminal and r.job_id not in out:
                    out[r.job_id] = t
    return out


async def test_finished_jobs_are_never_polled_again(clock, store) -> None:
    api = FakeAPI(clock, workers=3, exec_time=1.5)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(3)]
    done = JobRecord("old", "ep", status=JobStatus.COMPLETED)
    tr.track(done)  # terminal: not tracked at all
    await clock.advance(10, step=0.1)
    assert not tr.tracked
    assert "old" not in api.per_job
    counts = {j.job_id: api.per_job[j.job_id] for j in jobs}
    await clock.advance(60, step=1)
    assert {j.job_id: api.per_job[j.job_id] for j in jobs} == counts
    for j in jobs:
        r = store.get(j.job_id)
        assert r is not None and r.status is JobStatus.COMPLETED and r.output == "Hello World!"
        assert r.execution_ms == 1500 and r.delay_ms == 0
        assert [s for _, s in store.status_log(j.job_id)][-1] == "COMPLETED"
    await tr.stop()


async def test_only_changes_are_emitted_and_finish_once(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=20.0, report_times_in_progress=False)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    r = submit(api, tr, clock)
    tr.set_visible([r.job_id])  # polled every second while it runs
    await clock.advance(10, step=0.25)
    polls = api.per_job[r.job_id]
    assert polls >= 5
    changes = [x for e in rec.of(JobsEvent) for x in e.jobs if x.job_id == r.job_id]
    assert [x.status for x in changes] == [JobStatus.IN_PROGRESS]  # not one per poll
    await clock.advance(15, step=0.25)
    finished = rec.of(JobFinished)
    assert len(finished) == 1 and finished[0].job.status is JobStatus.COMPLETED
    await tr.stop()


async def test_progress_of_a_visible_job_is_shown(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=8.0)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    r = submit(api, tr, clock, mock_progress=["10%", "50%", "90%"], mock_delay=9)
    tr.set_visible([r.job_id])
    await clock.advance(20, step=0.25)
    progress = [x.progress for e in rec.of(JobsEvent) for x in e.jobs if x.progress]
    assert list(dict.fromkeys(progress)) == ["10%", "50%", "90%"]
    final = tr.records[r.job_id]
    assert final.status is JobStatus.COMPLETED and final.output == "Hello World!"
    await tr.stop()


async def test_queued_jobs_behind_the_fifo_are_not_polled(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=5.0)
    tr = JobTracker(api, store, Recorder(clock), clock, interval=1.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(10)]
    await clock.advance(12, step=0.1)
    # two ran (0-5 s, 5-10 s); the last five never needed a request
    assert sum(api.per_job[j.job_id] for j in jobs[5:]) == 0
    await clock.advance(60, step=0.1)
    assert not tr.tracked
    # once the endpoint's execution time is known, a job costs two or three requests
    assert max(api.per_job[j.job_id] for j in jobs[3:]) <= 3
    await tr.stop()


async def test_404_marks_expired(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    gone = JobRecord("gone-1", "ep", status=JobStatus.IN_PROGRESS, submitted_at=clock.time() - 3600)
    tr.book.add(gone, emit=False)
    tr.track(gone)
    await clock.advance(5, step=0.1)
    r = tr.records["gone-1"]
    assert r.expired and r.terminal and r.error == EXPIRED_MESSAGE
    assert store.get("gone-1").expired
    assert [e.job.job_id for e in rec.of(JobFinished)] == ["gone-1"]
    n = api.per_job["gone-1"]
    await clock.advance(30, step=1)
    assert api.per_job["gone-1"] == n == 1
    await tr.stop()


async def test_404_just_after_submit_is_retried(clock, store) -> None:
    api = FakeAPI(clock, exec_time=1.0)
    api.invisible_for = 2.0  # /status does not know the job for 2 s (eventual consistency)
    tr = JobTracker(api, store, Recorder(clock), clock, interval=1.0)
    tr.start()
    r = submit(api, tr, clock)
    tr.set_visible([r.job_id])
    await clock.advance(10, step=0.1)
    final = tr.records[r.job_id]
    assert not final.expired and final.status is JobStatus.COMPLETED
    await tr.stop()


async def test_visible_jobs_go_first(clock, store) -> None:
    api = FakeAPI(clock, workers=100, exec_time=30.0, latency=0.5)
    tr = JobTracker(api, store, Recorder(clock), clock, interval=1.0, concurrency=1)
    ids = []
    for _ in range(20):
        j = api.add_job("ep")
        rec = JobRecord(j.id, "ep", status=JobStatus.UNKNOWN, extra={"watched": True})
        tr.track(rec)  # position unknown: all due at once
        ids.append(j.id)
    visible = ids[15:]
    tr.set_visible(visible)
    tr.start()
    await clock.advance(3, step=0.05)
    first = list(api.per_job)[:5]  # dict order = first request per job
    assert first == visible
    await tr.stop()


async def test_rate_limit_pauses_the_endpoint(clock, store) -> None:
    api = FakeAPI(clock, workers=5, exec_time=30.0)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(5)]
    tr.set_visible([j.job_id for j in jobs])
    await clock.advance(3, step=0.1)
    api.fail_next["status"] = [RateLimited("429", retry_after=10.0)]
    await clock.advance(1.5, step=0.1)
    before = api.calls["status"]  # the polls already on their way when the 429 came
    await clock.advance(8, step=0.1)
    assert api.calls["status"] == before  # nothing during Retry-After
    await clock.advance(3, step=0.1)
    assert api.calls["status"] > before
    assert any("rate limited" in p.message for p in rec.of(ProblemEvent))
    assert tr.stats.rate_limited == 1
    await tr.stop()


async def test_transient_error_keeps_the_job(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=3.0)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    r = submit(api, tr, clock)
    tr.set_visible([r.job_id])
    api.fail_next["status"] = [ServerError("502 bad gateway", status_code=502)] * 3
    await clock.advance(30, step=0.1)
    assert tr.records[r.job_id].status is JobStatus.COMPLETED
    assert any("502" in p.message for p in rec.of(ProblemEvent))
    await tr.stop()


class BrokenStore(HistoryStore):
    def update_many(self, items):  # noqa: ANN001
        raise StoreError("cannot write job history at /x: disk is full")


async def test_store_errors_become_a_problem_and_tracking_goes_on(clock) -> None:
    store = BrokenStore(None, clock=clock)
    api = FakeAPI(clock, workers=2, exec_time=1.0)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(3)]
    await clock.advance(20, step=0.1)
    assert all(tr.records[j.job_id].status is JobStatus.COMPLETED for j in jobs)
    problems = [p for p in rec.of(ProblemEvent) if "disk is full" in p.message]
    assert len(problems) == 1  # said once, not per write
    assert len(rec.of(JobFinished)) == 3
    await tr.stop()
    store.close()


async def test_selected_job_ends_at_once_via_status_sync(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=7.3)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=2.0)
    tr.start()
    r = submit(api, tr, clock)
    tr.select(r.job_id)
    await clock.advance(20, step=0.5)
    done = terminal_times(rec)[r.job_id]
    assert done - api.jobs[r.job_id].finished < 1e-6  # the long-poll answered at the end
    assert api.calls["status-sync"] >= 1 and api.calls["status-sync"] <= 6
    await tr.stop()


async def test_pause_stops_polling(clock, store) -> None:
    api = FakeAPI(clock, workers=1, exec_time=10.0)
    tr = JobTracker(api, store, Recorder(clock), clock, interval=1.0)
    tr.start()
    r = submit(api, tr, clock)
    tr.set_visible([r.job_id])
    await clock.advance(3, step=0.1)
    tr.pause()
    n = api.calls["status"]
    await clock.advance(30, step=0.5)
    assert api.calls["status"] == n
    tr.resume()
    await clock.advance(2, step=0.1)
    assert tr.records[r.job_id].status is JobStatus.COMPLETED
    await tr.stop()


async def test_two_thousand_jobs_fifty_workers(clock) -> None:
    """Issue 5, in simulated time: 2,000 jobs of 1-2 s on 50 workers."""
    api = FakeAPI(clock, workers=50, exec_time=lambda r, i: r.uniform(1, 2), seed=7)
    rec = Recorder(clock)
    tr = JobTracker(api, None, rec, clock, interval=2.0, concurrency=8)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(2000)]
    selected = jobs[1000].job_id
    tr.select(selected)
    tr.set_visible([j.job_id for j in jobs[-30:]])
    while tr.tracked and clock.now() < 1000 + 300:
        await clock.advance(0.5, step=0.02)
    seen = terminal_times(rec)
    assert len(seen) == 2000
    lags = sorted(seen[j.job_id] - api.jobs[j.job_id].finished for j in jobs)
    assert lags[int(0.95 * len(lags))] <= 5.0
    assert seen[selected] - api.jobs[selected].finished <= 1.0
    assert api.throttled == 0 and tr.stats.rate_limited == 0
    assert (api.calls["status"] + api.calls["status-sync"]) / 2000 <= 3.0
    await tr.stop()


async def test_stop_leaves_no_task_behind(clock, store) -> None:
    api = FakeAPI(clock, workers=2, exec_time=5.0, latency=0.3)
    tr = JobTracker(api, store, Recorder(clock), clock, interval=1.0)
    tr.start()
    jobs = [submit(api, tr, clock) for _ in range(5)]
    tr.select(jobs[0].job_id)
    tr.set_visible([j.job_id for j in jobs])
    await clock.advance(2.2, step=0.1)
    await tr.stop()
    await settle()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_job_unselected_mid_long_poll_is_still_polled(clock, store) -> None:
    """Selecting another job while the first one's /status-sync is on its way cancels
    that request; the first job must go back to the regular polls, not drop out."""
    api = FakeAPI(clock, workers=2, exec_time=6.0)
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0)
    tr.start()
    a, b = submit(api, tr, clock), submit(api, tr, clock)
    tr.select(a.job_id)
    await clock.advance(0.5, step=0.05)  # a's long-poll is in flight
    tr.select(b.job_id)
    await clock.advance(0.5, step=0.05)
    tr.select(a.job_id)
    await clock.advance(0.2, step=0.05)
    tr.select(b.job_id)  # churn, as fast cursor moves make it
    await clock.advance(30, step=0.5)
    assert tr.records[a.job_id].status is JobStatus.COMPLETED
    assert tr.records[b.job_id].status is JobStatus.COMPLETED
    await tr.stop()
