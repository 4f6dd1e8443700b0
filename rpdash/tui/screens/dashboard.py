"""The one screen: endpoints, jobs, output and the submit form, with the bars around them.

The screen owns the layout, the focus and the wiring between panes (the jobs cursor drives
the output pane, ``e`` fills the form, ...). What each pane's keys do lives with the pane:
:mod:`~rpdash.tui.screens.job_actions`, :mod:`~rpdash.tui.screens.endpoint_actions`; the
``:`` line is :mod:`rpdash.tui.commands`; Session calls run in workers
(:mod:`~rpdash.tui.screens.session_calls`). The app is reached through the narrow
:class:`~rpdash.tui.host.AppHost`, never by importing it.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import ScreenResume, ScreenSuspend
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TextArea

from rpdash.core.records import JobRecord
from rpdash.services.events import StreamEvent
from rpdash.tui.commands import commands_help, run_command
from rpdash.tui.debounce import LeadingDebounce
from rpdash.tui.format import inert, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.messages import Flash
from rpdash.tui.notices import JobNotices
from rpdash.tui.screens.confirm import PurgeScreen
from rpdash.tui.screens.connection import ConnectionStatusMixin
from rpdash.tui.screens.endpoint_actions import EndpointActionsMixin
from rpdash.tui.screens.incident_view import IncidentsMixin
from rpdash.tui.screens.job_actions import JobActionsMixin
from rpdash.tui.screens.output_actions import OutputActionsMixin
from rpdash.tui.screens.pane_layout import PaneLayoutMixin
from rpdash.tui.screens.readonly_keys import ReadonlyKeysMixin
from rpdash.tui.screens.session_calls import SessionCallsMixin, err_text
from rpdash.tui.screens.submit_actions import SubmitActionsMixin
from rpdash.tui.widgets.bars import LineInput, StatusBar, TopBar
from rpdash.tui.widgets.footer import FitFooter
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.job_notes import JobNotes
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer, StreamLog
from rpdash.tui.widgets.panes import PaneSwitcher
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.host import AppHost


#: seconds the / line waits for the next key before it re-lists the jobs
FILTER_WAIT = 0.15


class DashboardScreen(PaneLayoutMixin, JobActionsMixin, EndpointActionsMixin, SubmitActionsMixin,
                      OutputActionsMixin, ConnectionStatusMixin, IncidentsMixin, ReadonlyKeysMixin,
                      SessionCallsMixin, Screen[None]):
    """Four panes; every one reachable by tab / shift+tab and by alt+1-alt+4 (on a small
    terminal one at a time: :mod:`~rpdash.tui.screens.pane_layout`)."""

    AUTO_FOCUS = "JobTable"

    def __init__(self, host: AppHost) -> None:
        super().__init__()
        self._app = host
        session = host.session
        assert session is not None
        self.session = session
        self.names = dict(host.backend.names)
        self._visible: tuple[str, ...] = ()
        self._follow_cursor = LeadingDebounce(self.set_timer, 0.12, self._apply_highlight)
        self._last_problem: str | None = None
        #: the endpoint whose "retrying" problem the status bar shows (None: not known)
        self._problem_endpoint: str | None = None
        #: finished jobs are told in coalesced notices (see on_job_done)
        self.notices = JobNotices(host, self.set_timer, self.names, self.flash)
        self._notes_job: str | None = None
        self._filter_timer: Any = None
        self._notes_at = 0.0

    @property
    def host(self) -> AppHost:
        return self._app

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        app = self._app
        endpoints = list(self.session.endpoints)
        yield TopBar(demo=app.backend.demo, readonly=app.readonly, id="topbar")
        yield PaneSwitcher(id="switcher")
        with Vertical(id="pane-health", classes="pane"):
            yield HealthTable(endpoints, names=self.names, wall=app.clock.time,
                              mono=app.clock.now,
                              fresh_within=2.0 + float(
                                  getattr(app.settings, "health_interval", 5.0)),
                              id="health")
        with Horizontal(id="middle"):
            with Vertical(id="pane-jobs", classes="pane"):
                yield LineInput(placeholder="filter: id, endpoint, status, text… (enter keeps,"
                                " esc clears)", id="filter", compact=True)
                yield JobTable(now=app.clock.time, names=self.names, id="jobs")
            with Vertical(id="right"):
                with Vertical(id="pane-output", classes="pane"):
                    yield OutputViewer(wall=app.clock.time, id="output")
                    yield JobNotes(wall=app.clock.time, id="job-notes")
                with Vertical(id="pane-submit", classes="pane"):
                    yield SubmitForm(endpoints, names=self.names, highlight=app.highlight,
                                     id="submit")
        yield LineInput(placeholder=commands_help(app.readonly), id="cmdline", compact=True)
        yield StatusBar(id="status")
        yield FitFooter(compact=True)

    def on_mount(self) -> None:
        self.query_one("#pane-health").border_title = "[alt+1] Endpoints"
        self.query_one("#pane-output").border_title = "[alt+3] Output"
        self.query_one("#pane-submit").border_title = "[alt+4] Submit"
        self.query_one("#filter").visible = False  # over the table's header: see rpdash.tcss
        self.query_one("#cmdline").display = False
        top = self.query_one(TopBar)
        top.base_url = self._app.backend.base_url
        top.key_hint = getattr(self._app.backend, "key_hint", "")
        top.local = bool(getattr(self._app.backend, "local_url", None))
        top.paused = bool(getattr(self.session, "paused", False))
        history_problem = getattr(self._app.backend, "history_problem", None)
        top.history_off = bool(history_problem)
        top.redraw()
        jobs = self.query_one(JobTable)
        recs = sorted(self.session.jobs.values(), key=lambda r: -(r.submitted_at or 0))
        with self.app.batch_update():
            jobs.apply(recs)
            for ev in list(self.session.health.values()):
                self.query_one(HealthTable).update_event(ev)
                self.feed_health(ev)
        self._update_jobs_title()
        self.setup_incidents()
        self.update_status()
        self._on_width(self.size.width, self.size.height)
        steady_cursors(self)
        if history_problem:
            self._problem(history_problem[:1].upper() + history_problem[1:], "error")

    def on_resize(self) -> None:
        self._on_width(self.size.width, self.size.height)

    # ------------------------------------------------------------------ health polling
    def on_screen_suspend(self, event: ScreenSuspend) -> None:
        # A full screen (help) covers the dashboard: its health pane is not seen.
        self.call_after_refresh(self._sync_health_active)

    def on_screen_resume(self, event: ScreenResume) -> None:
        self._sync_health_active()

    def _sync_health_active(self) -> None:
        """Health polls only while someone can use them: the dashboard on top, or the
        purge dialog (it shows the live queue size). Another screen (help, workers, ...)
        or a modal (confirm, raw JSON, recent inputs, palette) pauses them; the job
        tracker keeps running, since finished jobs still make toasts and history."""
        top = self.app.screen
        seen = top is self or isinstance(top, PurgeScreen)
        with contextlib.suppress(Exception):
            self.session.set_health_active(seen)
        if top is self and self.is_attached:
            # ages and countdowns are current at once, not a second later; but after
            # the first frame back, so escape shows the dashboard without waiting on it
            self.call_after_refresh(self.tick)

    # ------------------------------------------------------------------ service events
    @guarded
    def on_jobs(self, records: list[JobRecord]) -> None:
        jobs = self.query_one(JobTable)
        viewer = self.query_one(OutputViewer)
        with self.app.batch_update():
            jobs.apply(records)
            shown = viewer.job
            if shown is not None:
                for rec in records:
                    if rec.job_id == shown.job_id:
                        viewer.update_job(rec)
        self.update_status()

    @guarded
    def on_streams(self, events: list[StreamEvent]) -> None:
        viewer = self.query_one(OutputViewer)
        shown = viewer.job
        if shown is None:
            return
        reload = False
        for ev in events:
            if ev.job_id != shown.job_id:
                continue
            if not viewer.feed(ev.job_id, ev.seq, ev.outputs, done=ev.done, message=ev.message):
                reload = True
        if reload:
            self._show_job(shown.job_id)
        # otherwise the viewer writes what it was fed on its own 50 ms timer: one write
        # (and one repaint) per 50 ms however fast chunks arrive

    @guarded
    def on_job_done(self, rec: JobRecord) -> None:
        """A tracked job finished: say so (coalesced over a short window, so a burst makes
        one notice, not a column of them over the submit form)."""
        self.notices.job_done(rec)

    # ------------------------------------------------------------------ periodic (1 Hz)
    @guarded
    def tick(self) -> None:
        # nothing to redraw while covered (a modal dims the panes; only the purge dialog,
        # which shows the live queue size, keeps them ticking)
        if not self.is_attached or not (self.is_active or self._is_under_purge()):
            return
        try:
            self._tick()
        except NoMatches:  # the screen is being torn down
            return

    def _tick(self) -> None:
        self.query_one(HealthTable).tick()
        jobs = self.query_one(JobTable)
        jobs.tick()
        visible = tuple(jobs.visible_ids())
        if visible != self._visible:
            self._visible = visible
            with contextlib.suppress(Exception):
                self.session.set_visible(visible)
        self.update_status()

    def _is_under_purge(self) -> bool:
        return isinstance(self.app.screen, PurgeScreen)

    def _update_jobs_title(self) -> None:
        jobs = self.query_one(JobTable)
        parts = ["[alt+2] Jobs"]
        if jobs.filter_text:  # first: it hides jobs, so it must never be cut off
            parts.append(f"filter: {inert(jobs.filter_text, one_line=True)}")
        if jobs.marked:
            parts.append(f"{len(jobs.marked)} marked")
        if jobs.scope_endpoint is None:
            parts.append("all endpoints")
        else:
            parts.append(inert(self.names.get(jobs.scope_endpoint, jobs.scope_endpoint),
                               one_line=True))
        parts.append("newest first" if jobs.sort_key == "age" else "by status")
        pane = self.query_one("#pane-jobs")
        pane.border_title = " · ".join(parts)
        pane.set_class(bool(jobs.filter_text), "-filtered")

    def flash(self, message: str, severity: str = "information") -> None:
        """Routine news in the status bar's flash line (never over the panes)."""
        self.query_one(StatusBar).flash(message, severity)

    @guarded
    def on_flash(self, msg: Flash) -> None:
        self.flash(msg.text, msg.severity)

    @property
    def current_endpoint(self) -> str | None:
        """The endpoint the user is on (the ▶ row of the endpoints pane)."""
        return self.query_one(HealthTable).current

    def refresh_notes(self, *, force: bool = True) -> None:
        """The notes under the shown job (why it waits, result expiry): at 1 Hz, and
        (``force=False``) when jobs change, at most every 0.25 s for the same job."""
        try:
            notes = self.query_one(JobNotes)
            viewer = self.query_one(OutputViewer)
        except NoMatches:  # torn down
            return
        rec = viewer.job
        now = time.monotonic()
        shown = rec.job_id if rec is not None else None
        if not force and shown == self._notes_job and now - self._notes_at < 0.25:
            return
        self._notes_job, self._notes_at = shown, now
        if rec is not None:
            rec = getattr(self.session, "jobs", {}).get(rec.job_id, rec)
        notes.update_for(rec, self._app.control_plane, self._app.results, self.session)

    # ------------------------------------------------------------------ panes
    @guarded
    def focus_pane(self, name: str) -> None:
        if name == "health":
            self.query_one(HealthTable).focus()
        elif name == "jobs":
            self.query_one(JobTable).focus()
        elif name == "output":
            log = self.query_one(StreamLog)
            if log.display:
                log.focus()
            else:
                self.query_one("#out-final").focus()
        elif name == "submit":
            self.query_one(SubmitForm).editor.focus()

    def select_job(self, rec: JobRecord) -> None:
        """Put ``rec`` in the list, the cursor on it and its output on screen."""
        self.on_jobs([rec])
        jobs = self.query_one(JobTable)
        if rec.job_id in jobs._shown:
            jobs.move_cursor(row=jobs.get_row_index(rec.job_id))
        self._show_job(rec.job_id)

    # ------------------------------------------------------------------ job list events
    @on(JobTable.JobHighlighted)
    @guarded
    def _job_highlighted(self, event: JobTable.JobHighlighted) -> None:
        if event.job_id == self.query_one(JobTable).current_job_id:  # else stale: moved on
            self._follow_cursor.push(event.job_id)

    def _apply_highlight(self, job_id: str | None) -> None:
        viewer = self.query_one(OutputViewer)
        if job_id is None or (viewer.job is not None and viewer.job.job_id == job_id):
            return
        self._show_job(job_id)

    def _show_job(self, job_id: str) -> None:
        rec = self.query_one(JobTable).records.get(job_id) or self.session.jobs.get(job_id)
        viewer = self.query_one(OutputViewer)
        old = viewer.job
        if old is not None and old.job_id != job_id:
            with contextlib.suppress(Exception):
                self.session.unfollow(old.job_id)
        chunks: list[Any] = []
        if rec is not None and (rec.mode == "stream" or rec.chunk_count):
            try:
                chunks = self.session.chunks(job_id)
            except Exception as exc:  # noqa: BLE001 - the store may be unreadable
                self._problem(f"cannot read stored output: {err_text(exc)}")
            if not rec.terminal:
                with contextlib.suppress(Exception):
                    self.session.follow(job_id)
        elif rec is not None and not rec.terminal:
            # the job on screen: the Session notices its end at once
            select = getattr(self.session, "select", None)
            if callable(select):
                with contextlib.suppress(Exception):
                    select(job_id)
        viewer.show_job(rec, chunks)
        self.refresh_switcher()
        # the notes under the output (why it waits, result expiry) follow at once, not at
        # the next 1 Hz tick: for up to a second they described the previous job
        with contextlib.suppress(Exception):
            self.refresh_notes(force=False)

    @on(JobTable.ViewChanged)
    @guarded
    def _view_changed(self) -> None:
        self._update_jobs_title()
        self.update_status()

    # ------------------------------------------------------------------ line inputs
    @on(LineInput.Submitted, "#filter")
    @guarded
    def _filter_submitted(self, event: LineInput.Submitted) -> None:
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        jobs = self.query_one(JobTable)
        jobs.set_filter(event.value)
        _show_line(event.input, False)
        jobs.focus()
        self._update_jobs_title()

    @on(LineInput.Changed, "#filter")
    @guarded
    def _filter_typed(self, event: LineInput.Changed) -> None:
        """k9s style: the list follows the keys typed (once they pause for FILTER_WAIT s:
        re-listing 10,000 jobs takes longer than a key may); enter keeps it, esc clears."""
        event.stop()
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_WAIT, self._apply_typed_filter)

    @guarded
    def _apply_typed_filter(self) -> None:
        self._filter_timer = None
        line = self.query_one("#filter", LineInput)
        if line.visible:
            self.set_filter(line.value)

    @on(LineInput.Closed)
    @guarded
    def _line_closed(self, event: LineInput.Closed) -> None:
        line = event.line
        _show_line(line, False)
        if line.id == "filter":
            self.set_filter("")
        self.query_one(JobTable).focus()

    def open_command_line(self, text: str = "") -> None:
        self._open_line("#cmdline", text)

    def action_open_filter(self) -> None:
        """``/`` in the jobs pane (runs in the key's own turn, see _open_line)."""
        self._open_line("#filter", self.query_one(JobTable).filter_text)

    def _open_line(self, selector: str, text: str) -> None:
        """Show a one-line prompt and give it the focus now, not after the keys already
        typed: ``/FAIL`` arriving in one read must filter, not sort by age (A) and open
        the logs (L)."""
        line = self.query_one(selector, LineInput)
        line.value = text
        line.cursor_position = len(text)
        _show_line(line, True)
        self.set_focus(line)

    @on(LineInput.Submitted, "#cmdline")
    @guarded
    def _command_submitted(self, event: LineInput.Submitted) -> None:
        event.stop()
        _show_line(event.input, False)
        self.query_one(JobTable).focus()
        self.run_command(event.value)

    @guarded
    def run_command(self, line: str) -> None:
        """``:`` commands (k9s style; :mod:`rpdash.tui.commands`)."""
        run_command(self, line)

    # ------------------------------------------------------------------ command targets
    def is_watched(self, endpoint_id: str) -> bool:
        return endpoint_id in self.query_one(HealthTable).views

    def show_all_jobs(self) -> None:
        self.query_one(JobTable).set_scope(None)
        self._update_jobs_title()

    def set_filter(self, text: str) -> None:
        self.query_one(JobTable).set_filter(text)
        self._update_jobs_title()

    def watch(self, job_id: str, endpoint: str | None) -> None:
        ep = self._app.resolve_endpoint(endpoint) if endpoint else self.query_one(HealthTable).current
        if ep is None:
            self.app.notify("Which endpoint? :watch JOB_ID ENDPOINT", severity="warning")
            return
        try:
            rec = self.session.watch(job_id, ep)
        except Exception as exc:  # noqa: BLE001 - InvalidInput for a bad id
            self.app.notify(f"Cannot watch: {err_text(exc)}", severity="error", markup=False)
            return
        self.notices.own.add(rec.job_id)
        self.select_job(rec)
        self.flash(f"Watching {short_id(rec.job_id, 40)}")

    # ------------------------------------------------------------------ results
    # ------------------------------------------------------------------ misc
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        pass  # validation happens inside the form


def steady_cursors(node: Any) -> None:
    """No blinking cursors: a blink repaints twice a second while nothing happens, and
    rpdash stays open all day (idle cost matters more than the blink)."""
    from textual.widgets import Input

    for w in node.query(TextArea):
        w.cursor_blink = False
    for w in node.query(Input):
        w.cursor_blink = False


def _show_line(line: Widget, show: bool) -> None:
    """Open or close a one-line prompt. The filter line lies over the job table's header
    row (its own layer, rpdash.tcss ``#filter``) and is only made visible: the table keeps
    its size (no resize, no layout of the pane). The focus moving to the line still
    repaints the table's cells (``DataTable:focus`` tints the whole table). The command
    line takes a row of the screen while open."""
    if line.id == "filter":
        line.visible = show
    else:
        line.display = show
