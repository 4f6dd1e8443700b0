"""Incidents: health events in, one verdict per endpoint, alerts to the outlets, a board out."""

from __future__ import annotations

import io

from rpdash.core.clock import FakeClock
from rpdash.core.models import Health
from rpdash.services.alerts import AlertKind, rules_from_config
from rpdash.services.events import ConnState, HealthEvent
from rpdash.services.incidents import HoldClock, Incidents, store_outlet, terminal_outlet
from rpdash.store.alerts import AlertStore
from rpdash.store.history import HistoryStore

KEY = "rp_SECRETSECRETSECRET1234"


def health(queue: int = 0, **workers: int) -> Health:
    return Health.model_validate({"jobs": {"inQueue": queue}, "workers": workers})


def ok(h: Health, ep: str = "e1") -> HealthEvent:
    return HealthEvent(ep, ConnState.OK, h, last_ok_at=None)


def test_crash_loop_becomes_a_verdict_an_alert_a_notification_and_a_history_row() -> None:
    clock = FakeClock()
    out = io.BytesIO()
    with HistoryStore(None, clock=clock) as history:
        store = AlertStore(history)
        inc = Incidents(rules_from_config({"verdict_for": 30, "unhealthy_for": 600, "recover_for": 0}), clock,
                        outlets=[terminal_outlet(out, tmux=False, secret=KEY), store_outlet(store)])  # fmt: skip
        first = inc.on_health(ok(health(4, unhealthy=3)), name="my-ep")
        assert first.verdict.short_text == "crash-looping (3 unhealthy, 0 running)" and first.changed
        assert first.events == [] and out.getvalue() == b""
        clock.advance_sync(30)
        again = inc.on_health(ok(health(4, unhealthy=3)))
        assert not again.changed and again.verdict.since == first.verdict.since
        assert [(e.kind, e.rule) for e in again.events] == [(AlertKind.FIRED, "verdict")]
        sent = out.getvalue()
        assert b"\x1b]777;notify;rpdash: critical;my-ep: crash-looping (3 unhealthy, 0 running)\x07" in sent
        assert sent.endswith(b"\x07\x07")  # the bell rings for a new alert
        assert inc.exit_code() == 2 and inc.verdict("e1") is again.verdict
        snap = inc.board()[0]
        assert snap.verdict is not None and snap.verdict.kind == "crash_loop"
        assert (snap.name, snap.answering) == ("my-ep", True)
        clock.advance_sync(60)
        fixed = inc.on_health(ok(health(0, running=1)))
        assert fixed.changed and [e.kind for e in fixed.events] == [AlertKind.RECOVERED]
        assert b"rpdash: recovered" in out.getvalue()
        assert [r.kind for r in store.recent()] == ["recovered", "fired"]
        assert inc.exit_code() == 0


def test_one_failed_fetch_is_not_no_answer_yet() -> None:
    clock = FakeClock()
    inc = Incidents(clock=clock)
    inc.on_health(ok(health(0, idle=1)))
    blip = HealthEvent("e1", ConnState.RETRYING, health(0, idle=1), last_ok_at=clock.time() - 5, retry_in=2)
    assert inc.on_health(blip).verdict.kind == "ok"
    long = HealthEvent("e1", ConnState.UNREACHABLE, health(0, idle=1), last_ok_at=clock.time() - 90)
    update = inc.on_health(long)
    assert update.verdict.short_text == "no answer" and update.changed
    assert inc.board()[0].answering is False
    key = inc.on_health(HealthEvent("e1", ConnState.KEY_REJECTED, None))
    assert key.verdict.short_text == "key rejected" and [e.rule for e in key.events] == ["key_rejected"]


def test_a_failing_outlet_does_not_stop_the_others() -> None:
    seen: list[str] = []

    def broken(ev: object) -> None:
        raise RuntimeError("disk full")

    inc = Incidents(rules_from_config({"queue_above": 1, "queue_for": 0}), FakeClock(),
                    outlets=[broken, lambda ev: seen.append(ev.rule)])  # fmt: skip
    inc.on_health(ok(health(5)))
    assert seen == ["queue"]


def test_metrics_reach_the_alerts_and_the_board() -> None:
    from rpdash.services.metrics import EndpointMetrics

    clock = FakeClock()
    inc = Incidents(rules_from_config({"min_jobs": 2}), clock)
    inc.on_health(ok(health(0)))
    m = EndpointMetrics("e1", 900.0, 0.0, 900.0, finished=4, completed=1, failed=3, failure_rate=0.75)
    events = inc.on_metrics("e1", m, oldest_queued_s=10)
    assert [e.rule for e in events] == ["failure_rate"]
    assert inc.board()[0].metrics is m
    inc.forget("e1")
    assert inc.board() == [] and inc.verdict("e1") is None and inc.exit_code() == 0


def test_account_cap_counts_the_other_watched_endpoints() -> None:
    inc = Incidents(clock=FakeClock())
    inc.on_health(ok(health(0, running=3, idle=1), ep="busy"))
    inc.on_health(ok(health(0, initializing=1), ep="other"))
    assert inc.workers_elsewhere("starved") == 5
    update = inc.on_health(ok(health(4), ep="starved"), account_cap=5)
    assert update.verdict.short_text == "account worker cap (5) used by other endpoints"
    assert inc.on_health(ok(health(4), ep="starved"), account_cap=10).verdict.kind == "no_workers"


def test_job_records_give_failure_rate_and_queue_age() -> None:
    from rpdash.core.models import JobStatus
    from rpdash.core.records import JobRecord

    clock = FakeClock()
    now = clock.time()
    inc = Incidents(rules_from_config({"min_jobs": 3, "failure_window": "10m", "oldest_queued_over": "5m"}), clock)
    jobs = [JobRecord(f"f{i}", "e1", JobStatus.FAILED, submitted_at=now - 100, finished_at=now - 60) for i in range(3)]
    jobs += [JobRecord("old", "e1", JobStatus.FAILED, submitted_at=now - 3000, finished_at=now - 2000),
             JobRecord("q", "e1", JobStatus.IN_QUEUE, submitted_at=now - 400)]  # fmt: skip
    events = inc.on_jobs("e1", jobs)
    assert sorted(e.rule for e in events) == ["failure_rate", "oldest_queued"]
    assert any("100% of 3 jobs failed in 10 min" in e.message for e in events)


def test_the_job_records_given_to_on_jobs_reach_the_verdict() -> None:
    """The dashboard feeds its job records now and then and health events often: a retry
    storm seen in the records shows in the verdict of the health events that follow."""
    from rpdash.core.models import JobStatus
    from rpdash.core.records import JobRecord

    clock = FakeClock()
    inc = Incidents(rules_from_config({}), clock)
    poison = JobRecord("job-p", "e1", JobStatus.IN_QUEUE, retries=4, updated_at=clock.time())
    inc.on_jobs("e1", [poison])
    assert inc.on_health(ok(health(2, unhealthy=1, running=1))).verdict.short_text == \
        "retry storm (job job-p re-run 4x)"
    assert inc.on_health(ok(health(2, running=1)), jobs=[]).verdict.kind != "retry_storm"
    hold = HoldClock(FakeClock(start=5.0), clock)
    assert (hold.now(), hold.time()) == (5.0, clock.time())
