"""The endpoints pane's actions: make an endpoint current (``u``), show its jobs
(``enter``), purge its queue (``ctrl+d``, typed confirm), and show a newly watched one;
scale, drain and restore come with :class:`~rpdash.tui.screens.scale_actions.ScaleActionsMixin`.

The :class:`~rpdash.tui.widgets.health.HealthTable` owns the keys and posts a
:class:`HealthTable.EndpointAction`; this mixin of the dashboard screen carries it out.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from rpdash.tui.format import inert, plural
from rpdash.tui.guard import guarded
from rpdash.tui.screens.confirm import PurgeScreen
from rpdash.tui.screens.scale_actions import ScaleActionsMixin
from rpdash.tui.screens.session_calls import err_text
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.screens.session_calls import OpDone


class EndpointActionsMixin(ScaleActionsMixin):
    """Endpoints-pane actions of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""

    #: (endpoint, jobs removed) of the last purge (for tests and the debug view)
    last_purge: tuple[str, int] | None = None


    # ------------------------------------------------------------------ endpoints
    @guarded
    def on_health_table_endpoint_action(self, event: HealthTable.EndpointAction) -> None:
        ep = event.endpoint_id
        if event.action == "use":
            self.use_endpoint(ep)
        elif event.action == "jobs":
            self.use_endpoint(ep)
            self.query_one(JobTable).set_scope(ep)
            self._update_jobs_title()
            self.focus_pane("jobs")
        elif event.action == "purge":
            self.purge(ep)

    def use_endpoint(self, ep: str) -> None:
        self.query_one(HealthTable).set_current(ep)
        self.query_one(SubmitForm).set_endpoint(ep)
        jobs = self.query_one(JobTable)
        if jobs.scope_endpoint is not None and jobs.scope_endpoint != ep:
            jobs.set_scope(ep)
        self._update_jobs_title()

    def show_watched(self, endpoint_id: str, label: str, *, use: bool = True) -> None:
        """A newly watched endpoint gets its row (and, with ``use``, becomes current)."""
        if label != endpoint_id:
            self.names.setdefault(endpoint_id, label)
        health = self.query_one(HealthTable)
        health.add_endpoint(endpoint_id, self.names.get(endpoint_id, endpoint_id))
        with contextlib.suppress(Exception):
            form = self.query_one(SubmitForm)
            if label != endpoint_id:
                form._names.setdefault(endpoint_id, label)
            self.query_one(JobTable).set_names(self.names)
        if use:
            self.use_endpoint(endpoint_id)  # the cursor goes with it

    def purge(self, ep: str | None = None) -> None:
        if self._app.readonly:
            self.flash("Read-only mode: purge is not available (rpdash was started with "
                       "--readonly)", "warning")
            return
        health = self.query_one(HealthTable)
        ep = ep or self.current_endpoint  # the ▶ endpoint, as for every other action
        if ep is None:
            return
        name = self.names.get(ep, ep)

        def answer(yes: bool | None) -> None:
            if yes:
                self._run_op("purge", self.session.purge(ep), context=ep)

        self.app.push_screen(PurgeScreen(ep, name, health.queue_size(ep)), answer)

    def _done_purge(self, msg: OpDone) -> None:
        ep = msg.context
        name = inert(self.names.get(ep, ep), one_line=True)
        if msg.error is not None:
            self.app.notify(f"Purge of {name} failed: {inert(err_text(msg.error), one_line=True)}",
                            severity="error", timeout=8, markup=False)
            return
        removed = getattr(msg.value, "removed", 0)
        self.last_purge = (ep, removed)
        self.app.notify(f"Purged {name}: removed {plural(removed, 'queued job')}",
                        timeout=8, markup=False)
        with contextlib.suppress(Exception):
            self.session.refresh_now()
