"""StreamFollower: order, coalescing, resume after a drop, no duplicates, the end."""

from __future__ import annotations


from rpdash.core.clock import FakeClock
from rpdash.core.errors import NotFound, Unreachable
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import JobFinished, JobsEvent, StreamEvent
from rpdash.services.streams import DROPPED_MESSAGE, StreamFollower
from rpdash.store.history import HistoryStore
from tests.unit.test_services_fakes import FakeAPI, Recorder, settle


def stream_job(api: FakeAPI, store: HistoryStore, clock: FakeClock, script: list, **inp):
    j = api.add_job("ep", {"mock_return": inp.get("mock_return", "done"), "mock_delay": 0.01})
    api.streams[j.id] = script
    rec = JobRecord(j.id, "ep", mode="stream", submitted_at=clock.time())
    store.record_submitted(rec)
    return rec


def outputs(rec: Recorder, job_id: str) -> list:
    out = []
    expect = 0
    for e in rec.of(StreamEvent):
        if e.job_id != job_id:
            continue
        assert e.seq == expect, "events must be contiguous"
        out.extend(e.outputs)
        expect += len(e.outputs)
    return out


async def run_follower(f: StreamFollower, clock: FakeClock, seconds: float = 30) -> None:
    f.start()
    await clock.advance(seconds, step=0.01)
    await settle()


async def test_chunks_in_order_coalesced_and_stored(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    script = [list(range(0, 100)), 0.02, list(range(100, 150)), 0.5, list(range(150, 160)), "end"]
    job = stream_job(api, store, clock, script)
    f = StreamFollower(api, store, rec, clock, job)
    await run_follower(f, clock, 5)
    assert outputs(rec, job.job_id) == list(range(160))
    assert store.chunks(job.job_id) == list(range(160))
    data_events = [e for e in rec.of(StreamEvent) if e.outputs]
    # 160 chunks in three bursts: a few events, never one per chunk
    assert 2 <= len(data_events) <= 4
    times = [t for e, t in zip(rec.events, rec.times) if isinstance(e, StreamEvent) and e.outputs]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g >= 0.05 - 1e-9 for g in gaps)  # at most one batch per 50 ms
    assert f.done and store.get(job.job_id).chunk_count == 160


async def test_partial_batch_is_flushed_by_the_timer(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    job = stream_job(api, store, clock, [["a", "b"], 10.0, "end"])
    f = StreamFollower(api, store, rec, clock, job)
    f.start()
    await clock.advance(0.2, step=0.01)
    got = [(e.outputs, t) for e, t in zip(rec.events, rec.times) if isinstance(e, StreamEvent)]
    assert got and got[0][0] == ["a", "b"]
    assert got[0][1] - 1000.0 <= 0.06  # shown within 50 ms although the stream is idle
    await clock.advance(11, step=0.05)
    await f.stop()


async def test_end_updates_record_then_finished_then_done(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    job = stream_job(api, store, clock, [["x"], 0.1, ["y"], 0.2, "end"], mock_return=["x", "y"])
    f = StreamFollower(api, store, rec, clock, job)
    await run_follower(f, clock, 2)
    kinds = []
    for e in rec.events:
        if isinstance(e, JobsEvent) and any(r.terminal for r in e.jobs):
            kinds.append("jobs")
        elif isinstance(e, JobFinished):
            kinds.append("finished")
        elif isinstance(e, StreamEvent) and e.done:
            kinds.append("done")
    assert kinds == ["jobs", "finished", "done"]
    final = store.get(job.job_id)
    assert final.status is JobStatus.COMPLETED and final.output == ["x", "y"]
    assert rec.of(JobFinished)[0].job.output == ["x", "y"]
    done = rec.of(StreamEvent)[-1]
    assert done.done and done.seq == 2


async def test_first_chunk_marks_the_job_running(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    job = stream_job(api, store, clock, [["x"], 5.0, "end"])
    f = StreamFollower(api, store, rec, clock, job)
    f.start()
    await clock.advance(0.5, step=0.01)
    assert f.book.records[job.job_id].status is JobStatus.IN_PROGRESS
    await clock.advance(6, step=0.05)


async def test_dropped_stream_resumes_without_loss_or_duplicates(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    script = [
        [1, 2, 3],
        0.1,
        Unreachable("the connection dropped during /stream"),
        [4, 5],
        Unreachable("dropped again"),
        0.2,
        [6],
        "end",
    ]
    job = stream_job(api, store, clock, script)
    f = StreamFollower(api, store, rec, clock, job)
    await run_follower(f, clock, 10)
    assert outputs(rec, job.job_id) == [1, 2, 3, 4, 5, 6]
    assert store.chunks(job.job_id) == [1, 2, 3, 4, 5, 6]
    msgs = [e.message for e in rec.of(StreamEvent) if e.message]
    assert len(msgs) == 2 and all(m.startswith(DROPPED_MESSAGE) for m in msgs)
    assert f.drops == 2 and f.done


async def test_restart_continues_the_numbering(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    job = stream_job(api, store, clock, [["d", "e"], "end"])
    store.append_chunks(job.job_id, 0, ["a", "b", "c"])  # stored by an earlier run
    job = store.get(job.job_id)
    f = StreamFollower(api, store, rec, clock, job)
    await run_follower(f, clock, 2)
    first = [e for e in rec.of(StreamEvent) if e.outputs][0]
    assert first.seq == 3
    assert store.chunks(job.job_id) == ["a", "b", "c", "d", "e"]


async def test_unknown_stream_job_expires(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    old = JobRecord("old-1", "ep", mode="stream", submitted_at=clock.time() - 7200)
    store.record_submitted(old)
    api.streams["old-1"] = [NotFound("job old-1 not found (404)")]
    f = StreamFollower(api, store, rec, clock, old)
    f._started_at -= 60  # started long ago: no grace
    await run_follower(f, clock, 2)
    assert store.get("old-1").expired
    assert rec.of(StreamEvent)[-1].done


async def test_pause_stops_reading(clock, store) -> None:
    api = FakeAPI(clock)
    rec = Recorder(clock)
    job = stream_job(api, store, clock, [[1], 0.5, [2], 0.5, [3], "end"])
    f = StreamFollower(api, store, rec, clock, job)
    f.start()
    await clock.advance(0.2, step=0.01)
    f.pause()
    await clock.advance(5, step=0.05)
    assert outputs(rec, job.job_id) == [1]
    f.resume()
    await clock.advance(3, step=0.01)
    assert outputs(rec, job.job_id) == [1, 2, 3] and f.done
