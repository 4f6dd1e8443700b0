"""The watch loop (rpdash.services.watch) on a fake API and a fake clock: what it asks
RunPod and when, and what it concludes when parts of RunPod do not answer."""

from __future__ import annotations

from typing import Any

from rpdash.core.clock import FakeClock
from rpdash.core.errors import RateLimited, Unreachable
from rpdash.core.models import Health
from rpdash.services.alerts import AlertRules
from rpdash.services.incidents import Incidents
from rpdash.services.watch import Watcher, immediate_rules

CRASH = {"jobs": {"inQueue": 2}, "workers": {"unhealthy": 3}}


class FakeData:
    """``health()`` answers from a script: a dict (the answer) or an exception, per call."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def health(self, endpoint_id: str) -> Health:
        self.calls += 1
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(a, Exception):
            raise a
        return Health.model_validate(a)


class DownControl:
    def __init__(self) -> None:
        self.calls = 0

    async def get_endpoint(self, endpoint_id: str) -> Any:
        self.calls += 1
        raise Unreachable("cannot reach the control plane")

    async def workers(self, endpoint_id: str) -> Any:  # pragma: no cover - get_endpoint fails first
        raise Unreachable("cannot reach the control plane")


async def test_a_rate_limited_endpoint_is_not_asked_again_before_retry_after(clock: FakeClock) -> None:
    data = FakeData(RateLimited("slow down", retry_after=20), {"jobs": {}, "workers": {}})
    w = Watcher(data, ["ep"], Incidents(clock=clock), clock=clock)
    first = await w.poll()
    assert [c.message for c in first if c.kind == "verdict"] == ["rate limited"]
    for _ in range(3):  # 15 s: still inside Retry-After
        clock.advance_sync(5)
        assert await w.poll() == []
    assert data.calls == 1
    clock.advance_sync(5)
    (change,) = await w.poll()
    assert (data.calls, change.kind, change.message, change.previous.short_text) == (2, "verdict", "ok", "rate limited")


async def test_without_the_control_plane_the_verdict_rests_on_health_and_says_so_once(clock: FakeClock) -> None:
    notes: list[str] = []
    control = DownControl()
    w = Watcher(FakeData(CRASH), ["ep"], Incidents(clock=clock), clock=clock, names={"ep": "llm-chat"},
                control=control, note=notes.append)  # fmt: skip
    changes = await w.poll()
    for _ in range(5):
        clock.advance_sync(5)
        changes += await w.poll()
    assert [c.message for c in changes if c.kind == "verdict"] == ["crash-looping (3 unhealthy, 0 running)"]
    assert notes == ["llm-chat: control plane unavailable, judging from /health only (cannot reach the control plane)"]
    assert control.calls == 1  # not asked again every cycle


def test_immediate_rules_ignore_every_hold_time_even_in_overrides() -> None:
    rules = AlertRules.model_validate({"queue_for": "5m",
                                       "endpoints": {"prod": {"unhealthy_for": 600, "queue_above": 3}}})
    once = immediate_rules(rules)
    for t in (once.for_endpoint("other"), once.for_endpoint("prod")):
        assert (t.queue_for, t.unhealthy_for, t.no_answer_for, t.verdict_for, t.recover_for) == (0, 0, 0, 0, 0)
    assert once.for_endpoint("prod").queue_above == 3 and rules.for_endpoint("prod").unhealthy_for == 600
