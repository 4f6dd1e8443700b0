"""Incident state of every watched endpoint, in one place: "incidents are states".

:class:`Incidents` is what the TUI, ``rpdash watch`` and the exporter share. Fed what rpdash
learns (a ``HealthEvent`` from a health poller, job metrics now and then), it keeps

- the verdict per endpoint (:mod:`rpdash.services.verdict`, ``since`` kept while it holds),
- the alert state (:class:`~rpdash.services.alerts.AlertEngine`) and hands each FIRED /
  RECOVERED event to its outlets (the bell / desktop notification, the alert history, a
  flash line...): an outlet that fails is logged and skipped, never fatal,
- a :class:`~rpdash.services.snapshots.SnapshotBoard` for the Prometheus exporter.

One transient failure does not make an endpoint "no answer": while the last good answer is
younger than ``answer_grace_s`` the verdict reads the numbers as current. The alert rule
``no_answer`` has its own, longer hold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rpdash.core.clock import Clock, RealClock
from rpdash.services.alerts import AlertEngine, AlertEvent, AlertKind, AlertRules, oldest_queued_age
from rpdash.services.events import ConnState, HealthEvent
from rpdash.services.snapshots import EndpointSnapshot, SnapshotBoard
from rpdash.services.verdict import Verdict, VerdictBook, drained_verdict, judge, severity_rank

log = logging.getLogger("rpdash.services.incidents")

Outlet = Callable[[AlertEvent], None]
#: connection states in which RunPod gave no usable answer
_SILENT = frozenset({ConnState.RETRYING, ConnState.UNREACHABLE})
#: a failing fetch younger than this after a good answer does not count as "no answer" yet
ANSWER_GRACE_S = 30.0


class HoldClock:
    """A clock for :class:`Incidents` whose ``now()`` (the alert hold times) follows
    ``hold`` while ``time()`` (stamps, job ages, "since") stays ``wall``'s: an incident on a
    simulator that runs faster than real time holds its alerts for simulated seconds, and
    what is stored and shown keeps the wall clock the rest of rpdash uses."""

    def __init__(self, hold: Clock, wall: Clock) -> None:
        self.hold = hold
        self.wall = wall

    def now(self) -> float:
        return self.hold.now()

    def time(self) -> float:
        return self.wall.time()

    async def sleep(self, seconds: float) -> None:
        await self.hold.sleep(seconds)


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    endpoint_id: str
    verdict: Verdict
    #: alert events this update caused (already handed to the outlets)
    events: list[AlertEvent] = field(default_factory=list)
    #: True when the verdict's kind or severity differs from the previous one
    changed: bool = False


class Incidents:
    """Verdicts, alerts and snapshots for every endpoint; see the module docstring."""

    def __init__(
        self,
        rules: AlertRules | None = None,
        clock: Clock | None = None,
        *,
        outlets: Sequence[Outlet] = (),
        answer_grace_s: float = ANSWER_GRACE_S,
    ) -> None:
        self.clock: Clock = clock or RealClock()
        self.engine = AlertEngine(rules or AlertRules(), self.clock)
        self.book = VerdictBook()
        self.board = SnapshotBoard()
        self.outlets: list[Outlet] = list(outlets)
        self.answer_grace_s = answer_grace_s
        self._names: dict[str, str] = {}
        self._metrics: dict[str, Any] = {}
        #: the job records last given to on_jobs, per endpoint (read by the verdict)
        self._jobs: dict[str, list[Any]] = {}

    # ------------------------------------------------------------------ feeding

    def on_health(
        self,
        event: HealthEvent,
        *,
        name: str | None = None,
        workers: Any = None,
        endpoint_info: Any = None,
        jobs: Iterable[Any] | None = None,
        account_cap: int | None = None,
        workers_elsewhere: int | None = None,
        drained: bool = False,
    ) -> IncidentUpdate:
        """A health poller's event, with what else is known of the endpoint (the worker
        list, its settings, its recent job records, the account's cap): see
        :func:`rpdash.services.verdict.judge`; without ``jobs``, the records last given to
        :meth:`on_jobs` (retry storms, stuck jobs). With ``account_cap`` but no
        ``workers_elsewhere``, the workers of the other endpoints watched here are counted
        (a lower bound: endpoints rpdash does not watch count too)."""
        ep = event.endpoint_id
        if account_cap is not None and workers_elsewhere is None:
            workers_elsewhere = self.workers_elsewhere(ep)
        if name:
            self._names[ep] = name
        now = self.clock.time()
        problem = self._problem(event, now)
        limited: bool | float = False
        if event.state is ConnState.RATE_LIMITED:
            limited = event.retry_in if event.retry_in else True
        if jobs is None:
            jobs = self._jobs.get(ep, ())
        verdict = judge(event.health, workers, endpoint_info, now=now, jobs=jobs, problem=problem,
                        rate_limited=limited, account_cap=account_cap,
                        workers_elsewhere=workers_elsewhere)  # fmt: skip
        if drained:
            verdict = drained_verdict(verdict)
        before = self.book.get(ep)
        verdict = self.book.update(ep, verdict)
        changed = before is None or (before.kind, before.severity) != (verdict.kind, verdict.severity)
        unsure = event.state in (ConnState.CONNECTING, ConnState.PAUSED)  # says nothing about RunPod
        events = self.engine.observe(ep, name=self._names.get(ep), health=event.health, verdict=verdict,
                                     problem=None if unsure else str(event.state))  # fmt: skip
        self._publish(ep, event, verdict)
        self._emit(events)
        return IncidentUpdate(ep, verdict, events, changed)

    def on_metrics(self, endpoint_id: str, metrics: Any = None, *, oldest_queued_s: float | None = None,
                   name: str | None = None) -> list[AlertEvent]:  # fmt: skip
        """Job metrics (an ``EndpointMetrics`` over the rules' ``failure_window``) and the
        oldest queued job's wait (``rpdash.services.alerts.oldest_queued_age``)."""
        if name:
            self._names[endpoint_id] = name
        if metrics is not None:
            self._metrics[endpoint_id] = metrics
            old = next((s for s in self.board() if s.endpoint_id == endpoint_id), None)
            if old is not None:
                self.board.put(EndpointSnapshot(endpoint_id, old.name, old.health, old.verdict, metrics,
                                                old.answering))  # fmt: skip
        events = self.engine.observe(endpoint_id, name=self._names.get(endpoint_id), metrics=metrics,
                                     oldest_queued_s=oldest_queued_s)  # fmt: skip
        self._emit(events)
        return events

    def on_jobs(self, endpoint_id: str, jobs: Iterable[Any], *, name: str | None = None) -> list[AlertEvent]:
        """The endpoint's job records (the tracker's, or the history's recent ones): job
        metrics over the rules' ``failure_window`` and the oldest queued job's wait, as
        :meth:`on_metrics` takes them."""
        from rpdash.services.metrics import compute_metrics

        rows = list(jobs)
        self._jobs[endpoint_id] = rows
        if name:
            self._names[endpoint_id] = name
        window = self.engine.thresholds(endpoint_id, self._names.get(endpoint_id)).failure_window
        now = self.clock.time()
        metrics = compute_metrics(rows, endpoint_id=endpoint_id, window_s=max(window, 1.0), now=now)
        return self.on_metrics(endpoint_id, metrics, oldest_queued_s=oldest_queued_age(rows, now))

    def tick(self) -> list[AlertEvent]:
        """Re-check the alert hold times (call every few seconds)."""
        events = self.engine.tick()
        self._emit(events)
        return events

    def forget(self, endpoint_id: str) -> None:
        """Stop tracking an endpoint (no longer watched)."""
        self.engine.forget(endpoint_id)
        self.book.forget(endpoint_id)
        self.board.remove(endpoint_id)
        self._metrics.pop(endpoint_id, None)
        self._jobs.pop(endpoint_id, None)

    # ------------------------------------------------------------------ reading

    def verdict(self, endpoint_id: str) -> Verdict | None:
        return self.book.get(endpoint_id)

    def workers_elsewhere(self, endpoint_id: str) -> int:
        """Workers (running, idle, starting or throttled) the other watched endpoints hold,
        by their last health: what they take of the account's worker cap."""
        total = 0
        for snap in self.board():
            if snap.endpoint_id != endpoint_id and snap.health is not None:
                w = snap.health.workers
                total += w.running + w.idle + w.initializing + w.throttled
        return total

    def worst(self) -> str:
        """The worst severity of the firing alerts (``ok`` when none)."""
        return self.engine.worst()

    def exit_code(self) -> int:
        """0 ok, 1 warning, 2 critical, from the firing alerts (Nagios/Icinga)."""
        return self.engine.exit_code()

    # ------------------------------------------------------------------ inside

    def _problem(self, event: HealthEvent, now: float) -> str | None:
        state = event.state
        if state in _SILENT and event.last_ok_at is not None and now - event.last_ok_at < self.answer_grace_s:
            return None  # one failed fetch after a good answer: the numbers are still fresh
        if state in (ConnState.OK, ConnState.PAUSED, ConnState.CONNECTING):
            return None
        return str(state)

    def _publish(self, ep: str, event: HealthEvent, verdict: Verdict) -> None:
        answering = {ConnState.OK: True, ConnState.RATE_LIMITED: True, ConnState.RETRYING: False,
                     ConnState.UNREACHABLE: False, ConnState.KEY_REJECTED: False,
                     ConnState.NOT_FOUND: False}.get(event.state)  # fmt: skip
        self.board.put(EndpointSnapshot(ep, self._names.get(ep), event.health, verdict, self._metrics.get(ep),
                                        answering))  # fmt: skip

    def _emit(self, events: list[AlertEvent]) -> None:
        for ev in events:
            for outlet in self.outlets:
                try:
                    outlet(ev)
                except Exception:  # an outlet's failure never stops the watch
                    log.exception("alert outlet %r failed", outlet)


def terminal_outlet(stream: IO[Any], *, min_severity: str = "warn", recovered: bool = True,
                    secret: str | None = None, **notify_kw: Any) -> Outlet:  # fmt: skip
    """An outlet that rings the bell and raises a terminal notification (OSC 9 / 777, see
    :mod:`rpdash.services.notify`) for alerts of ``min_severity`` or worse, and (with
    ``recovered``) when they clear. ``secret``: the API key, never shown."""
    from rpdash.services.notify import send

    floor = severity_rank(min_severity)

    def outlet(ev: AlertEvent) -> None:
        if severity_rank(ev.severity) < floor or (ev.kind is AlertKind.RECOVERED and not recovered):
            return
        title = "rpdash: recovered" if ev.kind is AlertKind.RECOVERED else f"rpdash: {ev.severity}"
        send(stream, title, ev.message, secret=secret, bell=ev.kind is AlertKind.FIRED, **notify_kw)

    return outlet


def store_outlet(store: Any) -> Outlet:
    """An outlet that appends every event to an ``AlertStore`` (rpdash.store.alerts)."""
    return store.record
