"""The jobs pane's actions: what ``enter``, ``l``, ``e``, ``c``, ``y``, ``/``, ``a``,
``ctrl+d`` and ``r`` do with the jobs the user chose.

The :class:`~rpdash.tui.widgets.jobs.JobTable` owns the keys and posts a
:class:`JobTable.JobAction` naming the jobs; this mixin of the dashboard screen carries it
out across the panes (output, submit form, dialogs) and through the Session (in the
screen's "ops" workers), then shows the result.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING

from rich.text import Text

from rpdash.core.records import JobRecord
from rpdash.tui.actions import is_destructive
from rpdash.tui.format import inert, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.screens.session_calls import err_text
from rpdash.tui.screens.viewers import JsonScreen
from rpdash.tui.widgets.bars import LineInput
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.screens.session_calls import OpDone


class JobActionsMixin(DashboardPart):
    """Jobs-pane actions of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""


    @guarded
    def on_job_table_job_action(self, event: JobTable.JobAction) -> None:
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

    def _done_cancel(self, msg: OpDone) -> None:
        jobs = self.query_one(JobTable)
        if msg.error is not None:
            self.app.notify(f"Cancel failed: {inert(err_text(msg.error), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        ok, failed = 0, []
        changed: list[JobRecord] = []
        for job_id, result in msg.value or []:
            if isinstance(result, JobRecord):
                ok += 1
                changed.append(result)
            else:
                failed.append(f"{short_id(job_id, 14)}: {err_text(result)}")
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
            self.app.notify(f"Retry failed: {inert(err_text(msg.error), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        rec: JobRecord = msg.value
        self.notices.own.add(rec.job_id)
        self.on_jobs([rec])
        self.app.notify(f"Retrying {short_id(rec.job_id, 40)} ({rec.status})", timeout=4,
                        markup=False)
