"""The output pane's side of the dashboard: ``ctrl+s`` saves the shown job's output to a
file, ``c`` copies it. The :class:`~rpdash.tui.widgets.output.OutputViewer` owns the keys
and posts messages; this mixin of the dashboard screen reads the stored chunks and acts.
"""

from __future__ import annotations


from rpdash.files import SaveError
from rpdash.tui.format import inert
from rpdash.tui.guard import guarded
from rpdash.tui.saving import save_output
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.screens.session_calls import err_text
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer, export_text


class OutputActionsMixin(DashboardPart):
    """Output-pane actions of :class:`~rpdash.tui.screens.dashboard.DashboardScreen`."""

    @guarded
    def on_output_viewer_save_requested(self, event: OutputViewer.SaveRequested) -> None:
        rec = self.query_one(JobTable).records.get(event.job_id) or self.query_one(OutputViewer).job
        if rec is None:
            return
        try:
            chunks = self.session.chunks(rec.job_id) if (rec.chunk_count or rec.mode == "stream") else []
            path = save_output(rec, chunks)
        except SaveError as exc:
            self.app.notify(f"Could not save: {inert(str(exc), one_line=True)}",
                            severity="error", timeout=6, markup=False)
            return
        except Exception as exc:  # noqa: BLE001
            self.app.notify(f"Could not save: {err_text(exc)}", severity="error", timeout=6,
                            markup=False)
            return
        self.app.notify(f"Saved to {path}", timeout=6, markup=False)

    @guarded
    def on_output_viewer_copy_requested(self, event: OutputViewer.CopyRequested) -> None:
        rec = self.query_one(OutputViewer).job
        if rec is None:
            return
        chunks = self.session.chunks(rec.job_id) if (rec.chunk_count or rec.mode == "stream") else []
        self.app.copy_to_clipboard(export_text(rec, chunks))
        self.flash("Output copied to the clipboard")
