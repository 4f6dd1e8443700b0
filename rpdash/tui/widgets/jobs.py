"""The job list widget: keys, messages and view controls over the row model
(:class:`~rpdash.tui.widgets.job_rows.JobRows`: which jobs, in which order, which cells to
rewrite; rows off screen are data only)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable

from rpdash.tui.actions import ReadonlyAware, bindings_for
from rpdash.tui.messages import Flash
from rpdash.tui.widgets.job_cells import COLUMNS
from rpdash.tui.widgets.job_rows import JobRows, filter_matches

__all__ = ["JobTable", "filter_matches"]


class JobTable(ReadonlyAware, JobRows):
    """Jobs of the session, newest first (or by status), filtered and marked."""

    BINDINGS: list[BindingType] = bindings_for("jobs")  # type: ignore[assignment]

    DEFAULT_CSS = """
    JobTable { height: 1fr; }
    """

    class JobHighlighted(Message):
        """The cursor moved onto a job (the output pane follows it)."""

        def __init__(self, job_id: str | None) -> None:
            super().__init__()
            self.job_id = job_id

    class ViewChanged(Message):
        """Filter, scope, sort or marks changed (the pane title shows them)."""

    class JobAction(Message):
        """A key asked for something the app does (cancel, retry, edit, ...)."""

        def __init__(self, action: str, job_ids: list[str]) -> None:
            super().__init__()
            self.action = action
            self.job_ids = job_ids

    def __init__(
        self,
        *,
        now: Callable[[], float],
        names: Mapping[str, str] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(now=now, names=names, id=id, cursor_type="row", zebra_stripes=False)
        self._last_highlight: str | None = None

    # ------------------------------------------------------------------ setup
    def on_mount(self) -> None:
        self._set_columns(tuple(range(len(COLUMNS))), {c.key: c.least for c in COLUMNS})

    def _say_highlight(self) -> None:
        """The row under the cursor went away: the cursor now rests on another job, and
        the output pane must show that one (DataTable says nothing when the cursor's
        index stays the same)."""
        job_id = self.current_job_id
        if job_id != self._last_highlight:
            self._last_highlight = job_id
            self.post_message(self.JobHighlighted(job_id))

    def _view_changed(self) -> None:
        self.post_message(self.ViewChanged())

    # ------------------------------------------------------------------ view controls
    def set_filter(self, text: str) -> None:
        text = text.strip()
        if text == self.filter_text:
            return
        self.filter_text = text
        self.pinned = None
        self.rebuild()

    def set_scope(self, endpoint_id: str | None) -> None:
        if endpoint_id == self.scope_endpoint:
            return
        self.scope_endpoint = endpoint_id
        if not self.on_resize():  # the endpoint column: only for all endpoints
            self.rebuild()

    def set_sort(self, key: str) -> None:
        if key == self.sort_key:
            return
        self.sort_key = key
        if self.row_count:
            self._resort()
        self._view_changed()

    # ------------------------------------------------------------------ events
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        job_id = event.row_key.value if event.row_key is not None else None
        if self.pinned is not None and job_id != self.pinned:
            self.pinned = None  # the user moved on: the job may leave the view next time
        if job_id != self._last_highlight:
            self._last_highlight = job_id
            self.post_message(self.JobHighlighted(job_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()

    # ------------------------------------------------------------------ actions
    def action_sort(self, key: str) -> None:
        self.set_sort(key)
        self.post_message(Flash(
            f"Jobs sorted by {'status' if key == 'status' else 'age (newest first)'}"))

    def action_mark(self) -> None:
        job_id = self.current_job_id
        if job_id is None:
            return
        if job_id in self.marked:
            self.marked.discard(job_id)
        else:
            self.marked.add(job_id)
        rec = self.records.get(job_id)
        if rec is not None:
            self._refresh_row(rec)
            self.flush_cells()
        if self.cursor_row < self.row_count - 1:
            self.move_cursor(row=self.cursor_row + 1)
        self.post_message(self.ViewChanged())

    def clear_marks(self) -> None:
        marked, self.marked = self.marked, set()
        for job_id in marked:
            rec = self.records.get(job_id)
            if rec is not None and job_id in self._shown:
                self._refresh_row(rec)
        self.flush_cells()
        self.post_message(self.ViewChanged())

    def action_clear(self) -> None:
        if self.marked:
            self.clear_marks()
        elif self.filter_text:
            self.set_filter("")

    def _job_action(self, action: str, ids: list[str] | None = None) -> None:
        ids = ids if ids is not None else self.selected_ids()
        if not ids:
            self.notify("No job selected", severity="warning", timeout=3)
            return
        self.post_message(self.JobAction(action, ids))

    def action_cancel(self) -> None:
        self._job_action("cancel")

    def action_retry(self) -> None:
        self._job_action("retry")

    def action_edit(self) -> None:
        cur = self.current_job_id
        self._job_action("edit", [cur] if cur else [])

    def action_follow_job(self) -> None:
        cur = self.current_job_id
        self._job_action("follow", [cur] if cur else [])

    def action_open_job(self) -> None:
        cur = self.current_job_id
        self._job_action("open", [cur] if cur else [])

    def action_copy_id(self) -> None:
        cur = self.current_job_id
        self._job_action("copy_id", [cur] if cur else [])

    def action_raw(self) -> None:
        cur = self.current_job_id
        self._job_action("raw", [cur] if cur else [])

    def action_toggle_scope(self) -> None:
        self.post_message(self.JobAction("toggle_scope", []))

