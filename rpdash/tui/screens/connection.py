"""How the connections are doing, said on the dashboard: each endpoint's health answer in
its row, a problem (unreachable, key rejected, retrying in N s) named in the status bar
(and, for errors, once in a notice) until it is over, and the jobs summary."""

from __future__ import annotations


from typing import Any

from rpdash.services.events import ConnState, HealthEvent
from rpdash.tui.format import inert
from rpdash.tui.guard import guarded
from rpdash.tui.screens.confirm import PurgeScreen
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.widgets.bars import StatusBar, TopBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable

_RETRY_STATES = (ConnState.RETRYING, ConnState.UNREACHABLE, ConnState.RATE_LIMITED)


class ConnectionStatusMixin(DashboardPart):
    """Health events and problems of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""

    feed_health: Any


    @guarded
    def on_health(self, ev: HealthEvent) -> None:
        if ev.state is ConnState.PAUSED and not getattr(self.session, "paused", False):
            # the polls rest while a dialog or screen covers the pane (by design): the
            # user paused nothing and nothing is stale, so the rows keep their last answer
            return
        self.query_one(HealthTable).update_event(ev)
        self.feed_health(ev)
        top = self.app.screen
        if isinstance(top, PurgeScreen) and top.endpoint_id == ev.endpoint_id:
            top.set_queue_size(self.query_one(HealthTable).queue_size(ev.endpoint_id))
        self.update_status()
        if ev.state in (ConnState.KEY_REJECTED, ConnState.NOT_FOUND) and ev.message:
            self._problem(ev.message, "error")
        elif ev.state in _RETRY_STATES and ev.message:
            # name the problem and what rpdash does about it (the row only has room for
            # "retrying in 4s"); the numbers stay on screen, marked stale
            wait = f", retrying in {ev.retry_in:.0f} s" if ev.retry_in is not None else ""
            name = self.names.get(ev.endpoint_id, ev.endpoint_id)
            self._problem(f"{name}: {ev.state.value}{wait}: {ev.message}", "warning",
                          ev.endpoint_id)
        elif ev.state is ConnState.OK and ", retrying in " in (self._last_problem or ""):
            # recovered: the problem is over, if it was this endpoint's (another
            # endpoint answering well says nothing about the one that is retrying)
            owner = self._problem_endpoint
            if owner == ev.endpoint_id or (owner is None and self._all_ok()):
                self.query_one(StatusBar).set_problem(None)
                self._last_problem = None

    @guarded
    def on_problem(self, message: str, severity: str, endpoint_id: str | None = None) -> None:
        self._problem(message, severity, endpoint_id)

    def _all_ok(self) -> bool:
        views = self.query_one(HealthTable).views.values()
        return all(v.event is None or v.event.state is ConnState.OK for v in views)

    def _problem(self, message: str, severity: str = "warning",
                 endpoint_id: str | None = None) -> None:
        self._problem_endpoint = endpoint_id
        self.query_one(StatusBar).set_problem(message, severity)
        if severity == "error" and message != self._last_problem:
            self.app.notify(inert(message, one_line=True), severity="error", timeout=8,
                            markup=False)
        self._last_problem = message

    def update_status(self) -> None:
        health = self.query_one(HealthTable)
        bar = self.query_one(StatusBar)
        paused = bool(getattr(self.session, "paused", False))
        bar.set_connections((v.event for v in health.views.values()), paused)
        jobs = self.query_one(JobTable)
        bar.set_jobs(jobs.active, len(jobs.records), len(jobs.marked))  # kept by apply()
        self.query_one(TopBar).set_paused(paused)
