"""Incidents on the dashboard: each endpoint's verdict in its row (with the running cost
when the GPU type is known), the worst one in the status bar, alerts in the flash line plus
the bell and a desktop notification, ``v`` for a verdict's reasoning, ``:alerts`` for the
alert history.

The state lives in :class:`~rpdash.tui.incident_feed.IncidentFeed` (shared rules with
``rpdash watch``); this mixin of the dashboard screen feeds it from the health events and
job records the screen already receives and shows what it answers.
"""

from __future__ import annotations

import contextlib
from typing import Any

from rpdash.services.alerts import AlertEvent, AlertKind
from rpdash.services.events import ConnState, HealthEvent
from rpdash.tui.guard import guarded
from rpdash.tui.incident_feed import IncidentFeed, alert_line, unhealthy_listed
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.health import HealthTable

#: seconds between two job-metric feeds (failure rate, oldest queued) of one endpoint
JOBS_EVERY_S = 10.0
#: seconds (hold clock) between two worker-list reads of one endpoint during an incident
WORKERS_EVERY_S = 5.0


class IncidentsMixin(DashboardPart):
    """Verdicts and alerts of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""

    _feed: IncidentFeed | None = None
    _jobs_fed_at: float = 0.0
    #: when (hold clock) the worker list of each endpoint was last asked for
    _workers_read_at: dict[str, float] | None = None

    @property
    def incident_feed(self) -> IncidentFeed:
        if self._feed is None:
            self._feed = self._make_feed()
        return self._feed

    def _make_feed(self) -> IncidentFeed:
        app = self._app
        settings = getattr(app, "settings", None)
        secret = None
        with contextlib.suppress(Exception):
            secret = settings.api_key.get_secret_value() if settings.api_key else None
        store = None
        history = getattr(app.backend, "store", None)
        if history is not None and hasattr(history, "_write"):
            from rpdash.store.alerts import AlertStore

            store = AlertStore(history)
        control = None
        with contextlib.suppress(Exception):
            if not app.control_plane.local_url:
                control = app.control_plane
        return IncidentFeed(getattr(settings, "alerts", None), self._hold_clock(), write=app.write_terminal,
                            news=self._alert_news, store=store, defer=self._in_thread,
                            secret=secret, control=control, drained=self._drained)

    def _drained(self, endpoint_id: str) -> bool:
        access = getattr(self, "_scale_access", None)
        return access is not None and access.saved.get(endpoint_id) is not None

    def _hold_clock(self) -> Any:
        """The clock of the alert hold times: the simulator's when rpdash watches one that
        runs faster than real time (``app.hold_clock``, which a test sets, or the demo's),
        so "30 s" means 30 simulated seconds; else the app's clock."""
        from rpdash.services.incidents import HoldClock

        app = self._app
        sim = getattr(app, "hold_clock", None)
        if sim is None:
            sim = getattr(getattr(getattr(app, "backend", None), "demo_env", None), "clock", None)
        return app.clock if sim is None else HoldClock(sim, app.clock)

    def _in_thread(self, fn: Any) -> None:
        """Database writes off the UI thread."""
        self.app.run_worker(fn, thread=True, group="alert-store", exit_on_error=False)

    def setup_incidents(self) -> None:
        """On mount: finished jobs show their estimated cost in the Output header."""
        from rpdash.tui.widgets.output import OutputViewer

        prices = getattr(getattr(self._app, "settings", None), "prices", None)
        self.query_one(OutputViewer).cost_of = lambda rec: self.incident_feed.job_cost(rec, prices)

    # ------------------------------------------------------------------ feeding
    def feed_health(self, ev: HealthEvent) -> None:
        """A health event the screen received: judge it, show the verdict."""
        if ev.state is ConnState.PAUSED:
            return  # says nothing about RunPod
        feed = self.incident_feed
        ep = ev.endpoint_id
        feed.on_health(ev, name=self.names.get(ep))
        self._show_verdict(ep, ev)
        self._want_workers(ev)

    def _want_workers(self, ev: HealthEvent) -> None:
        """Unhealthy workers: read the worker list (not more often than WORKERS_EVERY_S),
        so that the next verdict can tell a bad release (outdated workers still serving)
        from a crash loop; and again when the list no longer agrees with the health."""
        cp = self.incident_feed.control
        if cp is None or ev.health is None:
            return
        ep = ev.endpoint_id
        cached = cp.cached_workers(ep)
        listed = unhealthy_listed(cached) if cached is not None else 0
        unhealthy = ev.health.workers.unhealthy
        if not unhealthy and not listed:
            return
        if cp.workers_fresh(ep) and (cached is None or listed == unhealthy):
            return  # read (or refused) lately, and nothing says the list is out of date
        now = self.incident_feed.incidents.clock.now()
        if self._workers_read_at is None:
            self._workers_read_at = {}
        if now - self._workers_read_at.get(ep, float("-inf")) < WORKERS_EVERY_S:
            return
        self._workers_read_at[ep] = now

        async def read() -> None:
            with contextlib.suppress(Exception):
                await cp.workers(ep, fresh=True)
                self._rejudge(ep, ev)

        self.app.run_worker(read(), group="incident-workers", exit_on_error=False)

    def _show_verdict(self, ep: str, ev: HealthEvent | None = None) -> None:
        feed = self.incident_feed
        table = self.query_one(HealthTable)
        health = ev.health if ev is not None else None
        if health is None and ep in table.views and table.views[ep].event is not None:
            health = table.views[ep].event.health
        prices = getattr(getattr(self._app, "settings", None), "prices", None)
        cost = feed.cost_per_s(ep, prices, health) if health is not None else None
        table.set_verdict(ep, feed.verdict(ep), cost)
        worst = feed.worst(table.views)
        bar = self.query_one(StatusBar)
        if worst is None:
            bar.set_verdict(None)
        else:
            wep, v = worst
            few = v.short_text.split(" (")[0]  # a few words; the row has the numbers
            bar.set_verdict(f"{self.names.get(wep, wep)}: {few}", v.severity)

    @guarded
    def tick_incidents(self) -> None:
        """1 Hz: alert hold times; every JOBS_EVERY_S the job records feed the job rules."""
        feed = self.incident_feed
        now = feed.incidents.clock.now()
        if now - self._jobs_fed_at >= JOBS_EVERY_S:
            self._jobs_fed_at = now
            jobs = list(getattr(self.session, "jobs", {}).values())
            table = self.query_one(HealthTable)
            for ep, view in table.views.items():
                feed.on_jobs(ep, [r for r in jobs if r.endpoint_id == ep], name=self.names.get(ep))
                ev = view.event
                if ev is not None and ev.state is not ConnState.PAUSED:
                    self._rejudge(ep, ev)  # a retry storm or a stuck job shows at once
        feed.tick()

    def _rejudge(self, ep: str, ev: HealthEvent) -> None:
        """The verdict again on the last health event (new job records or worker list)."""
        self.incident_feed.on_health(ev, name=self.names.get(ep))
        self._show_verdict(ep, ev)

    def _alert_news(self, ev: AlertEvent) -> None:
        label = self.names.get(ev.endpoint_id, ev.endpoint_id)
        severity = "information" if ev.kind is AlertKind.RECOVERED else (
            "error" if ev.severity == "critical" else "warning")
        with contextlib.suppress(Exception):
            self.flash(alert_line(ev, label), severity)

    # ------------------------------------------------------------------ views
    @guarded
    def on_health_table_show_verdict(self, event: HealthTable.ShowVerdict) -> None:
        from rpdash.tui.screens.verdict import VerdictScreen

        ep = event.endpoint_id
        self.app.push_screen(VerdictScreen(self.names.get(ep, ep), self.incident_feed.verdict(ep),
                                          now=self._app.clock.time()))

    def show_alerts(self) -> None:
        from rpdash.tui.screens.alerts import AlertsScreen

        feed = self.incident_feed
        self.app.push_screen(AlertsScreen(feed, self.names, wall=self._app.clock.time))
