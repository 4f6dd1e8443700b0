"""Core models and the fake clock: the tolerant parsing every other layer relies on."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from rpdash.core.clock import FakeClock
from rpdash.core.models import (
    Health,
    Job,
    JobStatus,
    Policy,
    RunRequest,
    StreamBatch,
    is_safe_id,
)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("IN_QUEUE", JobStatus.IN_QUEUE),
        ("completed", JobStatus.COMPLETED),
        ("RUNNING", JobStatus.IN_PROGRESS),  # doc artefact mapped, per runpod-api.md 5.1
        ("ERROR", JobStatus.UNKNOWN),
        (None, JobStatus.UNKNOWN),
        (42, JobStatus.UNKNOWN),
    ],
)
def test_status_parse(raw, expected):
    assert JobStatus.parse(raw) is expected


def test_terminal_and_allowed_actions():
    assert {s for s in JobStatus if s.terminal} == {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.TIMED_OUT,
    }
    assert not JobStatus.UNKNOWN.terminal  # an unknown status keeps being tracked
    assert JobStatus.FAILED.retryable and JobStatus.TIMED_OUT.retryable
    assert not JobStatus.COMPLETED.retryable
    assert JobStatus.IN_QUEUE.cancellable and not JobStatus.CANCELLED.cancellable


def test_job_keeps_unknown_fields_and_raw_status():
    job = Job.model_validate(
        {"id": "abc-u1", "status": "SOMETHING_NEW", "delayTime": "12", "extraField": {"a": 1}}
    )
    assert job.status is JobStatus.UNKNOWN
    assert job.raw_status == "SOMETHING_NEW"
    assert job.delayTime == 12
    assert job.raw()["extraField"] == {"a": 1}


def test_job_tolerates_junk_numbers_and_nulls():
    job = Job.model_validate(
        {"id": 7, "status": "IN_PROGRESS", "delayTime": 1e300, "executionTime": None, "retries": "x"}
    )
    assert job.id == "7"
    assert job.delayTime is None and job.executionTime is None and job.retries is None


def test_job_without_id_is_rejected():
    with pytest.raises(ValidationError):
        Job.model_validate({"status": "COMPLETED"})


def test_health_missing_negative_and_null_counts():
    h = Health.model_validate({"jobs": None, "workers": {"idle": -3, "running": "2", "new": 5}})
    assert h.jobs.inQueue == 0
    assert h.workers.idle == 0  # never negative on screen
    assert h.workers.running == 2
    assert h.workers.unhealthy == 0  # missing keys are 0


def test_stream_batch_wraps_bare_items():
    b = StreamBatch.model_validate({"status": "IN_PROGRESS", "stream": [{"output": "a"}, "b"]})
    assert [c.output for c in b.stream] == ["a", "b"]
    with pytest.raises(ValidationError):
        StreamBatch.model_validate({"status": "IN_PROGRESS", "stream": "nope"})


def test_run_request_body_only_has_what_was_set():
    req = RunRequest(input={"prompt": "hi"}, policy=Policy(ttl=60_000, lowPriority=True))
    assert req.body() == {"input": {"prompt": "hi"}, "policy": {"ttl": 60_000, "lowPriority": True}}
    assert RunRequest(input={}).body() == {"input": {}}


@pytest.mark.parametrize("kw", [{"ttl": 5}, {"executionTimeout": -1}, {"ttl": 10**12}])
def test_policy_ranges(kw):
    with pytest.raises(ValidationError):
        Policy(**kw)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("jpnw0v75y3qoql", True),
        ("mock-stream", True),
        ("60902e6c-08a1-426e-9cb9-9eaec90f5e2b-u1", True),
        ("ep_abc123", True),
        ("a/b", False),
        ("..", False),
        ("a..b", False),
        ("x?y", False),
        ("x#y", False),
        ("with space", False),
        ("", False),
        ("%2e%2e", False),
    ],
)
def test_safe_ids(value, ok):
    assert is_safe_id(value) is ok


async def test_fake_clock_wakes_sleepers_in_order():
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, s: float) -> None:
        await clock.sleep(s)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 5)), asyncio.create_task(sleeper("early", 1))]
    await clock.advance(0.5)
    assert woke == []
    await clock.advance(4.5)
    assert woke == ["early", "late"]
    await asyncio.gather(*tasks)


async def test_fake_clock_step_honours_chained_sleeps():
    clock = FakeClock()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(3):
            await clock.sleep(1)
            ticks.append(clock.now())

    t = asyncio.create_task(ticker())
    start = clock.now()
    await clock.advance(3, step=0.5)
    await t
    assert [round(x - start, 6) for x in ticks] == [1.0, 2.0, 3.0]


def test_redact_masks_long_keys_anywhere_and_short_keys_only_as_tokens() -> None:
    from rpdash.core.redact import redact

    key = "rpa_0123456789ABCDEF"
    assert redact(f"Authorization: Bearer {key}x", key) == "Authorization: Bearer ***x"
    # a one-letter test key must not mangle the words around it
    assert redact("job not found on endpoint mock; check k", "k") == (
        "job not found on endpoint mock; check ***"
    )
    assert redact("nothing here", None) == "nothing here"


def test_mask_shows_which_key_without_giving_it_away() -> None:
    from rpdash.core.redact import mask

    assert mask("rp_ABCDEFGHIJKLMNOPQRSTa1b2") == "rp_…a1b2"
    assert mask("0123456789abcdefWXYZ") == "…WXYZ"
    assert mask("rp_short") == "rp_…"  # too short to show any of it
    assert mask("KEY") == "…" and mask("") == "" and mask(None) == ""
