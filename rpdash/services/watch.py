"""Watching endpoints without a screen: the poll loop behind ``rpdash watch``.

:class:`Watcher` polls each endpoint's ``/health`` once a cycle (and, every
``control_every`` seconds, the control plane's worker list and settings when it answers: a
key scoped to the data plane, or no control plane, leaves the verdict to ``/health``
alone), feeds what it learns to :class:`~rpdash.services.incidents.Incidents` (the same
verdicts and alert rules as the dashboard) and returns what changed as :class:`Change` s:
an alert fired or recovered, a verdict changed. Recent finished jobs of the history, when a
``jobs`` source is given, feed the job metrics (failure rate, p90 delay, the exporter's
job series).

A 429 is honoured: the endpoint is not asked again before its ``Retry-After``. A rejected
key or an unknown endpoint is asked again every ``slow_retry`` seconds (a fixed key or a
new endpoint recovers without a restart); other failures are retried the next cycle.

:func:`immediate_rules` makes the rules of a one-shot check (``rpdash watch --once``):
every hold time zero, so a condition seen once fires at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import AuthError, NotFound, RateLimited, RpdashError, Unreachable
from rpdash.core.models import Health
from rpdash.services.alerts import AlertEvent, AlertRules
from rpdash.services.events import ConnState, HealthEvent
from rpdash.services.incidents import Incidents
from rpdash.services.verdict import Verdict

#: how often the control plane's worker list and settings are fetched (its quota is 60/min)
CONTROL_EVERY_S = 30.0
#: after the control plane failed for an endpoint, it is tried again this much later
CONTROL_RETRY_S = 300.0
#: how often a rejected key or an unknown endpoint is asked again
SLOW_RETRY_S = 30.0
#: hold-time settings of the alert rules (zeroed by immediate_rules)
HOLDS = ("queue_for", "unhealthy_for", "no_answer_for", "verdict_for", "recover_for")


def immediate_rules(rules: AlertRules) -> AlertRules:
    """``rules`` with every hold time zero (the defaults and each endpoint's override)."""
    zero = dict.fromkeys(HOLDS, 0.0)
    endpoints = {k: v.model_copy(update={h: 0.0 for h in HOLDS if h in v.model_fields_set})
                 for k, v in rules.endpoints.items()}  # fmt: skip
    return rules.model_copy(update={**zero, "endpoints": endpoints})


@dataclass(frozen=True, slots=True)
class Change:
    """One line of news: an alert ``fired`` / ``recovered``, or the ``verdict`` changed."""

    kind: str
    endpoint_id: str
    label: str
    severity: str
    message: str
    #: epoch seconds
    at: float
    rule: str | None = None
    verdict: Verdict | None = None
    #: the verdict before (``verdict`` changes only; None for the first one)
    previous: Verdict | None = None


@dataclass(slots=True)
class EndpointState:
    """What the watcher knows of one endpoint's connection."""

    endpoint_id: str
    name: str | None = None
    state: ConnState = ConnState.CONNECTING
    message: str | None = None
    #: the last failure in a word or two ("server error", "timed out"), None after an answer
    reason: str | None = None
    health: Health | None = None
    last_ok_at: float | None = None
    not_before: float = 0.0  # Clock.now(): no fetch before (Retry-After, slow retry)
    workers: Any = None
    info: Any = None
    control_at: float | None = None  # Clock.now() of the next control-plane fetch

    @property
    def label(self) -> str:
        return self.name or self.endpoint_id

    @property
    def answered(self) -> bool:
        """RunPod gave an answer that says something about the endpoint (numbers, or a
        rejected key / unknown endpoint)."""
        return self.health is not None or self.state in (ConnState.KEY_REJECTED, ConnState.NOT_FOUND)


class Watcher:
    """Polls, judges, reports; see the module docstring.

    ``client``: a ``RunPodAPI`` (``health(endpoint_id)``); ``control``: an open
    ``ControlClient`` or None; ``names``: endpoint id -> the name to show (a config name);
    ``jobs``: endpoint id -> recent job records (the history), or None; ``on_health``: told
    every good answer (the history's health samples)."""

    def __init__(
        self,
        client: Any,
        endpoint_ids: Iterable[str],
        incidents: Incidents,
        *,
        clock: Clock | None = None,
        names: Mapping[str, str] | None = None,
        control: Any = None,
        jobs: Callable[[str], Iterable[Any]] | None = None,
        control_every: float = CONTROL_EVERY_S,
        slow_retry: float = SLOW_RETRY_S,
        note: Callable[[str], None] | None = None,
        on_health: Callable[[str, Health, float], None] | None = None,
        account_cap: int | None = None,
    ) -> None:
        self.client = client
        self.incidents = incidents
        self.clock: Clock = clock or RealClock()
        self.control = control
        self.jobs = jobs
        self.control_every = control_every
        self.slow_retry = slow_retry
        self.note = note or (lambda _msg: None)
        #: called with (endpoint id, health, epoch seconds) for every good answer
        self.on_health = on_health
        #: the account's worker cap (the setting; None: unknown, the verdict does not guess)
        self.account_cap = account_cap
        names = names or {}
        self.endpoints: dict[str, EndpointState] = {
            ep: EndpointState(ep, names.get(ep)) for ep in dict.fromkeys(endpoint_ids)
        }
        self.cycles = 0

    # ------------------------------------------------------------------ the loop

    async def run(self, report: Callable[[list[Change]], None], interval: float,
                  stop: Callable[[Watcher], bool] | None = None) -> None:  # fmt: skip
        """Poll every ``interval`` seconds (of the clock), handing each cycle's changes to
        ``report``, until ``stop(self)`` says so (checked after each cycle) or cancelled."""
        while True:
            report(await self.poll())
            if stop is not None and stop(self):
                return
            await self.clock.sleep(interval)

    async def poll(self) -> list[Change]:
        """One cycle: fetch what is due, judge every endpoint, return what changed."""
        self.cycles += 1
        due = [st for st in self.endpoints.values() if self.clock.now() >= st.not_before]
        if self.control is not None:
            await asyncio.gather(*(self._control(st) for st in due))
        await asyncio.gather(*(self._fetch(st) for st in due))
        changes: list[Change] = []
        for st in due:
            changes.extend(self._judge(st))
        if self.jobs is not None:
            for st in self.endpoints.values():
                try:
                    rows = list(self.jobs(st.endpoint_id))
                except Exception as exc:  # noqa: BLE001 - the history never stops a watch
                    self.note(f"job history not read: {exc}")
                    self.jobs = None
                    break
                changes.extend(self._alerts(st, self.incidents.on_jobs(st.endpoint_id, rows, name=st.name)))
        for ev in self.incidents.tick():
            changes.extend(self._alerts(self.endpoints[ev.endpoint_id], [ev]))
        return changes

    # ------------------------------------------------------------------ inside

    async def _fetch(self, st: EndpointState) -> None:
        now = self.clock.now()
        try:
            st.health = await self.client.health(st.endpoint_id)
        except asyncio.CancelledError:
            raise
        except RpdashError as e:
            st.message, st.reason = str(e), str(getattr(e, "label", "") or type(e).__name__)
            if isinstance(e, RateLimited):
                wait = e.retry_after if e.retry_after is not None else self.slow_retry
                st.state, st.not_before = ConnState.RATE_LIMITED, now + wait
            elif isinstance(e, AuthError | NotFound):
                st.state = ConnState.KEY_REJECTED if isinstance(e, AuthError) else ConnState.NOT_FOUND
                st.not_before = now + self.slow_retry
            else:
                st.state = ConnState.UNREACHABLE if isinstance(e, Unreachable) else ConnState.RETRYING
        else:
            st.state, st.message, st.reason, st.last_ok_at = ConnState.OK, None, None, self.clock.time()
            if self.on_health is not None:
                self.on_health(st.endpoint_id, st.health, st.last_ok_at)

    async def _control(self, st: EndpointState) -> None:
        now = self.clock.now()
        if st.control_at is not None and now < st.control_at:
            return
        try:
            if st.info is None:
                st.info = await self.control.get_endpoint(st.endpoint_id)
                if st.name is None and getattr(st.info, "name", None):
                    st.name = str(st.info.name)
            st.workers = await self.control.workers(st.endpoint_id)
        except asyncio.CancelledError:
            raise
        except RpdashError as e:
            if st.control_at is None or st.workers is not None:  # say it once per outage
                self.note(f"{st.label}: control plane unavailable, judging from /health only ({e})")
            st.workers = None
            st.control_at = now + CONTROL_RETRY_S
            return
        st.control_at = now + self.control_every

    def _judge(self, st: EndpointState) -> list[Change]:
        event = HealthEvent(st.endpoint_id, st.state, st.health, st.last_ok_at, message=st.message)
        before = self.incidents.verdict(st.endpoint_id)
        update = self.incidents.on_health(event, name=st.name, workers=st.workers, endpoint_info=st.info,
                                          account_cap=self.account_cap)  # fmt: skip
        out: list[Change] = []
        if update.changed:
            v = update.verdict
            out.append(Change("verdict", st.endpoint_id, st.label, v.severity, v.short_text, self.clock.time(),
                              verdict=v, previous=before))  # fmt: skip
        return out + self._alerts(st, update.events)

    @staticmethod
    def _alerts(st: EndpointState, events: Iterable[AlertEvent]) -> list[Change]:
        return [Change(str(ev.kind.value), ev.endpoint_id, st.label, ev.severity, ev.message, ev.at, rule=ev.rule)
                for ev in events]  # fmt: skip
