"""HealthPoller: scheduling, backoff, Retry-After, pause, refresh_now, no overlap (FakeClock)."""

from __future__ import annotations

import asyncio

import pytest

from rpdash.core.clock import FakeClock
from rpdash.core.errors import AuthError, NotFound, RateLimited, ServerError, Unreachable
from rpdash.core.models import Health
from rpdash.services.events import ConnState, HealthEvent
from rpdash.services.health import HealthPoller
from tests.unit.test_services_fakes import Recorder, settle


class ScriptedHealth:
    """``health()`` answers from a script: a Health, an exception, or a float (latency)."""

    base_url = "http://fake.invalid/v2"

    def __init__(self, clock: FakeClock, latency: float = 0.0) -> None:
        self.clock = clock
        self.latency = latency
        self.script: list[object] = []
        self.calls: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.n = 0

    async def health(self, endpoint_id: str) -> Health:
        self.calls.append(self.clock.now())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency:
                await self.clock.sleep(self.latency)
            step = self.script.pop(0) if self.script else None
            if isinstance(step, BaseException):
                raise step
            self.n += 1
            return Health.model_validate({"jobs": {"inQueue": self.n}, "workers": {"idle": 1}})
        finally:
            self.in_flight -= 1


def states(rec: Recorder) -> list[ConnState]:
    return [e.state for e in rec.of(HealthEvent)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def start(poller: HealthPoller) -> None:
    poller.start()
    await settle()


async def test_fetches_then_reschedules_at_interval(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    assert states(rec) == [ConnState.CONNECTING, ConnState.OK]
    assert rec.of(HealthEvent)[-1].health.jobs.inQueue == 1
    await clock.advance(4.9)
    assert len(api.calls) == 1
    await clock.advance(0.2)
    assert len(api.calls) == 2
    await clock.advance(20)
    assert len(api.calls) == 6
    gaps = [b - a for a, b in zip(api.calls, api.calls[1:])]
    assert all(g == pytest.approx(5.0) for g in gaps)
    await p.stop()


async def test_interval_floor_and_jitter(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    p = HealthPoller(api, "ep", Recorder(), clock, interval=0.1, min_interval=1.0, jitter=0.1)
    assert p.interval == 1.0
    await start(p)
    await clock.advance(30, step=0.05)
    gaps = [b - a for a, b in zip(api.calls, api.calls[1:])]
    assert gaps and min(gaps) >= 1.0 - 1e-9
    assert max(gaps) <= 1.1 + 1e-9
    assert len(set(round(g, 6) for g in gaps)) > 1  # jittered, not lock-step
    await p.stop()


async def test_never_overlaps_a_slow_fetch(clock: FakeClock) -> None:
    api = ScriptedHealth(clock, latency=7.0)  # slower than the interval
    p = HealthPoller(api, "ep", Recorder(), clock, interval=2.0, jitter=0)
    await start(p)
    for _ in range(5):
        p.refresh_now()
        await clock.advance(3, step=0.5)
    assert api.max_in_flight == 1
    await p.stop()


async def test_transient_errors_back_off_exponentially_and_keep_last_good(
    clock: FakeClock,
) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0, max_backoff=40)
    await start(p)
    good = rec.of(HealthEvent)[-1]
    api.script = [ServerError("boom 502", status_code=502)] * 6
    await clock.advance(5 + 5 + 10 + 20 + 40 + 40, step=1)
    errs = [e for e in rec.of(HealthEvent) if e.state is ConnState.RETRYING]
    assert [e.retry_in for e in errs] == [5, 10, 20, 40, 40, 40][: len(errs)]
    assert len(errs) >= 5
    for e in errs:  # the last good numbers stay, marked stale by last_ok_at
        assert e.health is good.health
        assert e.last_ok_at == good.last_ok_at
        assert "502" in (e.message or "")
    await clock.advance(60, step=1)
    assert rec.of(HealthEvent)[-1].state is ConnState.OK  # recovered
    await p.stop()


async def test_unreachable_state(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    api.script = [Unreachable("cannot reach host")]
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    ev = rec.of(HealthEvent)[-1]
    assert ev.state is ConnState.UNREACHABLE and ev.retry_in == 5.0 and ev.health is None
    await p.stop()


async def test_retry_after_is_honoured_even_by_refresh_now(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    api.script = [RateLimited("429", retry_after=12.0)]
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    ev = rec.of(HealthEvent)[-1]
    assert ev.state is ConnState.RATE_LIMITED and ev.retry_in == 12.0
    p.refresh_now()
    await clock.advance(11.9, step=0.5)
    assert len(api.calls) == 1
    await clock.advance(0.2)
    assert len(api.calls) == 2
    assert rec.of(HealthEvent)[-1].state is ConnState.OK
    await p.stop()


async def test_rejected_key_retries_slowly_and_recovers(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    api.script = [AuthError("RunPod rejected the API key (401)")] * 2
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    ev = rec.of(HealthEvent)[-1]
    assert ev.state is ConnState.KEY_REJECTED and ev.retry_in == 30.0
    await clock.advance(29)
    assert len(api.calls) == 1
    await clock.advance(31)
    assert len(api.calls) == 3  # kept trying every 30 s; the third answer is good
    assert rec.of(HealthEvent)[-1].state is ConnState.OK
    await p.stop()


async def test_unknown_endpoint_is_not_found(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    api.script = [NotFound("endpoint x not found (404)")]
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    assert rec.of(HealthEvent)[-1].state is ConnState.NOT_FOUND
    await p.stop()


async def test_pause_stops_fetching_and_resume_fetches_at_once(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    p.pause()
    await settle()
    assert rec.of(HealthEvent)[-1].state is ConnState.PAUSED
    await clock.advance(120, step=5)
    assert len(api.calls) == 1
    p.resume()
    await settle()
    assert len(api.calls) == 2
    assert rec.of(HealthEvent)[-1].state is ConnState.OK
    await p.stop()


async def test_refresh_now_wakes_the_sleep(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    p = HealthPoller(api, "ep", Recorder(), clock, interval=30.0, min_interval=1.0, jitter=0)
    await start(p)
    await clock.advance(2)
    p.refresh_now()
    await settle()
    assert len(api.calls) == 2 and api.calls[1] == pytest.approx(clock.now())
    # pressed again at once: waits for the 1 s floor, then fetches (never a burst)
    p.refresh_now()
    await settle()
    assert len(api.calls) == 2
    await clock.advance(1.0)
    assert len(api.calls) == 3
    await p.stop()


async def test_offer_counts_as_a_fetch(clock: FakeClock) -> None:
    api = ScriptedHealth(clock)
    rec = Recorder(clock)
    p = HealthPoller(api, "ep", rec, clock, interval=5.0, jitter=0)
    await start(p)
    await clock.advance(4)
    p.offer(Health.model_validate({"jobs": {"inQueue": 42}}))
    await clock.advance(4)
    assert len(api.calls) == 1  # its own fetch moved back
    assert rec.of(HealthEvent)[-1].health.jobs.inQueue == 42
    await clock.advance(2)
    assert len(api.calls) == 2
    await p.stop()


async def test_stop_cancels_cleanly(clock: FakeClock) -> None:
    api = ScriptedHealth(clock, latency=3.0)
    p = HealthPoller(api, "ep", Recorder(), clock, interval=5.0)
    p.start()
    await settle()
    await p.stop()
    await settle()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []
