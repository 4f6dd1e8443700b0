"""The one screen: endpoints, jobs, output and the submit form, with the bars around them.

The screen owns the wiring between panes (the jobs cursor drives the output pane, ``e``
fills the form, ...) and turns user intents into Session calls. Session calls run in
workers (group "ops", never cancelled by anything else); a worker only awaits the Session
and posts an :class:`OpDone` message, whose handler changes the widgets.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import ScreenResume, ScreenSuspend
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, TextArea

from rpdash.core.errors import RpdashError
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState, HealthEvent, StreamEvent
from rpdash.tui.actions import is_destructive
from rpdash.tui.format import error_summary, fmt_ms, inert, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.screens.confirm import ConfirmScreen, PurgeScreen
from rpdash.tui.screens.viewers import JsonScreen, RecentInputsScreen
from rpdash.tui.widgets.bars import LineInput, StatusBar, TopBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.job_notes import JobNotes
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import (
    NOT_FOUND_MESSAGE,
    OutputViewer,
    StreamLog,
    export_text,
    shown_error,
)
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.app import RpdashApp

COMMANDS_HELP = (
    ":watch JOB_ID [ENDPOINT]  :ep [NAME]  :workers  :logs  :metrics  :jobs  :all  :submit  "
    ":purge [NAME]  :filter TEXT  :pause  :refresh  :help  :q"
)


#: seconds over which finished jobs are gathered into one toast
DONE_TOAST_WINDOW = 1.0
#: ... and jobs of an earlier run found expired, into one toast
EXPIRED_TOAST_WINDOW = 4.0


class OpDone(Message):
    """A Session call finished (the worker's only way to affect the UI)."""

    def __init__(self, op: str, *, value: Any = None, error: BaseException | None = None,
                 context: Any = None) -> None:
        super().__init__()
        self.op = op
        self.value = value
        self.error = error
        self.context = context


_RETRY_STATES = (ConnState.RETRYING, ConnState.UNREACHABLE, ConnState.RATE_LIMITED)


def _err_text(exc: BaseException) -> str:
    """One line for a notification, with control characters made inert."""
    if isinstance(exc, RpdashError):
        return inert(str(exc), one_line=True)
    return inert(f"{type(exc).__name__}: {exc}", one_line=True)


class DashboardScreen(Screen[None]):
    """Four panes; every one reachable by tab / shift+tab and by alt+1-alt+4."""

    AUTO_FOCUS = "JobTable"

    def __init__(self, app_: RpdashApp) -> None:
        super().__init__()
        self._app = app_
        session = app_.session
        assert session is not None
        self.session = session
        self.names = dict(app_.backend.names)
        self._visible: tuple[str, ...] = ()
        self._highlight_timer: Any = None
        self._pending_highlight: str | None = None
        self._last_problem: str | None = None
        #: the endpoint whose "retrying" problem the status bar shows (None: not known)
        self._problem_endpoint: str | None = None
        #: finished jobs waiting for their toast (coalesced, see on_job_done)
        self._done_buffer: list[JobRecord] = []
        self._done_timer: Any = None
        self._expired_buffer: list[JobRecord] = []
        self._expired_timer: Any = None
        #: jobs the user submitted, retried or watched from this screen: always a toast
        self._own: set[str] = set()

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        app = self._app
        endpoints = list(self.session.endpoints)
        yield TopBar(demo=app.backend.demo, readonly=app.readonly, id="topbar")
        with Vertical(id="pane-health", classes="pane"):
            yield HealthTable(endpoints, names=self.names, wall=app.clock.time,
                              mono=app.clock.now,
                              fresh_within=2.0 + float(
                                  getattr(app.settings, "health_interval", 5.0)),
                              id="health")
        with Horizontal(id="middle"):
            with Vertical(id="pane-jobs", classes="pane"):
                yield LineInput(placeholder="filter: id, endpoint, status, text… (enter applies,"
                                " esc clears)", id="filter", compact=True)
                yield JobTable(now=app.clock.time, names=self.names, id="jobs")
            with Vertical(id="right"):
                with Vertical(id="pane-output", classes="pane"):
                    yield OutputViewer(wall=app.clock.time, id="output")
                    yield JobNotes(wall=app.clock.time, id="job-notes")
                with Vertical(id="pane-submit", classes="pane"):
                    yield SubmitForm(endpoints, names=self.names, highlight=app.highlight,
                                     id="submit")
        yield LineInput(placeholder=COMMANDS_HELP, id="cmdline", compact=True)
        yield StatusBar(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#pane-health").border_title = "[alt+1] Endpoints"
        self.query_one("#pane-output").border_title = "[alt+3] Output"
        self.query_one("#pane-submit").border_title = "[alt+4] Submit"
        self.query_one("#filter").display = False
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
        self._update_jobs_title()
        self._update_status()
        self._on_width(self.size.width, self.size.height)
        steady_cursors(self)
        if history_problem:
            self._problem(history_problem[:1].upper() + history_problem[1:], "error")

    def on_resize(self) -> None:
        self._on_width(self.size.width, self.size.height)

    def _on_width(self, width: int, height: int) -> None:
        self.set_class(width < 130 or height < 40, "-narrow")

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
            self.tick()  # ages and countdowns are current at once, not a second later

    # ------------------------------------------------------------------ service events
    @guarded
    def on_health(self, ev: HealthEvent) -> None:
        self.query_one(HealthTable).update_event(ev)
        top = self.app.screen
        if isinstance(top, PurgeScreen) and top.endpoint_id == ev.endpoint_id:
            top.set_queue_size(self.query_one(HealthTable).queue_size(ev.endpoint_id))
        self._update_status()
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
        self._update_status()

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
        """A tracked job finished: toast it. Toasts are coalesced over a short window, so
        a burst (the history's jobs expiring at start, a busy endpoint) makes one toast,
        not a column of them over the submit form."""
        self._done_buffer.append(rec)
        if self._done_timer is None:
            self._done_timer = self.set_timer(DONE_TOAST_WINDOW, self._flush_done)

    @guarded
    def _flush_done(self) -> None:
        self._done_timer = None
        batch, self._done_buffer = self._done_buffer, []
        if not batch:
            return
        own = [r for r in batch if r.job_id in self._own]
        rest = [r for r in batch if r.job_id not in self._own]
        expired = [r for r in rest if r.expired and not r.status.terminal]
        finished = [r for r in rest if not (r.expired and not r.status.terminal)]
        for rec in own + (finished if len(finished) <= 2 else []):
            self._toast_one(rec)
        if len(finished) > 2:
            self._toast_many(finished)
        if expired:
            # jobs of an earlier run RunPod has forgotten: they expire over a few seconds
            # as the tracker gets to them, so they are gathered longer, into one toast
            self._expired_buffer.extend(expired)
            if self._expired_timer is None:
                self._expired_timer = self.set_timer(EXPIRED_TOAST_WINDOW,
                                                     self._flush_expired)

    @guarded
    def _flush_expired(self) -> None:
        self._expired_timer = None
        n, self._expired_buffer = len(self._expired_buffer), []
        if n:
            what = "1 earlier job expired" if n == 1 else f"{n} earlier jobs expired"
            its = "its result" if n == 1 else "their results"
            self.app.notify(f"{what}: RunPod no longer keeps {its} (kept in the history)",
                            severity="warning", timeout=6, markup=False)

    def _toast_one(self, rec: JobRecord) -> None:
        status = rec.status
        gone = rec.expired and not status.terminal
        error = shown_error(rec)
        label = ("NOT FOUND" if error == NOT_FOUND_MESSAGE else "EXPIRED") if gone else str(status)
        sev = "warning" if gone else {JobStatus.COMPLETED: "information",
                                      JobStatus.CANCELLED: "warning"}.get(status, "error")
        what = f"Job {short_id(rec.job_id, 14)} {label}"
        name = self.names.get(rec.endpoint_id, rec.endpoint_id)
        detail = f" on {inert(name, one_line=True)}"
        if rec.execution_ms is not None and not gone:
            detail += f" after {fmt_ms(rec.execution_ms)}"
        if error and status is not JobStatus.COMPLETED:
            detail += f": {error_summary(error, 120)}"
        timeout = 4 if sev == "information" else 8
        self.app.notify(what + detail, severity=sev, timeout=timeout, markup=False)  # type: ignore[arg-type]

    def _toast_many(self, recs: list[JobRecord]) -> None:
        counts: dict[str, int] = {}
        for r in recs:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        bad = [r for r in recs if r.status is not JobStatus.COMPLETED]
        text = f"{len(recs)} jobs finished: " + ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        if bad and bad[-1].error:
            text += f" (latest: {short_id(bad[-1].job_id, 14)}: {error_summary(bad[-1].error, 80)})"
        failed = any(r.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) for r in recs)
        self.app.notify(text, severity="error" if failed else "information",
                        timeout=8 if failed else 4, markup=False)

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
        self._update_status()

    def _is_under_purge(self) -> bool:
        return isinstance(self.app.screen, PurgeScreen)

    def _update_status(self) -> None:
        health = self.query_one(HealthTable)
        bar = self.query_one(StatusBar)
        paused = bool(getattr(self.session, "paused", False))
        bar.set_connections((v.event for v in health.views.values()), paused)
        jobs = self.query_one(JobTable)
        active = sum(1 for r in jobs.records.values() if not r.terminal)
        bar.set_jobs(active, len(jobs.records), len(jobs.marked))
        self.query_one(TopBar).set_paused(paused)

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

    @guarded
    def new_job(self) -> None:
        form = self.query_one(SubmitForm)
        cur = self.query_one(HealthTable).current
        if cur:
            form.set_endpoint(cur)
        form.editor.focus()
        form.editor.select_all()  # typing replaces the old input; arrows keep it

    # ------------------------------------------------------------------ job list events
    @on(JobTable.JobHighlighted)
    @guarded
    def _job_highlighted(self, event: JobTable.JobHighlighted) -> None:
        # Debounced: holding j over a long list does not load every job's output.
        self._pending_highlight = event.job_id
        if self._highlight_timer is not None:
            self._highlight_timer.stop()
        self._highlight_timer = self.set_timer(0.12, self._apply_highlight)

    def _apply_highlight(self) -> None:
        self._highlight_timer = None
        job_id = self._pending_highlight
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
                self._problem(f"cannot read stored output: {_err_text(exc)}")
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
        # the notes under the output (why it waits, result expiry) follow at once, not at
        # the next 1 Hz tick: for up to a second they described the previous job
        with contextlib.suppress(Exception):
            self._app.ops.tick(force=False)

    @on(JobTable.ViewChanged)
    @guarded
    def _view_changed(self) -> None:
        self._update_jobs_title()
        self._update_status()

    @on(JobTable.JobAction)
    @guarded
    def _job_action(self, event: JobTable.JobAction) -> None:
        act, ids = event.action, event.job_ids
        if is_destructive(act) and self._app.readonly:
            self.app.notify("Read-only mode: cancel, retry and purge are disabled",
                            severity="warning", timeout=4)
            return
        handler = getattr(self, f"_do_{act}", None)
        if handler is not None:
            handler(ids)

    def _do_open(self, ids: list[str]) -> None:
        self._show_job(ids[0])
        self.focus_pane("output")

    def _do_follow(self, ids: list[str]) -> None:
        job_id = ids[0]
        self._show_job(job_id)
        viewer = self.query_one(OutputViewer)
        if not viewer.following:
            viewer.action_toggle_follow()
        with contextlib.suppress(Exception):
            self.session.follow(job_id)
        self.focus_pane("output")

    def _do_edit(self, ids: list[str]) -> None:
        rec = self.query_one(JobTable).records.get(ids[0])
        if rec is None:
            return
        if rec.input is None:
            self.app.notify("This job's input is not known (it was not submitted from rpdash)",
                            severity="warning", timeout=4)
            return
        form = self.query_one(SubmitForm)
        form.load_input(rec.input, endpoint_id=rec.endpoint_id,
                        mode=rec.mode if rec.mode in ("run", "runsync", "stream") else None)
        form.editor.focus()
        self.app.notify(f"Input of {short_id(rec.job_id, 14)} loaded: edit, then ctrl+s",
                        timeout=3, markup=False)

    def _do_copy_id(self, ids: list[str]) -> None:
        self.app.copy_to_clipboard(ids[0])
        self.app.notify(f"Copied {short_id(ids[0], 40)}", timeout=2, markup=False)

    def _do_raw(self, ids: list[str]) -> None:
        rec = self.query_one(JobTable).records.get(ids[0])
        if rec is None:
            return
        value = dataclasses.asdict(rec)
        value["status"] = str(rec.status)
        self.app.push_screen(JsonScreen(f"Job {rec.job_id}", value))

    def _do_filter(self, ids: list[str]) -> None:
        line = self.query_one("#filter", LineInput)
        line.value = self.query_one(JobTable).filter_text
        line.display = True
        line.focus()

    def _do_toggle_scope(self, ids: list[str]) -> None:
        jobs = self.query_one(JobTable)
        if jobs.scope_endpoint is None:
            cur = self.query_one(HealthTable).current
            if cur is None:
                return
            jobs.set_scope(cur)
        else:
            jobs.set_scope(None)
        self._update_jobs_title()

    def _do_cancel(self, ids: list[str]) -> None:
        jobs = self.query_one(JobTable)
        live = [j for j in ids if (r := jobs.records.get(j)) is not None and not r.terminal]
        if not live:
            self.app.notify("Nothing to cancel: the selected jobs have finished",
                            severity="warning", timeout=4)
            return
        body = Text()
        body.append(f"Cancel {len(live)} job{'s' if len(live) != 1 else ''}?\n\n")
        for j in live[:8]:
            r = jobs.records[j]
            body.append(f"  {short_id(j, 40)}", style="bold")
            body.append(f"  {r.status}  {inert(self.names.get(r.endpoint_id, r.endpoint_id), one_line=True)}\n")
        if len(live) > 8:
            body.append(f"  … and {len(live) - 8} more\n")
        body.append("\nQueued jobs are removed; running jobs are told to stop.")
        skipped = len(ids) - len(live)
        if skipped:
            body.append(f"\n{skipped} finished job(s) are left alone.", style="dim")

        def answer(yes: bool | None) -> None:
            if yes:
                self._run_op("cancel", self.session.cancel(live), context=live)

        self.app.push_screen(ConfirmScreen("Cancel jobs", body, yes="Cancel jobs"), answer)

    def _do_retry(self, ids: list[str]) -> None:
        rec = self.query_one(JobTable).records.get(ids[0])
        if rec is None:
            return
        if not rec.status.retryable:
            self.app.notify(f"Only FAILED or TIMED_OUT jobs can be retried (this one is "
                            f"{rec.status})", severity="warning", timeout=4)
            return
        self._run_op("retry", self.session.retry(rec.job_id), context=rec.job_id)

    # ------------------------------------------------------------------ endpoints
    @on(HealthTable.EndpointAction)
    @guarded
    def _endpoint_action(self, event: HealthTable.EndpointAction) -> None:
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

    def purge(self, ep: str | None = None) -> None:
        if self._app.readonly:
            self.app.notify("Read-only mode: purge is disabled", severity="warning", timeout=4)
            return
        health = self.query_one(HealthTable)
        ep = ep or health.current_endpoint or health.current
        if ep is None:
            return
        name = self.names.get(ep, ep)

        def answer(yes: bool | None) -> None:
            if yes:
                self._run_op("purge", self.session.purge(ep), context=ep)

        self.app.push_screen(PurgeScreen(ep, name, health.queue_size(ep)), answer)

    # ------------------------------------------------------------------ submit
    @on(SubmitForm.Submitted)
    @guarded
    def _submit(self, event: SubmitForm.Submitted) -> None:
        spec = event.spec
        form = self.query_one(SubmitForm)
        form.busy = True
        self.query_one(TopBar).set_busy(f"submitting to {self.names.get(spec.endpoint_id, spec.endpoint_id)}")
        self._run_op(
            "submit",
            self.session.submit(spec.endpoint_id, spec.input, mode=spec.mode,
                                policy=spec.policy, webhook=spec.webhook),
            context=spec,
        )

    @on(SubmitForm.LeaveRequested)
    @guarded
    def _leave_form(self) -> None:
        self.focus_pane("jobs")

    @on(SubmitForm.RecentRequested)
    @guarded
    def _recent(self) -> None:
        try:
            inputs = self._app.backend.recent_inputs(20)
        except Exception as exc:  # noqa: BLE001
            self._problem(f"cannot read recent inputs: {_err_text(exc)}")
            return

        def picked(value: dict | None) -> None:
            if value is not None:
                form = self.query_one(SubmitForm)
                form.load_input(value)
                form.editor.focus()

        self.app.push_screen(RecentInputsScreen(inputs), picked)

    # ------------------------------------------------------------------ output pane
    @on(OutputViewer.SaveRequested)
    @guarded
    def _save(self, event: OutputViewer.SaveRequested) -> None:
        rec = self.query_one(JobTable).records.get(event.job_id) or self.query_one(OutputViewer).job
        if rec is None:
            return
        try:
            chunks = self.session.chunks(rec.job_id) if (rec.chunk_count or rec.mode == "stream") else []
            path = save_output(rec, chunks)
        except OSError as exc:
            self.app.notify(f"Could not save: {exc.strerror or exc}", severity="error",
                            timeout=6, markup=False)
            return
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"Could not save: {_err_text(exc)}", severity="error", timeout=6,
                            markup=False)
            return
        self.app.notify(f"Saved to {path}", timeout=6, markup=False)

    @on(OutputViewer.CopyRequested)
    @guarded
    def _copy(self, event: OutputViewer.CopyRequested) -> None:
        rec = self.query_one(OutputViewer).job
        if rec is None:
            return
        chunks = self.session.chunks(rec.job_id) if (rec.chunk_count or rec.mode == "stream") else []
        self.app.copy_to_clipboard(export_text(rec, chunks))
        self.app.notify("Output copied to the clipboard", timeout=2)

    # ------------------------------------------------------------------ line inputs
    @on(LineInput.Submitted, "#filter")
    @guarded
    def _filter_submitted(self, event: LineInput.Submitted) -> None:
        event.stop()
        jobs = self.query_one(JobTable)
        jobs.set_filter(event.value)
        event.input.display = False
        jobs.focus()
        self._update_jobs_title()

    @on(LineInput.Closed)
    @guarded
    def _line_closed(self, event: LineInput.Closed) -> None:
        line = event.line
        line.display = False
        if line.id == "filter":
            self.query_one(JobTable).set_filter("")
            self._update_jobs_title()
            self.query_one(JobTable).focus()
        else:
            self.query_one(JobTable).focus()

    def open_command_line(self, text: str = "") -> None:
        line = self.query_one("#cmdline", LineInput)
        line.value = text
        line.display = True
        line.focus()

    @on(LineInput.Submitted, "#cmdline")
    @guarded
    def _command_submitted(self, event: LineInput.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.query_one(JobTable).focus()
        self.run_command(event.value)

    @guarded
    def run_command(self, line: str) -> None:
        """``:`` commands (k9s style)."""
        words = line.strip().lstrip(":").split()
        if not words:
            return
        cmd, args = words[0].lower(), words[1:]
        app = self._app
        if cmd in ("q", "quit", "exit"):
            self.app.exit()
        elif cmd == "watch":
            if not args:
                self.app.notify("usage: :watch JOB_ID [ENDPOINT]", severity="warning")
                return
            self.watch(args[0], args[1] if len(args) > 1 else None)
        elif cmd in ("ep", "endpoint", "use"):
            if not args:
                app.action_pick_endpoint()  # the account's endpoints, fuzzy
                return
            ep = app.resolve_endpoint(args[0])
            if ep is None or ep not in self.query_one(HealthTable).views:
                app.action_pick_endpoint(args[0])  # not watched yet: pick it from the list
                return
            self.use_endpoint(ep)
        elif cmd in ("workers", "logs", "metrics"):
            app.run_registry_action(cmd)
        elif cmd == "jobs":
            self.focus_pane("jobs")
        elif cmd == "all":
            self.query_one(JobTable).set_scope(None)
            self._update_jobs_title()
        elif cmd in ("submit", "new"):
            self.new_job()
        elif cmd == "purge":
            ep = app.resolve_endpoint(args[0]) if args else None
            if args and ep is None:
                self.app.notify(f"Unknown endpoint: {inert(args[0], one_line=True)}",
                                severity="warning", markup=False)
                return
            self.purge(ep)
        elif cmd == "filter":
            self.query_one(JobTable).set_filter(" ".join(args))
            self._update_jobs_title()
        elif cmd == "pause":
            app.action_toggle_pause()
        elif cmd == "refresh":
            app.action_refresh_now()
        elif cmd == "help":
            app.action_help()
        else:
            self.app.notify(f"Unknown command {inert(cmd, one_line=True)!r}. Try: "
                            + COMMANDS_HELP, severity="warning", timeout=6, markup=False)

    def watch(self, job_id: str, endpoint: str | None) -> None:
        ep = self._app.resolve_endpoint(endpoint) if endpoint else self.query_one(HealthTable).current
        if ep is None:
            self.app.notify("Which endpoint? :watch JOB_ID ENDPOINT", severity="warning")
            return
        try:
            rec = self.session.watch(job_id, ep)
        except Exception as exc:  # noqa: BLE001 - InvalidInput for a bad id
            self.app.notify(f"Cannot watch: {_err_text(exc)}", severity="error", markup=False)
            return
        self._own.add(rec.job_id)
        self.on_jobs([rec])
        jobs = self.query_one(JobTable)
        if rec.job_id in jobs._shown:
            jobs.move_cursor(row=jobs.get_row_index(rec.job_id))
        self._show_job(rec.job_id)
        self.app.notify(f"Watching {short_id(rec.job_id, 40)}", timeout=3, markup=False)

    # ------------------------------------------------------------------ ops
    def _run_op(self, op: str, coro: Any, *, context: Any = None) -> None:
        self._op_worker(op, coro, context)

    @work(group="ops", exit_on_error=False)
    async def _op_worker(self, op: str, coro: Any, context: Any) -> None:
        try:
            value = await coro
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(OpDone(op, error=exc, context=context))
        else:
            self.post_message(OpDone(op, value=value, context=context))

    @guarded
    def on_op_done(self, msg: OpDone) -> None:
        handler = getattr(self, f"_done_{msg.op}", None)
        if handler is not None:
            handler(msg)

    def _done_submit(self, msg: OpDone) -> None:
        form = self.query_one(SubmitForm)
        form.busy = False
        self.query_one(TopBar).set_busy(None)
        if msg.error is not None:
            text = _err_text(msg.error)
            form.show_result(f"not submitted: {text}" if _is_local(msg.error)
                             else f"submit failed: {text}", ok=False)
            self.app.notify(f"Submit failed: {inert(text, one_line=True)}", severity="error",
                            timeout=6, markup=False)
            return
        rec: JobRecord = msg.value
        self._own.add(rec.job_id)
        self.on_jobs([rec])
        jobs = self.query_one(JobTable)
        if rec.job_id in jobs._shown:
            jobs.move_cursor(row=jobs.get_row_index(rec.job_id))
        self._show_job(rec.job_id)
        form.show_result(f"submitted {short_id(rec.job_id, 40)} ({rec.status})", ok=True)
        self.app.notify(f"Submitted {short_id(rec.job_id, 40)} to "
                        f"{inert(self.names.get(rec.endpoint_id, rec.endpoint_id), one_line=True)}",
                        timeout=3, markup=False)

    def _done_cancel(self, msg: OpDone) -> None:
        jobs = self.query_one(JobTable)
        if msg.error is not None:
            self.app.notify(f"Cancel failed: {inert(_err_text(msg.error), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        ok, failed = 0, []
        changed: list[JobRecord] = []
        for job_id, result in msg.value or []:
            if isinstance(result, JobRecord):
                ok += 1
                changed.append(result)
            else:
                failed.append(f"{short_id(job_id, 14)}: {_err_text(result)}")
        if changed:
            self.on_jobs(changed)
        jobs.clear_marks()
        if ok:
            self.app.notify(f"Cancelled {ok} job{'s' if ok != 1 else ''}", timeout=4)
        if failed:
            self.app.notify("Not cancelled: " + inert("; ".join(failed[:3]), one_line=True),
                            severity="error", timeout=8, markup=False)

    def _done_retry(self, msg: OpDone) -> None:
        if msg.error is not None:
            self.app.notify(f"Retry failed: {inert(_err_text(msg.error), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        rec: JobRecord = msg.value
        self._own.add(rec.job_id)
        self.on_jobs([rec])
        self.app.notify(f"Retrying {short_id(rec.job_id, 40)} ({rec.status})", timeout=4,
                        markup=False)

    def _done_purge(self, msg: OpDone) -> None:
        ep = msg.context
        name = inert(self.names.get(ep, ep), one_line=True)
        if msg.error is not None:
            self.app.notify(f"Purge of {name} failed: {inert(_err_text(msg.error), one_line=True)}",
                            severity="error", timeout=8, markup=False)
            return
        removed = getattr(msg.value, "removed", 0)
        self.last_purge = (ep, removed)
        self.app.notify(f"Purged {name}: removed {removed} queued job{'s' if removed != 1 else ''}",
                        timeout=8, markup=False)
        with contextlib.suppress(Exception):
            self.session.refresh_now()

    # ------------------------------------------------------------------ misc
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        pass  # validation happens inside the form

    last_purge: tuple[str, int] | None = None


def steady_cursors(node: Any) -> None:
    """No blinking cursors: a blink repaints twice a second while nothing happens, and
    rpdash stays open all day (idle cost matters more than the blink)."""
    from textual.widgets import Input

    for w in node.query(TextArea):
        w.cursor_blink = False
    for w in node.query(Input):
        w.cursor_blink = False


def _is_local(exc: BaseException) -> bool:
    from rpdash.core.errors import InvalidInput

    return isinstance(exc, InvalidInput)


def save_output(rec: JobRecord, chunks: list[Any]) -> Path:
    """Write a job's output to ``./rpdash-<id>.txt`` (or the data dir when the current
    directory is not writable). Never overwrites: adds -1, -2, ..."""
    from rpdash import paths

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in rec.job_id)[:80]
    content = export_text(rec, chunks)
    candidates = [Path.cwd()]
    with contextlib.suppress(Exception):
        candidates.append(paths.data_dir())
    last_error: OSError | None = None
    for folder in candidates:
        if not os.access(folder, os.W_OK):
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK):
                continue
        for n in range(0, 100):
            path = folder / (f"rpdash-{safe}.txt" if n == 0 else f"rpdash-{safe}-{n}.txt")
            try:
                with open(path, "x", encoding="utf-8") as fh:
                    fh.write(content)
                return path
            except FileExistsError:
                continue
            except OSError as exc:
                last_error = exc
                break
    raise last_error or OSError("no writable folder (current directory or data dir)")
