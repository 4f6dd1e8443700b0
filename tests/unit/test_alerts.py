"""Alert rules and the engine: fire once after the hold, recover once, never repeat."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rpdash.core.clock import FakeClock
from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.alerts import (
    AlertEngine,
    AlertKind,
    AlertRules,
    exit_code,
    oldest_queued_age,
    rules_from_config,
)
from rpdash.services.events import ConnState
from rpdash.services.metrics import EndpointMetrics, LatencyStats
from rpdash.services.verdict import Verdict


def health(queue: int = 0, **workers: int) -> Health:
    return Health.model_validate({"jobs": {"inQueue": queue}, "workers": workers})


def engine(**rules: object) -> tuple[AlertEngine, FakeClock]:
    clock = FakeClock()
    return AlertEngine(rules_from_config(rules), clock), clock


def kinds(events: list) -> list[tuple[str, str]]:
    return [(e.kind.value, e.rule) for e in events]


def test_queue_must_hold_for_its_time_then_fires_once() -> None:
    eng, clock = engine(queue_above=10, queue_for="60s")
    assert eng.observe("e", health=health(50)) == []
    clock.advance_sync(30)
    assert eng.observe("e", health=health(50)) == []
    clock.advance_sync(31)
    fired = eng.observe("e", health=health(50))
    assert kinds(fired) == [("fired", "queue")]
    assert fired[0].severity == "warn" and fired[0].message == "e: 50 jobs queued (over 10 for 1 min)"
    assert fired[0].at == clock.time()
    clock.advance_sync(600)
    assert eng.observe("e", health=health(80)) == [] and eng.tick() == []  # never repeats while it holds
    assert eng.severity("e") == "warn" and eng.exit_code() == 1


def test_a_dip_restarts_the_hold() -> None:
    eng, clock = engine(queue_above=10, queue_for=60)
    eng.observe("e", health=health(50))
    clock.advance_sync(50)
    eng.observe("e", health=health(2))
    clock.advance_sync(20)
    assert eng.observe("e", health=health(50)) == []
    clock.advance_sync(59)
    assert eng.tick() == []
    clock.advance_sync(1)
    assert kinds(eng.tick()) == [("fired", "queue")]


def test_recovers_once_after_being_clear_for_recover_for() -> None:
    eng, clock = engine(queue_above=10, queue_for=0, recover_for=30)
    assert kinds(eng.observe("e", health=health(11))) == [("fired", "queue")]
    clock.advance_sync(100)
    assert eng.observe("e", health=health(3)) == []
    clock.advance_sync(10)
    assert eng.observe("e", health=health(12)) == []  # back above: still the same incident
    assert eng.observe("e", health=health(3)) == []
    clock.advance_sync(30)
    rec = eng.tick()
    assert kinds(rec) == [("recovered", "queue")] and "recovered after 2 min 20 s" in rec[0].message
    assert rec[0].since == rec[0].at - 140
    assert eng.tick() == [] and eng.severity("e") == "ok" and eng.exit_code() == 0


def test_missing_inputs_leave_a_rule_as_it_is() -> None:
    eng, clock = engine(unhealthy_for=0, recover_for=0)
    assert kinds(eng.observe("e", health=health(0, unhealthy=1))) == [("fired", "unhealthy")]
    clock.advance_sync(300)
    assert eng.observe("e", problem=ConnState.UNREACHABLE) == []  # no new health: unhealthy holds
    assert eng.active("e")[0].rule == "unhealthy"


def test_no_answer_for_and_key_rejected_are_critical() -> None:
    eng, clock = engine(no_answer_for="2m", recover_for=0)
    eng.observe("e", problem=ConnState.UNREACHABLE)
    clock.advance_sync(119)
    assert eng.observe("e", problem=ConnState.RETRYING) == []
    clock.advance_sync(1)
    ev = eng.tick()
    assert kinds(ev) == [("fired", "no_answer")] and ev[0].severity == "critical"
    assert eng.exit_code() == 2
    assert kinds(eng.observe("e", problem=ConnState.OK)) == [("recovered", "no_answer")]
    assert kinds(eng.observe("e", problem=ConnState.KEY_REJECTED)) == [("fired", "key_rejected")]
    assert kinds(eng.observe("e", problem=ConnState.RATE_LIMITED)) == [("recovered", "key_rejected")]
    assert eng.worst() == "ok"


def metrics(completed: int, failed: int, p90_ms: float | None = None, n: int = 0) -> EndpointMetrics:
    done = completed + failed
    return EndpointMetrics("e", 900.0, 0.0, 900.0, finished=done, completed=completed, failed=failed,
                           failure_rate=failed / done if done else None,
                           delay=LatencyStats(count=n, p90=p90_ms))  # fmt: skip


def test_failure_rate_needs_enough_jobs() -> None:
    eng, _ = engine(failure_rate_above=20, min_jobs=5)
    assert eng.observe("e", metrics=metrics(1, 2)) == []  # 67 % of 3 jobs: too few to judge
    ev = eng.observe("e", metrics=metrics(6, 4))
    assert kinds(ev) == [("fired", "failure_rate")] and "40% of 10 jobs failed in 15 min" in ev[0].message


def test_p90_delay_and_oldest_queued() -> None:
    eng, _ = engine(p90_delay_above="1m", oldest_queued_over="5m", min_jobs=3)
    ev = eng.observe("e", metrics=metrics(5, 0, p90_ms=90_000, n=5), oldest_queued_s=400)
    assert sorted(kinds(ev)) == [("fired", "oldest_queued"), ("fired", "p90_delay")]
    assert any("oldest queued job waiting 6 min 40 s" in e.message for e in ev)
    jobs = [JobRecord("a", "e", JobStatus.IN_QUEUE, submitted_at=100.0),
            JobRecord("b", "e", JobStatus.IN_QUEUE, submitted_at=50.0, extra={"queued_at": 250.0}),
            JobRecord("c", "e", JobStatus.COMPLETED, submitted_at=10.0)]  # fmt: skip
    assert oldest_queued_age(jobs, 400.0) == 300.0 and oldest_queued_age([], 1.0) is None


def test_verdict_rule_takes_the_verdicts_severity_and_text() -> None:
    eng, clock = engine(verdict_for=30, recover_for=0)
    crash = Verdict("crash_loop", "critical", "crash-looping (3 unhealthy, 0 running)")
    eng.observe("e", verdict=crash, name="my-ep")
    clock.advance_sync(30)
    ev = eng.tick()
    assert ev[0].message == "my-ep: crash-looping (3 unhealthy, 0 running)" and ev[0].severity == "critical"
    worse = Verdict("bad_release", "critical", "bad release (new workers unhealthy, 2 outdated serving)")
    assert eng.observe("e", verdict=worse) == []  # the same incident, now better named
    assert eng.active("e")[0].message == "my-ep: bad release (new workers unhealthy, 2 outdated serving)"
    # no answer says nothing new about the crash loop: the alert neither repeats nor recovers
    assert eng.observe("e", verdict=Verdict("no_answer", "warn", "no answer")) == []
    rec = eng.observe("e", verdict=Verdict("ok", "ok", "ok"))
    assert kinds(rec) == [("recovered", "verdict")] and rec[0].message.startswith("my-ep: crash-looping")
    assert eng.observe("e", verdict=Verdict("rate_limited", "info", "rate limited")) == []


def test_per_endpoint_overrides_and_disabled_rules() -> None:
    rules = rules_from_config({"queue_above": 100, "queue_for": 0,
                               "endpoints": {"big": {"queue_above": 1000, "severity": {"queue": "critical"}},
                                             "quiet": {"disabled": ["queue"]}}})  # fmt: skip
    assert rules.for_endpoint("big").queue_above == 1000 and rules.for_endpoint("big").queue_for == 0
    assert rules.for_endpoint(None, "other-id").queue_above == 100
    eng = AlertEngine(rules, FakeClock())
    assert eng.observe("id1", name="big", health=health(500)) == []
    ev = eng.observe("id1", name="big", health=health(1500))
    assert ev[0].severity == "critical"
    assert eng.observe("id2", name="quiet", health=health(5000)) == []
    assert kinds(eng.observe("id3", health=health(500))) == [("fired", "queue")]
    off = AlertEngine(AlertRules(enabled=False, queue_for=0), FakeClock())
    assert off.observe("e", health=health(10_000)) == []
    off.rules = AlertRules(queue_for=0)  # a reloaded config applies at once
    assert kinds(off.observe("e", health=health(10_000))) == [("fired", "queue")]


def test_config_is_checked() -> None:
    assert AlertRules().queue_above == 20 and AlertRules().no_answer_for == 120
    with pytest.raises(ValidationError):
        rules_from_config({"queue_abov": 3})
    with pytest.raises(ValidationError):
        rules_from_config({"disabled": ["nonsense"]})
    with pytest.raises(ValidationError):
        rules_from_config({"queue_for": "soon"})
    assert rules_from_config({"queue_for": "1h"}).queue_for == 3600


def test_exit_codes_follow_nagios() -> None:
    assert [exit_code(s) for s in ("ok", "info", "warn", "critical")] == [0, 0, 1, 2]
    eng, _ = engine(unhealthy_for=0, queue_for=0, queue_above=1)
    eng.observe("a", health=health(5))
    eng.observe("b", problem="key rejected", name="b")
    assert eng.severity("a") == "warn" and eng.severity("b") == "critical" and eng.exit_code() == 2
    assert [a.endpoint_id for a in eng.active()] == ["b", "a"]


# ------------------------------------------------------------------ alert history (store)


def test_history_keeps_fired_and_recovered_newest_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rpdash.store.alerts import AlertStore
    from rpdash.store.history import HistoryStore

    eng, clock = engine(queue_above=1, queue_for=0, recover_for=0, unhealthy_for=0)
    with HistoryStore(tmp_path / "h.db", clock=clock) as history:
        store = AlertStore(history)
        assert store.recent() == []
        store.record_many(eng.observe("a", health=health(5, unhealthy=1)))
        clock.advance_sync(60)
        store.record_many(eng.observe("a", health=health(0)))
        store.record_many(eng.observe("b", health=health(9)))
        rows = store.recent()
        assert [(r.endpoint_id, r.rule, r.kind) for r in rows[:3]] == [
            ("b", "queue", "fired"), ("a", "unhealthy", "recovered"), ("a", "queue", "recovered")]
        assert len(rows) == 5 and rows[1].since == rows[-1].at == clock.time() - 60
        assert [r.kind for r in store.recent(endpoint_id="a")] == ["recovered", "recovered", "fired", "fired"]
        assert len(store.recent(limit=2)) == 2 and store.recent(since=clock.time()) == rows[:3]
        clock.advance_sync(3600)
        assert store.prune(1800) == 5 and store.recent() == []
    with HistoryStore(tmp_path / "h.db", clock=clock) as again:  # the table is there on reopening
        AlertStore(again).record(AlertEngine(AlertRules(queue_for=0), clock).observe("c", health=health(99))[0])
        assert AlertStore(again).recent()[0].message == "c: 99 jobs queued (over 20 for 0 s)"
