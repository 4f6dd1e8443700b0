"""Alert rules (the ``[alerts]`` config table) and the engine that turns what rpdash observes
of each endpoint into alert events.

Rules (names as used in ``disabled`` and ``severity``), each with its default:

============== ======================================================== ==========
rule           fires when                                               severity
============== ======================================================== ==========
queue          more than ``queue_above`` (20) jobs wait, for            warn
               ``queue_for`` (2 min)
oldest_queued  the oldest queued job has waited over                    warn
               ``oldest_queued_over`` (10 min)
failure_rate   over ``failure_rate_above`` (20) % of the jobs that      warn
               finished in ``failure_window`` (15 min) failed (given at
               least ``min_jobs`` (5) finished)
unhealthy      any worker is unhealthy for ``unhealthy_for`` (1 min)    warn
no_answer      the endpoint gives no answer for ``no_answer_for``       critical
               (2 min)
p90_delay      the p90 queue delay of the jobs rpdash saw is above      warn
               ``p90_delay_above`` (5 min) (given ``min_jobs``)
key_rejected   RunPod rejects the API key                               critical
verdict        the endpoint's verdict is at least ``verdict_at_least``  the
               (warn) for ``verdict_for`` (30 s)                        verdict's
============== ======================================================== ==========

Durations take seconds or words such as ``"90s"``, ``"5m"``, ``"1h"``. Every setting can
be overridden per endpoint (``[alerts.endpoints.NAME]``, NAME being the endpoint's name in
the config or its id); ``disabled = ["queue"]`` switches rules off, ``severity = {queue =
"critical"}`` changes a rule's severity.

:class:`AlertEngine` is fed observations per endpoint (health, verdict, job metrics,
rpdash's connection state) and answers with :class:`AlertEvent` s: ``FIRED`` once when a
rule's condition has held for its time, ``RECOVERED`` once when it has been clear for
``recover_for`` (30 s, so a value hovering at a threshold does not flap), nothing in
between. The verdict rule leaves "key rejected", "no answer" and "no data yet" verdicts to
their own rules (no double alert, and an alert on old numbers neither repeats nor
recovers while RunPod is silent). An input not given is "unchanged": a rule that reads only missing inputs keeps its
state. ``tick()`` re-checks the hold times when no observation arrives. Holds run on the
injected clock's monotonic ``now()``; events carry wall-clock ``time()`` stamps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rpdash.core.clock import Clock
from rpdash.core.errors import RpdashError
from rpdash.core.models import Health, JobStatus
from rpdash.services.diagnosis import NO_ANSWER_STATES, duration_text
from rpdash.services.verdict import Verdict, severity_rank, worst_severity

RuleName = Literal["queue", "oldest_queued", "failure_rate", "unhealthy", "no_answer", "p90_delay",
                   "key_rejected", "verdict"]  # fmt: skip
RULES: tuple[str, ...] = RuleName.__args__  # type: ignore[attr-defined]
AlertSeverity = Literal["info", "warn", "critical"]
DEFAULT_SEVERITY: dict[str, str] = {"queue": "warn", "oldest_queued": "warn", "failure_rate": "warn",
                                    "unhealthy": "warn", "no_answer": "critical", "p90_delay": "warn",
                                    "key_rejected": "critical"}  # fmt: skip
#: verdict kinds with a rule of their own (and no fresh numbers behind them): the verdict
#: rule neither fires nor recovers on them
_OWN_RULE = frozenset({"key_rejected", "no_answer", "unknown"})
#: exit codes by worst severity, the Nagios/Icinga convention
EXIT_CODES = {"ok": 0, "info": 0, "warn": 1, "critical": 2}


def exit_code(severity: str) -> int:
    """``ok``/``info`` 0, ``warn`` 1, ``critical`` 2."""
    return EXIT_CODES.get(severity, 0)


def _seconds(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError("a duration, not true/false")
    if isinstance(v, int | float):
        seconds = float(v)
    else:
        from rpdash.services.metrics import parse_window

        try:
            seconds = parse_window(str(v))
        except RpdashError:
            raise ValueError('must be a duration: seconds, or e.g. "90s", "5m", "1h"') from None
    if not 0 <= seconds < math.inf:
        raise ValueError("a duration must be 0 or more seconds")
    return seconds


Seconds = Annotated[float, BeforeValidator(_seconds)]


class AlertThresholds(BaseModel):
    """One endpoint's alert settings (the ``[alerts]`` table's own keys are the defaults)."""

    model_config = ConfigDict(extra="forbid")

    queue_above: int = Field(20, ge=0)
    queue_for: Seconds = 120.0
    oldest_queued_over: Seconds = 600.0
    failure_rate_above: float = Field(20.0, ge=0, le=100)
    failure_window: Seconds = 900.0
    min_jobs: int = Field(5, ge=1)
    unhealthy_for: Seconds = 60.0
    no_answer_for: Seconds = 120.0
    p90_delay_above: Seconds = 300.0
    verdict_at_least: AlertSeverity = "warn"
    verdict_for: Seconds = 30.0
    recover_for: Seconds = 30.0
    disabled: list[RuleName] = Field(default_factory=list)
    severity: dict[RuleName, AlertSeverity] = Field(default_factory=dict)

    def on(self, rule: str) -> bool:
        return rule not in self.disabled

    def severity_of(self, rule: str, default: str = "warn") -> str:
        return self.severity.get(rule) or DEFAULT_SEVERITY.get(rule, default)  # type: ignore[call-overload]


class AlertRules(AlertThresholds):
    """The ``[alerts]`` config table: defaults for all endpoints, ``endpoints`` overrides."""

    enabled: bool = True
    endpoints: dict[str, AlertThresholds] = Field(default_factory=dict)

    def for_endpoint(self, *keys: str | None) -> AlertThresholds:
        """The settings of the endpoint known by ``keys`` (its config name, its id): the
        first override found, laid over the defaults (only the keys it sets)."""
        base = AlertThresholds.model_validate(self.model_dump(exclude={"enabled", "endpoints"}))
        over = next((self.endpoints[k] for k in keys if k and k in self.endpoints), None)
        if over is None:
            return base
        changes = {k: getattr(over, k) for k in over.model_fields_set}
        if "severity" in changes:
            changes["severity"] = {**base.severity, **over.severity}
        return base.model_copy(update=changes)


class AlertKind(StrEnum):
    FIRED = "fired"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: AlertKind
    endpoint_id: str
    rule: str
    severity: str
    #: one line, ready for a status line or a notification
    message: str
    #: epoch seconds of this event
    at: float
    #: epoch seconds when the alert fired (equal to ``at`` for FIRED)
    since: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ActiveAlert:
    endpoint_id: str
    rule: str
    severity: str
    message: str
    since: float


@dataclass(slots=True)
class _RuleState:
    pending_since: float | None = None  # monotonic: condition true since
    clear_since: float | None = None  # monotonic: condition false since (while firing)
    firing: bool = False
    fired_at: float = 0.0  # wall clock
    severity: str = "warn"
    message: str = ""  # as it is now (the active list)
    fired_message: str = ""  # as it fired (the RECOVERED event repeats it)


@dataclass(slots=True)
class _Seen:
    """The latest value of each input for one endpoint (None: never given)."""

    name: str | None = None
    health: Health | None = None
    verdict: Verdict | None = None
    metrics: Any = None
    oldest_queued_s: float | None = None
    problem: str | None = None
    rules: dict[str, _RuleState] = field(default_factory=dict)


#: (active, severity, text) of one rule; active None = unknown (state left as it is)
_Check = tuple[bool | None, str, str]
_UNKNOWN: _Check = (None, "ok", "")


def oldest_queued_age(jobs: Iterable[Any], now: float) -> float | None:
    """Seconds the oldest IN_QUEUE job in ``jobs`` has waited (None when none waits).
    ``now`` is epoch seconds; a job's ``extra["queued_at"]`` (set by a retry) wins over
    ``submitted_at``."""
    oldest: float | None = None
    for j in jobs:
        if JobStatus.parse(getattr(j, "status", None)) is not JobStatus.IN_QUEUE:
            continue
        extra = getattr(j, "extra", None)
        t = (extra.get("queued_at") if isinstance(extra, dict) else None) or getattr(j, "submitted_at", None)
        if t:
            oldest = float(t) if oldest is None else min(oldest, float(t))
    return None if oldest is None else max(0.0, now - oldest)


class AlertEngine:
    """Alert state per endpoint and rule; see the module docstring."""

    def __init__(self, rules: AlertRules, clock: Clock) -> None:
        self.clock = clock
        self._seen: dict[str, _Seen] = {}
        self._thresholds: dict[tuple[str | None, str], AlertThresholds] = {}
        self.rules = rules

    @property
    def rules(self) -> AlertRules:
        return self._rules

    @rules.setter
    def rules(self, rules: AlertRules) -> None:
        """New rules (a reloaded config) apply from the next observation; alerts firing
        stay firing until their condition clears under the new rules."""
        self._rules = rules
        self._thresholds.clear()

    # ------------------------------------------------------------------ feeding

    def observe(
        self,
        endpoint_id: str,
        *,
        name: str | None = None,
        health: Health | None = None,
        verdict: Verdict | None = None,
        metrics: Any = None,
        oldest_queued_s: float | None = None,
        problem: str | None = None,
    ) -> list[AlertEvent]:
        """Take in what is new about an endpoint and return the events it causes.

        ``health``: its ``/health``; ``verdict``: its :class:`Verdict`; ``metrics``: an
        ``EndpointMetrics`` over the rule's ``failure_window``; ``oldest_queued_s``: see
        :func:`oldest_queued_age`; ``problem``: rpdash's connection state (``ConnState`` or
        its value; "ok" when answers come). ``name``: the endpoint's config name, for
        per-endpoint overrides and messages. Inputs left None keep their last value."""
        seen = self._seen.setdefault(endpoint_id, _Seen())
        if name is not None:
            seen.name = name
        if health is not None:
            seen.health = health
        if verdict is not None:
            seen.verdict = verdict
        if metrics is not None:
            seen.metrics = metrics
        if oldest_queued_s is not None:
            seen.oldest_queued_s = oldest_queued_s
        if problem is not None:
            seen.problem = str(problem)
        return self._evaluate(endpoint_id, seen)

    def tick(self) -> list[AlertEvent]:
        """Re-check every endpoint at the clock's current time (hold times that ran out)."""
        out: list[AlertEvent] = []
        for endpoint_id, seen in self._seen.items():
            out.extend(self._evaluate(endpoint_id, seen))
        return out

    def forget(self, endpoint_id: str) -> None:
        """Drop an endpoint (no longer watched) and its alerts, without events."""
        self._seen.pop(endpoint_id, None)

    # ------------------------------------------------------------------ reading

    def active(self, endpoint_id: str | None = None) -> list[ActiveAlert]:
        """Alerts firing now (of one endpoint or all), worst first."""
        out = [ActiveAlert(ep, rule, st.severity, st.message, st.fired_at)
               for ep, seen in self._seen.items() if endpoint_id in (None, ep)
               for rule, st in seen.rules.items() if st.firing]  # fmt: skip
        return sorted(out, key=lambda a: (-severity_rank(a.severity), a.since))

    def severity(self, endpoint_id: str) -> str:
        """The worst severity firing on an endpoint (``ok`` when none)."""
        return worst_severity(a.severity for a in self.active(endpoint_id))

    def worst(self) -> str:
        """The worst severity firing anywhere (``ok`` when none)."""
        return worst_severity(a.severity for a in self.active())

    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical (Nagios/Icinga)."""
        return exit_code(self.worst())

    # ------------------------------------------------------------------ rules

    def thresholds(self, endpoint_id: str, name: str | None = None) -> AlertThresholds:
        """The settings that apply to an endpoint (its overrides over the defaults)."""
        key = (name, endpoint_id)
        t = self._thresholds.get(key)
        if t is None:
            t = self._thresholds[key] = self.rules.for_endpoint(name, endpoint_id)
        return t

    def _evaluate(self, endpoint_id: str, seen: _Seen) -> list[AlertEvent]:
        if not self.rules.enabled:
            return []
        t = self.thresholds(endpoint_id, seen.name)
        checks: dict[str, tuple[_Check, float]] = {
            "queue": (self._queue(seen, t), t.queue_for),
            "oldest_queued": (self._oldest(seen, t), 0.0),
            "failure_rate": (self._failures(seen, t), 0.0),
            "unhealthy": (self._unhealthy(seen, t), t.unhealthy_for),
            "no_answer": (self._no_answer(seen, t), t.no_answer_for),
            "p90_delay": (self._p90(seen, t), 0.0),
            "key_rejected": (self._key(seen, t), 0.0),
            "verdict": (self._verdict(seen, t), t.verdict_for),
        }
        label = seen.name or endpoint_id
        out: list[AlertEvent] = []
        for rule, (check, hold) in checks.items():
            if not t.on(rule):
                check = (False, "ok", "")
            ev = self._step(endpoint_id, label, rule, seen.rules.setdefault(rule, _RuleState()), check, hold,
                            t.recover_for)  # fmt: skip
            if ev is not None:
                out.append(ev)
        return out

    def _step(self, endpoint_id: str, label: str, rule: str, st: _RuleState, check: _Check, hold: float,
              recover_for: float) -> AlertEvent | None:  # fmt: skip
        active, severity, text = check
        if active is None:
            return None
        now = self.clock.now()
        if active:
            st.clear_since = None
            if st.firing:
                st.severity = worst_severity((st.severity, severity))
                st.message = f"{label}: {text}"
                return None
            if st.pending_since is None:
                st.pending_since = now
            if now - st.pending_since < hold:
                return None
            st.firing, st.fired_at, st.severity = True, self.clock.time(), severity
            st.message = st.fired_message = f"{label}: {text}"
            return AlertEvent(AlertKind.FIRED, endpoint_id, rule, severity, st.message, st.fired_at, st.fired_at)
        st.pending_since = None
        if not st.firing:
            return None
        if st.clear_since is None:
            st.clear_since = now
        if now - st.clear_since < recover_for:
            return None
        st.firing, st.clear_since = False, None
        at = self.clock.time()
        message = f"{st.fired_message} - recovered after {duration_text(at - st.fired_at)}"
        return AlertEvent(AlertKind.RECOVERED, endpoint_id, rule, st.severity, message, at, st.fired_at)

    @staticmethod
    def _queue(seen: _Seen, t: AlertThresholds) -> _Check:
        if seen.health is None:
            return _UNKNOWN
        n = seen.health.jobs.inQueue
        text = f"{n} jobs queued (over {t.queue_above} for {duration_text(t.queue_for)})"
        return n > t.queue_above, t.severity_of("queue"), text

    @staticmethod
    def _oldest(seen: _Seen, t: AlertThresholds) -> _Check:
        age = seen.oldest_queued_s
        if age is None:
            return _UNKNOWN
        text = f"oldest queued job waiting {duration_text(age)}"
        return age > t.oldest_queued_over, t.severity_of("oldest_queued"), text

    @staticmethod
    def _failures(seen: _Seen, t: AlertThresholds) -> _Check:
        m = seen.metrics
        if m is None:
            return _UNKNOWN
        done = int(getattr(m, "completed", 0) + getattr(m, "failed", 0) + getattr(m, "timed_out", 0))
        rate = getattr(m, "failure_rate", None)
        pct = 100.0 * rate if rate is not None else 0.0
        window = duration_text(float(getattr(m, "window_s", t.failure_window)))
        return (done >= t.min_jobs and pct > t.failure_rate_above, t.severity_of("failure_rate"),
                f"{pct:.0f}% of {done} jobs failed in {window}")  # fmt: skip

    @staticmethod
    def _unhealthy(seen: _Seen, t: AlertThresholds) -> _Check:
        if seen.health is None:
            return _UNKNOWN
        n = seen.health.workers.unhealthy
        return n > 0, t.severity_of("unhealthy"), f"{n} unhealthy worker{'s' if n != 1 else ''}"

    @staticmethod
    def _no_answer(seen: _Seen, t: AlertThresholds) -> _Check:
        if seen.problem is None:
            return _UNKNOWN
        return (seen.problem in NO_ANSWER_STATES, t.severity_of("no_answer"),
                f"no answer for {duration_text(t.no_answer_for)} ({seen.problem})")  # fmt: skip

    @staticmethod
    def _p90(seen: _Seen, t: AlertThresholds) -> _Check:
        m = seen.metrics
        if m is None:
            return _UNKNOWN
        delay = getattr(m, "delay", None)
        p90, count = getattr(delay, "p90", None), int(getattr(delay, "count", 0) or 0)
        over = p90 is not None and count >= t.min_jobs and p90 / 1000.0 > t.p90_delay_above
        text = f"p90 queue delay {duration_text((p90 or 0) / 1000.0)} (over {duration_text(t.p90_delay_above)})"
        return over, t.severity_of("p90_delay"), text

    @staticmethod
    def _key(seen: _Seen, t: AlertThresholds) -> _Check:
        if seen.problem is None:
            return _UNKNOWN
        return seen.problem == "key rejected", t.severity_of("key_rejected"), "RunPod rejects the API key"

    @staticmethod
    def _verdict(seen: _Seen, t: AlertThresholds) -> _Check:
        v = seen.verdict
        if v is None or v.kind in _OWN_RULE:
            return _UNKNOWN  # nothing new is known: the rule keeps its state
        severity = t.severity.get("verdict") or v.severity
        return v.rank >= severity_rank(t.verdict_at_least), severity, v.short_text


def rules_from_config(table: Mapping[str, Any] | None) -> AlertRules:
    """The ``[alerts]`` table as :class:`AlertRules` (defaults when absent); raises
    pydantic's ``ValidationError`` on unknown keys or bad values."""
    return AlertRules.model_validate(dict(table or {}))
