"""What the real platform does that tracking must survive (issue 14), in simulated time.

Re-runs (a status going back to IN_QUEUE with ``retries`` growing), a job stuck IN_PROGRESS
after it completed, and workers that do not pick jobs in FIFO order: no finish missed, none
shown running for long after it ended, whichever queue-position strategy is used.
"""

from __future__ import annotations

import random

import pytest

from rpdash.core.clock import FakeClock
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobFinished, JobsEvent, ProblemEvent
from rpdash.services.tracking import FifoPositions, JobTracker, UnorderedPositions
from tests.unit.test_services_fakes import Recorder
from tests.unit.test_services_tracker import terminal_times
from tests.unit.timeline_api import TimelineAPI, pickup_timelines

T0 = 1000.0  # FakeClock's start


def track(tr: JobTracker, clock: FakeClock, job_id: str, ep: str = "ep") -> JobRecord:
    rec = JobRecord(job_id, ep, submitted_at=clock.time(), updated_at=clock.time())
    tr.book.add(rec, submitted=True, emit=False)
    tr.track(rec, fresh=True)
    return rec


def tracking(
    api: TimelineAPI, store, clock: FakeClock, job_ids: list[str], **kw
) -> tuple[JobTracker, Recorder]:
    """A started tracker (interval 1 s) following ``job_ids``, and its events."""
    rec = Recorder(clock)
    tr = JobTracker(api, store, rec, clock, interval=1.0, **kw)
    tr.start()
    for jid in job_ids:
        track(tr, clock, jid)
    return tr, rec


def changes_of(rec: Recorder, job_id: str) -> list[JobRecord]:
    return [r for e in rec.of(JobsEvent) for r in e.jobs if r.job_id == job_id]


def rerun_timeline(api: TimelineAPI, job_id: str, ep: str = "ep") -> None:
    """Runs at 1 s, its worker dies at 3 s (back in the queue, retries 1), runs again at
    5 s, completes at 8 s."""
    api.add(
        job_id,
        ep,
        [
            (T0, {"status": "IN_QUEUE"}),
            (T0 + 1, {"status": "IN_PROGRESS", "running_since": T0 + 1, "output": "50%"}),
            (T0 + 3, {"status": "IN_QUEUE", "retries": 1}),
            (T0 + 5, {"status": "IN_PROGRESS", "running_since": T0 + 5, "retries": 1}),
            (T0 + 8, {"status": "COMPLETED", "executionTime": 3000, "output": "ok", "retries": 1}),
        ],
    )


# ---------------------------------------------------------------- a. re-run jobs


async def test_rerun_job_goes_back_to_the_queue_and_keeps_its_retries(clock, store) -> None:
    api = TimelineAPI(clock)
    rerun_timeline(api, "job-r")
    tr, rec = tracking(api, store, clock, ["job-r"])
    tr.set_visible(["job-r"])
    await clock.advance(4.5, step=0.1)
    queued = tr.records["job-r"]
    assert queued.status is JobStatus.IN_QUEUE and queued.retries == 1
    assert queued.progress is None  # the dead run's "50%" is not shown on a queued job
    await clock.advance(10, step=0.1)
    statuses = [r.status for r in changes_of(rec, "job-r")]
    statuses = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
    assert statuses == [
        JobStatus.IN_PROGRESS,
        JobStatus.IN_QUEUE,
        JobStatus.IN_PROGRESS,
        JobStatus.COMPLETED,
    ]
    final = tr.records["job-r"]
    assert final.output == "ok" and final.retries == 1
    assert store.get("job-r").retries == 1
    assert len(rec.of(JobFinished)) == 1 and not rec.of(ProblemEvent)
    assert terminal_times(rec)["job-r"] - (T0 + 8) <= 1.0
    await tr.stop()


async def test_rerun_in_a_fifo_lane_is_followed_and_does_not_unsettle_the_lane(
    clock, store
) -> None:
    """Off screen, among other jobs of the endpoint (health and probes in use): the re-run
    job is seen running again and finishing, and the others are seen finishing on time."""
    api = TimelineAPI(clock)
    rerun_timeline(api, "job-r")
    others = [f"job-{i}" for i in range(6)]
    pickup_timelines(
        api, "ep", others, submitted=T0, workers=3, exec_time=lambda r: 2.0,
        pick=lambda r, q: 0,  # FIFO
    )  # fmt: skip
    tr, rec = tracking(api, store, clock, ["job-r", *others])
    await clock.advance(30, step=0.1)
    seen = terminal_times(rec)
    assert set(seen) == {"job-r", *others}
    assert seen["job-r"] - (T0 + 8) <= tr.max_step
    assert all(seen[j] - api.end_time(j) <= tr.max_step for j in others)
    assert tr.records["job-r"].retries == 1
    await tr.stop()


# ---------------------------------------------------------------- b. stuck IN_PROGRESS


def stuck_timeline(api: TimelineAPI, job_id: str) -> None:
    """Runs from 1 s with progress; completes at 4 s, but the status stays IN_PROGRESS with
    the final executionTime and output, for good."""
    api.add(
        job_id,
        "ep",
        [
            (T0, {"status": "IN_QUEUE"}),
            (T0 + 1, {"status": "IN_PROGRESS", "running_since": T0 + 1, "output": "working"}),
            (T0 + 4, {"status": "IN_PROGRESS", "executionTime": 3000, "output": {"answer": 42}}),
        ],
    )


@pytest.mark.parametrize("visible", [True, False])
async def test_job_stuck_in_progress_after_completion_is_finished(clock, store, visible) -> None:
    api = TimelineAPI(clock)
    stuck_timeline(api, "job-s")
    tr, rec = tracking(api, store, clock, ["job-s"])
    if visible:
        tr.set_visible(["job-s"])
    await clock.advance(30, step=0.1)
    final = tr.records["job-s"]
    assert final.status is JobStatus.COMPLETED and final.stuck_progress
    assert final.output == {"answer": 42} and final.progress is None
    assert not tr.is_tracking("job-s")
    assert [e.job.job_id for e in rec.of(JobFinished)] == ["job-s"]
    # seen within two checks of the end: at once on screen, within max_step off screen
    bound = 2 * tr.interval + 0.5 if visible else 2 * tr.max_step
    assert terminal_times(rec)["job-s"] - (T0 + 4) <= bound
    polls = api.per_job["job-s"]
    await clock.advance(60, step=1)
    assert api.per_job["job-s"] == polls  # never asked about again
    await tr.stop()


async def test_stuck_job_is_finished_when_the_endpoint_knows_execution_times(
    clock, store
) -> None:
    """Off screen, after another job of the endpoint finished (its execution times known):
    a stuck job's ``executionTime`` does not grow, so it looks like a short overdue job and
    is checked every ~0.6 s, closer than ``confirm_gap``. Those checks must still add up."""
    api = TimelineAPI(clock)
    api.add(
        "job-n",
        "ep",
        [
            (T0, {"status": "IN_QUEUE"}),
            (T0 + 0.5, {"status": "IN_PROGRESS", "running_since": T0 + 0.5}),
            (T0 + 1.5, {"status": "COMPLETED", "executionTime": 1000, "output": "ok"}),
        ],
    )
    stuck_timeline(api, "job-s")
    tr, rec = tracking(api, store, clock, ["job-n", "job-s"])
    await clock.advance(30, step=0.1)
    final = tr.records["job-s"]
    assert final.status is JobStatus.COMPLETED and final.stuck_progress
    assert final.output == {"answer": 42}
    assert terminal_times(rec)["job-s"] - (T0 + 4) <= 2 * tr.max_step
    await tr.stop()


async def test_running_job_with_unchanged_progress_is_not_called_stuck(clock, store) -> None:
    """Same progress output for 20 s, but executionTime grows: it is still running."""
    api = TimelineAPI(clock)
    api.add(
        "job-p",
        "ep",
        [
            (T0, {"status": "IN_QUEUE"}),
            (T0 + 1, {"status": "IN_PROGRESS", "running_since": T0 + 1, "output": "working"}),
            (T0 + 21, {"status": "COMPLETED", "executionTime": 20000, "output": "done"}),
        ],
    )
    tr, _ = tracking(api, store, clock, ["job-p"])
    tr.set_visible(["job-p"])
    await clock.advance(15, step=0.1)
    assert tr.records["job-p"].status is JobStatus.IN_PROGRESS
    await clock.advance(10, step=0.1)
    final = tr.records["job-p"]
    assert final.status is JobStatus.COMPLETED and final.output == "done"
    assert not final.stuck_progress
    await tr.stop()


async def test_selected_stuck_job_is_finished_by_the_long_poll(clock, store) -> None:
    api = TimelineAPI(clock)
    stuck_timeline(api, "job-s")
    tr, rec = tracking(api, store, clock, ["job-s"])
    tr.select("job-s")
    await clock.advance(15, step=0.1)
    assert tr.records["job-s"].stuck_progress and not tr.is_tracking("job-s")
    assert terminal_times(rec)["job-s"] - (T0 + 4) <= 2 * tr.sync_wait + 0.5
    await tr.stop()


# ---------------------------------------------------------------- d. pickup order


def newest_first(rng: random.Random, queue: list[str]) -> int:
    return len(queue) - 1


def at_random(rng: random.Random, queue: list[str]) -> int:
    return rng.randrange(len(queue))


def in_batches(rng: random.Random, queue: list[str]) -> int:
    """Workers take a random job among the first ten (a batch pulled at once)."""
    return rng.randrange(min(10, len(queue)))


@pytest.mark.parametrize("strategy", [FifoPositions, UnorderedPositions])
@pytest.mark.parametrize("pick", [at_random, newest_first, in_batches])
async def test_no_finish_missed_whatever_the_pickup_order(clock, strategy, pick) -> None:
    """60 jobs, 3 workers, 1-2 s each (the queue drains in about 30 s): every finish is
    shown, at most ``max_step`` + 1 s after it happened (5 s + 1 s at interval 1 s)."""
    api = TimelineAPI(clock)
    ids = [f"job-{i:02d}" for i in range(60)]
    pickup_timelines(
        api, "ep", ids, submitted=T0, workers=3, exec_time=lambda r: r.uniform(1, 2),
        pick=pick, seed=11,
    )  # fmt: skip
    tr, rec = tracking(api, None, clock, ids, positions=strategy())
    while tr.tracked and clock.now() < T0 + 120:
        await clock.advance(0.5, step=0.05)
    seen = terminal_times(rec)
    assert set(seen) == set(ids)  # none missed
    lags = sorted(seen[j] - api.end_time(j) for j in ids)
    assert lags[-1] <= tr.max_step + 1.0, lags[-5:]
    assert all(tr.records[j].output == f"done {j}" for j in ids)
    await tr.stop()


async def test_fifo_strategy_costs_no_more_on_a_fifo_queue(clock) -> None:
    """The self-correction stays asleep while the queue really is FIFO: queued jobs far
    back are not polled (the cheap path of issue 5 is kept)."""
    api = TimelineAPI(clock)
    ids = [f"job-{i:02d}" for i in range(60)]
    pickup_timelines(
        api, "ep", ids, submitted=T0, workers=3, exec_time=lambda r: r.uniform(1, 2),
        pick=lambda r, q: 0, seed=11,
    )  # fmt: skip
    tr, _ = tracking(api, None, clock, ids)
    await clock.advance(10, step=0.05)
    assert sum(api.per_job[j] for j in ids[40:]) == 0
    while tr.tracked and clock.now() < T0 + 120:
        await clock.advance(0.5, step=0.05)
    assert not tr.tracked
    assert api.calls["status"] / len(ids) <= 3.0
    await tr.stop()
