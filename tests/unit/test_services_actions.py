"""Submit / cancel / retry / purge: what is refused before any request, and what the user
sees afterwards (records, store, tracking)."""

from __future__ import annotations

import json

import pytest

from rpdash.core.clock import FakeClock
from rpdash.core.errors import BadRequest, InvalidInput
from rpdash.core.models import JobStatus, Policy
from rpdash.core.records import JobRecord
from rpdash.services.actions import Actions, ReadOnly
from rpdash.services.tracking import JobBook, JobTracker
from rpdash.services.validation import build_request, parse_input
from rpdash.store.history import HistoryStore
from tests.unit.test_services_fakes import FakeAPI, Recorder, settle


class Rig:
    def __init__(self, clock: FakeClock, store: HistoryStore, *, readonly: bool = False,
                 workers: int = 1, exec_time: float = 2.0) -> None:  # fmt: skip
        self.clock = clock
        self.store = store
        self.api = FakeAPI(clock, workers=workers, exec_time=exec_time)
        self.sink = Recorder(clock)
        self.book = JobBook(store, self.sink, clock)
        self.tracker = JobTracker(self.api, store, self.sink, clock, interval=1.0, book=self.book)
        self.started: list[str] = []
        self.actions = Actions(
            self.api, self.book, self.tracker, clock, readonly=readonly,
            start_follower=lambda rec: self.started.append(rec.job_id),
        )  # fmt: skip
        self.tracker.start()

    async def close(self) -> None:
        await self.actions.stop()
        await self.tracker.stop()


@pytest.fixture
async def rig(clock, store):
    r = Rig(clock, store)
    yield r
    await r.close()


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"a": 1,\n "b": }', "line 2, column 7"),
        ('{"a" 1}', "line 1, column 6"),
        ("", "empty"),
        ("   \n", "empty"),
        ("[1, 2]", "got a list"),
        ('"hello"', "got a string"),
        ("42", "got a number"),
        ('{"x": NaN}', "NaN"),
    ],
)
def test_bad_input_is_explained(text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_input(text)
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_good_input_parses() -> None:
    assert parse_input('{"prompt": "hi", "n": [1, 2]}') == {"prompt": "hi", "n": [1, 2]}


async def test_bad_json_sends_nothing(rig: Rig) -> None:
    with pytest.raises(InvalidInput, match="line 1, column"):
        await rig.actions.submit("ep", '{"prompt": "hi",}')
    assert sum(rig.api.calls.values()) == 0
    assert rig.store.recent() == []


async def test_payload_limits(rig: Rig) -> None:
    big = {"blob": "x" * 11_000_000}
    with pytest.raises(InvalidInput, match="10 MB"):
        await rig.actions.submit("ep", big)
    with pytest.raises(InvalidInput, match="20 MB"):
        await rig.actions.submit("ep", {"blob": "x" * 21_000_000}, mode="runsync")
    assert sum(rig.api.calls.values()) == 0
    # 11 MB is fine for runsync (20 MB)
    req = build_request(big, mode="runsync")
    assert len(req.input["blob"]) == 11_000_000


@pytest.mark.parametrize("eid", ["", "../etc", "a b", "ep/1", "x?y=1", "%2e%2e"])
async def test_bad_endpoint_ids(rig: Rig, eid: str) -> None:
    with pytest.raises(InvalidInput):
        await rig.actions.submit(eid, {"a": 1})
    assert sum(rig.api.calls.values()) == 0


async def test_policy_and_webhook_checks(rig: Rig) -> None:
    with pytest.raises(InvalidInput, match=r"policy.ttl must be between 10 s and 7 days"):
        await rig.actions.submit("ep", {"a": 1}, policy={"ttl": 5})
    with pytest.raises(InvalidInput, match="policy.executionTimeout"):
        await rig.actions.submit("ep", {"a": 1}, policy={"executionTimeout": 10**12})
    with pytest.raises(InvalidInput, match="unknown policy field"):
        await rig.actions.submit("ep", {"a": 1}, policy={"priority": 1})
    bad_hooks = ("ftp://x/y", "example.com/hook", "http://", "https://a b/c", "javascript:x")
    for hook in bad_hooks:
        with pytest.raises(InvalidInput, match="webhook"):
            await rig.actions.submit("ep", {"a": 1}, webhook=hook)
    with pytest.raises(InvalidInput, match="mode"):
        await rig.actions.submit("ep", {"a": 1}, mode="fast")
    assert sum(rig.api.calls.values()) == 0
    # a Policy built without validation is checked again
    sneaky = Policy.model_construct(ttl=1)
    with pytest.raises(InvalidInput, match="policy.ttl"):
        await rig.actions.submit("ep", {"a": 1}, policy=sneaky)


async def test_readonly_refuses_everything_that_changes_something(clock, store) -> None:
    r = Rig(clock, store, readonly=True)
    store.record_submitted(JobRecord("j-1", "ep", status=JobStatus.FAILED))
    r.book.load([store.get("j-1")])
    with pytest.raises(ReadOnly, match="read-only mode: cancel is disabled"):
        await r.actions.cancel(["j-1"])
    with pytest.raises(ReadOnly, match="read-only mode: purge is disabled"):
        await r.actions.purge("ep")
    with pytest.raises(ReadOnly, match="retry"):
        await r.actions.retry("j-1")
    with pytest.raises(ReadOnly, match="submit"):
        await r.actions.submit("ep", {"a": 1})
    assert isinstance(ReadOnly("x"), InvalidInput)
    assert sum(r.api.calls.values()) == 0
    await r.close()


# ---------------------------------------------------------------- submit


async def test_run_submit_is_stored_before_returning_and_tracked(rig: Rig) -> None:
    rec = await rig.actions.submit(
        "ep", '{"mock_return": "ok"}', policy={"ttl": 60_000, "lowPriority": True},
        webhook="https://example.com/hook",
    )  # fmt: skip
    stored = rig.store.get(rec.job_id)
    assert stored is not None and stored.status is JobStatus.IN_QUEUE
    assert stored.input == {"mock_return": "ok"} and stored.mode == "run"
    assert stored.extra["policy"] == {"ttl": 60_000, "lowPriority": True}
    assert rig.tracker.is_tracking(rec.job_id)
    await rig.clock.advance(10, step=0.1)
    assert rig.book.get(rec.job_id).status is JobStatus.COMPLETED
    assert rig.store.get(rec.job_id).output == "ok"


async def test_stream_submit_starts_a_follower(rig: Rig) -> None:
    rec = await rig.actions.submit("ep", {"mock_return": ["a"]}, mode="stream")
    assert rig.started == [rec.job_id]
    assert rig.store.get(rec.job_id).mode == "stream"
    await rig.clock.advance(5, step=0.1)
    assert rig.api.per_job[rec.job_id] == 0  # the follower reports it, not the tracker


async def test_runsync_returns_once_the_id_is_known(rig: Rig) -> None:
    rig.actions.runsync_wait_ms = 1_000
    rig.api.endpoint("ep", workers=1)
    import asyncio

    task = asyncio.ensure_future(rig.actions.submit("ep", {"mock_delay": 5}, mode="runsync"))
    await rig.clock.advance(1.05, step=0.05)
    assert task.done()
    rec = task.result()
    assert rec.mode == "runsync" and not rec.terminal
    assert rig.store.get(rec.job_id) is not None  # the id was stored at once
    await rig.clock.advance(6, step=0.05)
    assert rig.book.get(rec.job_id).status is JobStatus.COMPLETED
    assert rig.api.per_job[rec.job_id] <= 2  # followed by the runsync call, not polled
    assert not rig.tracker.is_tracking(rec.job_id)


async def test_quick_runsync_comes_back_finished(rig: Rig) -> None:
    import asyncio

    task = asyncio.ensure_future(rig.actions.submit("ep", {"mock_delay": 0.5}, mode="runsync"))
    await rig.clock.advance(1, step=0.05)
    rec = task.result()
    assert rec.status is JobStatus.COMPLETED and rec.output == "Hello World!"
    assert rig.store.get(rec.job_id).status is JobStatus.COMPLETED


# ---------------------------------------------------------------- cancel / retry / purge


async def test_cancel_several(rig: Rig) -> None:
    a = await rig.actions.submit("ep", {"mock_delay": 30})
    b = await rig.actions.submit("ep", {"mock_delay": 30})
    await rig.clock.advance(1, step=0.1)
    out = dict(await rig.actions.cancel([a.job_id, b.job_id, "nope-1", "bad id"]))
    assert out[a.job_id].status is JobStatus.CANCELLED  # was running
    assert out[b.job_id].status is JobStatus.CANCELLED  # was queued
    assert isinstance(out["nope-1"], InvalidInput)
    assert isinstance(out["bad id"], InvalidInput)
    assert rig.store.get(a.job_id).status is JobStatus.CANCELLED
    assert not rig.tracker.is_tracking(a.job_id)
    n = rig.api.calls["status"]
    await rig.clock.advance(20, step=0.5)
    assert rig.api.calls["status"] == n  # never polled again


async def test_cancel_of_a_finished_job_reports_what_the_api_says(rig: Rig) -> None:
    a = await rig.actions.submit("ep", {"mock_delay": 1})
    await rig.clock.advance(5, step=0.1)
    assert rig.book.get(a.job_id).status is JobStatus.COMPLETED
    (jid, res), = await rig.actions.cancel([a.job_id])
    # the fake answers CANCELLED for anything; the re-read status says COMPLETED
    assert res.status is JobStatus.COMPLETED


async def test_cancel_of_a_completed_star_job_clears_it_at_runpod_and_keeps_it_completed(rig: Rig) -> None:
    """A job rpdash shows COMPLETED* (RunPod still says IN_PROGRESS after it finished): the
    cancel goes to RunPod; rpdash keeps it COMPLETED with its output and notes it cleared."""
    from rpdash.services.tracking.quirks import CLEARED_KEY, still_stuck

    a = await rig.actions.submit("ep", {"mock_delay": 1})
    await rig.clock.advance(5, step=0.1)
    rig.book.change(a.job_id, stuck_progress=True, output={"frames": 3})
    n = rig.api.calls["cancel"]
    (jid, res), = await rig.actions.cancel([a.job_id])
    assert rig.api.calls["cancel"] == n + 1
    assert res.status is JobStatus.COMPLETED and res.output == {"frames": 3} and res.stuck_progress
    assert res.extra[CLEARED_KEY] == rig.clock.time() and not still_stuck(res)
    rig.book.flush()
    assert rig.store.get(a.job_id).extra[CLEARED_KEY] == rig.clock.time()  # kept in the history


async def test_retry_requeues_the_same_id(rig: Rig) -> None:
    a = await rig.actions.submit("ep", {"mock_error": True, "mock_delay": 1})
    await rig.clock.advance(5, step=0.1)
    assert rig.book.get(a.job_id).status is JobStatus.FAILED
    r = await rig.actions.retry(a.job_id)
    assert r.job_id == a.job_id and r.status is JobStatus.IN_QUEUE
    assert r.error is None and r.retries == 1
    assert rig.tracker.is_tracking(a.job_id)
    await rig.clock.advance(5, step=0.1)
    assert rig.book.get(a.job_id).status is JobStatus.COMPLETED


async def test_retry_refused_for_completed(rig: Rig) -> None:
    a = await rig.actions.submit("ep", {"mock_delay": 1})
    await rig.clock.advance(5, step=0.1)
    with pytest.raises(InvalidInput, match="only FAILED or TIMED_OUT"):
        await rig.actions.retry(a.job_id)
    assert rig.api.calls["retry"] == 0


async def test_retry_error_from_api_is_raised(rig: Rig) -> None:
    a = await rig.actions.submit("ep", {"mock_delay": 30})
    with pytest.raises(BadRequest):
        await rig.actions.retry(a.job_id)


async def test_purge_refreshes_queued_jobs(rig: Rig) -> None:
    running = await rig.actions.submit("ep", {"mock_delay": 20})
    queued = [await rig.actions.submit("ep", {"mock_delay": 20}) for _ in range(3)]
    await rig.clock.advance(1, step=0.1)
    res = await rig.actions.purge("ep")
    assert res.removed == 3
    await rig.clock.advance(0.5, step=0.05)
    for q in queued:
        assert rig.book.get(q.job_id).status is JobStatus.CANCELLED  # the fake's answer
    assert rig.book.get(running.job_id).status is JobStatus.IN_PROGRESS


async def test_store_failure_on_submit_is_a_problem_not_a_crash(clock) -> None:
    class NoWrite(HistoryStore):
        def record_submitted(self, rec):  # noqa: ANN001
            from rpdash.store.history import StoreError

            raise StoreError("cannot write job history at /x: database is read-only")

    store = NoWrite(None, clock=clock)
    r = Rig(clock, store)
    rec = await r.actions.submit("ep", {"a": 1})
    await settle()
    assert r.book.get(rec.job_id) is not None
    assert any("read-only" in p.message for p in r.sink.events if hasattr(p, "severity"))
    await r.close()
    store.close()


def test_body_size_matches_the_client() -> None:
    req = build_request({"k": "é" * 10})
    body = json.dumps(req.body(), separators=(",", ":"), ensure_ascii=False).encode()
    from rpdash.services.validation import body_size

    assert body_size(req) == len(body)
