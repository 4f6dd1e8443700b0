"""The submit form's side of the dashboard: ``n`` opens it on the current endpoint,
``ctrl+s`` submits (in a Session worker), ``ctrl+o`` recalls a recent input, ``esc`` goes
back to the jobs. The :class:`~rpdash.tui.widgets.submit.SubmitForm` owns the keys and
posts messages; this mixin of the dashboard screen carries them out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rpdash.core.records import JobRecord
from rpdash.tui.format import inert, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.screens.session_calls import err_text, is_local
from rpdash.tui.screens.viewers import RecentInputsScreen
from rpdash.tui.widgets.bars import TopBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.submit import SubmitForm

if TYPE_CHECKING:
    from rpdash.tui.screens.session_calls import OpDone


class SubmitActionsMixin(DashboardPart):
    """Submit-form actions of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""


    @guarded
    def new_job(self) -> None:
        form = self.query_one(SubmitForm)
        cur = self.query_one(HealthTable).current
        if cur:
            form.set_endpoint(cur)
        form.editor.focus()
        form.editor.select_all()  # typing replaces the old input; arrows keep it

    # ------------------------------------------------------------------ submit
    @guarded
    def on_submit_form_submitted(self, event: SubmitForm.Submitted) -> None:
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

    @guarded
    def on_submit_form_leave_requested(self, event: SubmitForm.LeaveRequested) -> None:
        self.focus_pane("jobs")

    @guarded
    def on_submit_form_recent_requested(self, event: SubmitForm.RecentRequested) -> None:
        try:
            inputs = self._app.backend.recent_inputs(20)
        except Exception as exc:  # noqa: BLE001
            self._problem(f"cannot read recent inputs: {err_text(exc)}")
            return

        def picked(value: dict | None) -> None:
            if value is not None:
                form = self.query_one(SubmitForm)
                form.load_input(value)
                form.editor.focus()

        self.app.push_screen(RecentInputsScreen(inputs), picked)

    def _done_submit(self, msg: OpDone) -> None:
        form = self.query_one(SubmitForm)
        form.busy = False
        self.query_one(TopBar).set_busy(None)
        if msg.error is not None:
            text = err_text(msg.error)
            form.show_result(f"not submitted: {text}" if is_local(msg.error)
                             else f"submit failed: {text}", ok=False)
            self.app.notify(f"Submit failed: {inert(text, one_line=True)}", severity="error",
                            timeout=6, markup=False)
            return
        rec: JobRecord = msg.value
        self.notices.own.add(rec.job_id)
        self.select_job(rec)
        form.show_result(f"submitted {short_id(rec.job_id, 40)} ({rec.status})", ok=True)
        self.flash(f"Submitted {short_id(rec.job_id, 40)} to "
                   f"{inert(self.names.get(rec.endpoint_id, rec.endpoint_id), one_line=True)}")
