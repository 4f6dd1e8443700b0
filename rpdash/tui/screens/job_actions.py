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
from rpdash.services.tracking.quirks import still_stuck
from rpdash.tui.actions import is_destructive
from rpdash.tui.format import inert, plural, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.screens.session_calls import err_text
from rpdash.tui.screens.viewers import JsonScreen
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.screens.session_calls import OpDone


#: what a job's status cell says from the ``r`` key until RunPod answers the retry
RETRYING = "retrying…"


class JobActionsMixin(DashboardPart):
    """Jobs-pane actions of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""


    @guarded
    def on_job_table_job_action(self, event: JobTable.JobAction) -> None:
        act, ids = event.action, event.job_ids
        if is_destructive(act) and self._app.readonly:
            self.flash("Read-only mode: cancel, retry and purge are not available "
                       "(rpdash was started with --readonly)", "warning")
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
        self.flash(f"Input of {short_id(rec.job_id, 14)} loaded: edit, then ctrl+s")

    def _do_copy_id(self, ids: list[str]) -> None:
        self.app.copy_to_clipboard(ids[0])
        self.flash(f"Copied {short_id(ids[0], 40)}")

    def _do_raw(self, ids: list[str]) -> None:
        rec = self.query_one(JobTable).records.get(ids[0])
        if rec is None:
            return
        value = dataclasses.asdict(rec)
        value["status"] = str(rec.status)
        self.app.push_screen(JsonScreen(f"Job {rec.job_id}", value))

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

    def _jobs_body(self, question: str, recs: list[JobRecord]) -> Text:
        """A dialog's list of the jobs it acts on (the first 8 of them)."""
        body = Text()
        body.append(f"{question}\n\n")
        for r in recs[:8]:
            body.append(f"  {short_id(r.job_id, 40)}", style="bold")
            name = inert(self.names.get(r.endpoint_id, r.endpoint_id), one_line=True)
            body.append(f"  {r.status}  {name}\n")
        if len(recs) > 8:
            body.append(f"  … and {len(recs) - 8} more\n")
        return body

    def _do_cancel(self, ids: list[str]) -> None:
        jobs = self.query_one(JobTable)
        # a COMPLETED* job finished, but RunPod still reports it IN_PROGRESS: cancel it there
        live = [r for j in ids if (r := jobs.records.get(j)) is not None
                and (not r.terminal or still_stuck(r))]  # fmt: skip
        if not live:
            self.app.notify("Nothing to cancel: the selected jobs have finished",
                            severity="warning", timeout=4)
            return
        body = self._jobs_body(f"Cancel {plural(len(live), 'job')}?", live)
        stuck = sum(1 for r in live if still_stuck(r))
        if stuck < len(live):
            body.append("\nQueued jobs are removed; running jobs are told to stop.")
        if stuck:
            it = "it" if stuck == 1 else "them"
            body.append(f"\n{plural(stuck, 'COMPLETED* job')} finished, but RunPod still reports "
                        f"{it} IN_PROGRESS (a late progress update): cancelling clears {it} there. "
                        "rpdash keeps the output it has.")
        skipped = len(ids) - len(live)
        if skipped:
            are = "is" if skipped == 1 else "are"
            body.append(f"\n{plural(skipped, 'finished job')} {are} left alone.", style="dim")
        live_ids = [r.job_id for r in live]

        def answer(yes: bool | None) -> None:
            if yes:
                self._run_op("cancel", self.session.cancel(live_ids), context=live_ids)

        self.app.push_screen(ConfirmScreen("Cancel jobs", body, yes="Cancel jobs"), answer)

    def _do_retry(self, ids: list[str]) -> None:
        """Retry the job under the cursor at once, or the marked jobs after a confirm.
        The job acted on keeps the cursor, also when it leaves the filter (FAILED)."""
        jobs = self.query_one(JobTable)
        recs = [r for j in ids if (r := jobs.records.get(j)) is not None]
        ok = [r for r in recs if r.status.retryable]
        if not ok:
            what = (f"this one is {recs[0].status}" if len(recs) == 1
                    else "none of the marked jobs is")
            self.app.notify(f"Only FAILED or TIMED_OUT jobs can be retried ({what})",
                            severity="warning", timeout=4)
            return
        cur = jobs.current_job_id
        ok_ids = [r.job_id for r in ok]
        if len(ok) == 1 and not jobs.marked:
            jobs.pin(ok_ids[0])
            jobs.set_pending(ok_ids, RETRYING)  # in the key's own frame, before the answer
            self._run_op("retry", self._retry_each(ok_ids), context=ok_ids)
            return
        body = self._jobs_body(f"Retry {plural(len(ok), 'job')}?", ok)
        body.append("\nEach goes back into its endpoint's queue.")
        skipped = len(recs) - len(ok)
        if skipped:
            are = "is" if skipped == 1 else "are"
            body.append(f"\n{plural(skipped, 'job')} not FAILED or TIMED_OUT {are} left alone.",
                        style="dim")

        def answer(yes: bool | None) -> None:
            if yes:
                jobs.pin(cur if cur in ok_ids else None)
                jobs.set_pending(ok_ids, RETRYING)
                self._run_op("retry", self._retry_each(ok_ids), context=ok_ids)

        self.app.push_screen(ConfirmScreen("Retry jobs", body, yes="Retry jobs"), answer)

    async def _retry_each(self, job_ids: list[str]) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for job_id in job_ids:
            try:
                out.append((job_id, await self.session.retry(job_id)))
            except Exception as exc:  # noqa: BLE001 - said per job
                out.append((job_id, exc))
        return out

    def _results(self, msg: OpDone) -> tuple[list[JobRecord], list[str]]:
        """(changed records, "id: why" for each job that failed) of a bulk op."""
        changed: list[JobRecord] = []
        failed: list[str] = []
        for job_id, result in msg.value or []:
            if isinstance(result, JobRecord):
                changed.append(result)
            else:
                failed.append(f"{short_id(job_id, 14)}: {err_text(result)}")
        return changed, failed

    def _done_cancel(self, msg: OpDone) -> None:
        jobs = self.query_one(JobTable)
        if msg.error is not None:
            self.app.notify(f"Cancel failed: {inert(err_text(msg.error), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        changed, failed = self._results(msg)
        if changed:
            self.on_jobs(changed)
        jobs.clear_marks()
        cleared = [r for r in changed if r.stuck_progress]
        if cleared:
            what = (short_id(cleared[0].job_id, 40) if len(cleared) == 1
                    else plural(len(cleared), "COMPLETED* job"))
            self.flash(f"Cleared {what} at RunPod by cancel (COMPLETED here, output kept)")
        if len(changed) > len(cleared):
            self.flash(f"Cancelled {plural(len(changed) - len(cleared), 'job')}")
        if failed:
            self.app.notify("Not cancelled: " + inert("; ".join(failed[:3]), one_line=True),
                            severity="error", timeout=8, markup=False)

    def _done_retry(self, msg: OpDone) -> None:
        jobs = self.query_one(JobTable)
        jobs.set_pending(msg.context or (), None)  # the rows show what RunPod says again
        if msg.error is not None:
            self.app.notify(f"Retry failed: {inert(err_text(msg.error), one_line=True)}"
                            " (the job keeps its status)", severity="error", timeout=6,
                            markup=False)
            return
        changed, failed = self._results(msg)
        for rec in changed:
            self.notices.own.add(rec.job_id)
        if changed:
            self.on_jobs(changed)
        jobs.clear_marks()
        pinned = jobs.pinned
        if pinned is not None and pinned in jobs._shown:
            jobs.move_cursor(row=jobs.get_row_index(pinned), animate=False)
            self._show_job(pinned)  # the output pane names the job acted on
        if len(changed) == 1:
            rec = changed[0]
            self.flash(f"Retrying {short_id(rec.job_id, 40)} ({rec.status})")
        elif changed:
            self.flash(f"Retrying {plural(len(changed), 'job')}")
        if failed:
            self.app.notify("Not retried (status unchanged): "
                            + inert("; ".join(failed[:3]), one_line=True),
                            severity="error", timeout=8, markup=False)
