"""The Session stores every good /health answer as a sample (MetricsStore), prunes old ones
with the history's retention, never lets the samples stop the dashboard, and can watch one
more endpoint while running (endpoint picker, favourites)."""

from __future__ import annotations


from rpdash.core.models import Health
from rpdash.services.events import ConnState, HealthEvent, ProblemEvent
from rpdash.services.session import Session
from rpdash.store.metrics_store import MetricsStore
from tests.unit.test_services_fakes import FakeAPI, Recorder, settle


def make(api, store, clock, **kw) -> tuple[Session, Recorder]:
    rec = Recorder(clock)
    s = Session(client=api, store=store, endpoints=["ep"], sink=rec, clock=clock,
                health_interval=5.0, status_interval=1.0, **kw)  # fmt: skip
    return s, rec


async def test_each_health_answer_is_stored_once(clock, store) -> None:
    api = FakeAPI(clock)
    s, _ = make(api, store, clock)
    await s.start()
    await settle()
    await clock.advance(30, step=1)
    samples = MetricsStore(store).health_samples("ep", 0)
    assert len(samples) == api.calls["health"] >= 5
    assert len({x.at for x in samples}) == len(samples)
    # a stale repeat of the last answer (endpoint unreachable) is not stored again
    last = s.health["ep"]
    s._emit(HealthEvent("ep", ConnState.RETRYING, last.health, last.last_ok_at, 4.0, "502"))
    assert len(MetricsStore(store).health_samples("ep", 0)) == len(samples)
    await s.stop()


async def test_old_samples_are_pruned_at_start(clock, store) -> None:
    ms = MetricsStore(store)
    h = Health.model_validate({"jobs": {"inQueue": 3}, "workers": {"running": 1}})
    now = clock.time()
    ms.record_health("ep", h, at=now - 40 * 86400)
    ms.record_health("ep", h, at=now - 60)
    s, _ = make(FakeAPI(clock), store, clock, metrics_retention_s=30 * 86400)
    await s.start()
    assert [x.at for x in ms.health_samples("ep", 0, now)] == [now - 60]
    await s.stop()


async def test_a_broken_sample_store_is_one_problem_not_a_crash(clock, store) -> None:
    api = FakeAPI(clock)
    s, rec = make(api, store, clock)

    class Broken:
        calls = 0

        def record_health(self, *a, **k):
            Broken.calls += 1
            raise OSError("disk full")

        def prune_health(self, *a):
            return 0

    s.metrics = Broken()
    await s.start()
    await clock.advance(20, step=1)
    assert Broken.calls == 1  # tried once, then left alone
    assert [e for e in rec.of(ProblemEvent) if "health trends" in e.message]
    assert s.health["ep"].state is ConnState.OK  # health keeps flowing
    await s.stop()


async def test_watch_one_more_endpoint_while_running(clock, store) -> None:
    api = FakeAPI(clock)
    s, _ = make(api, store, clock)
    await s.start()
    assert s.add_endpoint("ep2") is True
    assert s.add_endpoint("ep2") is False
    await settle()
    await clock.advance(6, step=1)
    assert "ep2" in s.pollers and s.health["ep2"].state is ConnState.OK
    assert MetricsStore(store).health_samples("ep2", 0)
    await s.stop()


async def test_no_pollers_without_health(clock, store) -> None:
    s, _ = make(FakeAPI(clock), store, clock, poll_health=False)
    await s.start()
    assert s.pollers == {}
    assert s.add_endpoint("ep2") is True and s.pollers == {}
    await s.stop()
