"""StreamFollower and the end of a stream (issue 14): chunks that come with or after the
terminal status are all shown and stored, each exactly once, in order."""

from __future__ import annotations

from typing import Any

from rpdash.api.client import RunPodClient
from rpdash.core.errors import Unreachable
from rpdash.core.models import Job, JobStatus, StreamBatch
from rpdash.core.records import JobRecord
from rpdash.services.events import ProblemEvent, StreamEvent
from rpdash.services.streams import StreamFollower
from tests.unit.test_services_fakes import Recorder
from tests.unit.test_services_streams import outputs, run_follower

Batch = tuple[str, list[Any]]


class BatchAPI:
    """``/stream`` as the platform serves it: scripted replies (status, chunks) handed out
    one per call (draining); an exception in the script is a failed call. ``stream()`` is
    RunPodClient's own: it stops at the first terminal status, then asks /status."""

    base_url = "http://batches.invalid/v2"
    stream = RunPodClient.stream
    _check_ids = staticmethod(RunPodClient._check_ids)

    def __init__(self, clock: Any, replies: list[Batch | BaseException], output: Any) -> None:
        self.clock = clock
        self.replies = list(replies)
        self.output = output
        self.calls = 0
        self.last_status = "IN_QUEUE"

    async def stream_once(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> StreamBatch:
        self.calls += 1
        await self.clock.sleep(0.05)
        if not self.replies:
            return StreamBatch.model_validate({"status": self.last_status, "stream": []})
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        self.last_status, chunks = reply
        return StreamBatch.model_validate(
            {"status": self.last_status, "stream": [{"output": c} for c in chunks]}
        )

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job:
        return Job.model_validate({"id": job_id, "status": self.last_status, "output": self.output})


def follower(api: BatchAPI, store, clock, rec: Recorder) -> StreamFollower:
    job = JobRecord("job-1", "ep", mode="stream", submitted_at=clock.time())
    store.record_submitted(job)
    return StreamFollower(api, store, rec, clock, job)


async def test_chunks_with_and_after_the_terminal_status_are_kept(clock, store) -> None:
    api = BatchAPI(
        clock,
        [
            ("IN_PROGRESS", [0, 1]),
            ("IN_PROGRESS", [2]),
            ("COMPLETED", [3, 4]),  # the last chunks ride with the terminal status
            ("COMPLETED", [5, 6]),  # and more come after it
            ("COMPLETED", [7]),
            ("COMPLETED", []),  # terminal and empty: the end
        ],
        output="all done",
    )
    rec = Recorder(clock)
    f = follower(api, store, clock, rec)
    await run_follower(f, clock, 5)
    assert outputs(rec, "job-1") == list(range(8))  # each once, in order
    assert store.chunks("job-1") == list(range(8))
    assert f.done and store.get("job-1").chunk_count == 8
    last = rec.of(StreamEvent)[-1]
    assert last.done and last.seq == 8  # the end is announced after the last chunk
    final = store.get("job-1")
    assert final.status is JobStatus.COMPLETED and final.output == "all done"
    assert api.calls == 6  # no read after the terminal, empty reply


async def test_a_failed_tail_read_is_retried_without_loss(clock, store) -> None:
    api = BatchAPI(
        clock,
        [
            ("IN_PROGRESS", ["a"]),
            ("COMPLETED", ["b"]),
            Unreachable("the connection dropped during /stream"),
            ("COMPLETED", ["c"]),
        ],
        output=None,
    )
    rec = Recorder(clock)
    f = follower(api, store, clock, rec)
    await run_follower(f, clock, 5)
    assert outputs(rec, "job-1") == ["a", "b", "c"]
    assert store.chunks("job-1") == ["a", "b", "c"]
    assert f.done and not rec.of(ProblemEvent)


async def test_tail_that_keeps_failing_ends_with_a_problem(clock, store) -> None:
    api = BatchAPI(
        clock,
        [("COMPLETED", ["a"])] + [Unreachable("down")] * 5,
        output=None,
    )
    rec = Recorder(clock)
    f = follower(api, store, clock, rec)
    await run_follower(f, clock, 30)
    assert outputs(rec, "job-1") == ["a"] and f.done
    assert any("end of the stream not read" in p.message for p in rec.of(ProblemEvent))


async def test_split_big_output_arrives_whole_and_once(clock, store) -> None:
    """Over 1 MB a chunk is split by the platform into several chunks (how a split is
    marked is not documented): every part is kept, once, in order."""
    big = ["x" * 700_000, "y" * 700_000]  # one 1.4 MB yield, as two chunks
    api = BatchAPI(clock, [("IN_PROGRESS", big[:1]), ("COMPLETED", big[1:])], output=None)
    rec = Recorder(clock)
    f = follower(api, store, clock, rec)
    await run_follower(f, clock, 5)
    assert "".join(outputs(rec, "job-1")) == "".join(big)
    assert store.chunks("job-1") == big
