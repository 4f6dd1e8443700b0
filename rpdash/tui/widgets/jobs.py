"""The job list: a DataTable keyed by job id that is updated in place.

Why it looks like this:
- Rows are keyed by job id and only the cells whose text changed are rewritten with
  ``update_cell``; the table is never cleared to apply an update, so the cursor, the
  scroll position and the column widths stay put while statuses change (10,000 changes
  cost a dict comparison and a cell write each; the caller wraps them in
  ``app.batch_update()`` so the screen repaints once).
- Rebuilding (clear + add in order) only happens when the *view* changes: a new filter, a
  new scope (all endpoints / the current one) or a new sort key.
- New jobs are appended and the rows re-ordered with ``sort`` on a rank, then the cursor is
  put back on the job it was on.
- Ages change every second; only the rows on screen are refreshed, by ``tick()`` at 1 Hz.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import (
    CellDoesNotExist,
    ColumnKey,
    RowDoesNotExist,
)

from rpdash.core.records import JobRecord
from rpdash.tui.actions import ReadonlyAware, bindings_for
from rpdash.tui.format import fmt_age, fmt_ms, preview
from rpdash.tui.messages import Flash
from rpdash.tui.widgets.cell_cache import CellCache
from rpdash.tui.widgets.cells import InPlaceCells
from rpdash.tui.widgets.fast_rows import OneLineRows
from rpdash.tui.widgets.job_cells import (
    COLUMN_KEYS,
    COLUMNS,
    IdCell,
    fit_job_columns,
    longer,
    job_cell,
    progress_plain,
    status_rank,
)


class JobTable(ReadonlyAware, InPlaceCells, OneLineRows, DataTable[Any]):
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
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._now = now
        #: endpoint id -> display name
        self.names: dict[str, str] = dict(names or {})
        self.records: dict[str, JobRecord] = {}
        self._shown: dict[str, tuple[Any, ...]] = {}  # job id -> plain cell values
        self._cells = CellCache()  # formatted cells per job, reused by rebuild
        self.marked: set[str] = set()
        self.filter_text: str = ""
        self.scope_endpoint: str | None = None  # None: all endpoints
        self.sort_key: str = "age"
        self.cells_written = 0  # for tests and the bench: how many update_cell calls
        self._last_highlight: str | None = None
        #: the job the user just acted on (retried, ...): kept in view under a filter it
        #: no longer matches, so the cursor stays on it instead of jumping to another job
        self.pinned: str | None = None
        self._colkeys: list[ColumnKey] = []
        self._cols: tuple[int, ...] = ()
        self._widths: dict[str, int] = {}
        self._seen = (0, 0)  # the longest id and endpoint name listed so far

    # ------------------------------------------------------------------ setup
    def on_mount(self) -> None:
        self._set_columns(tuple(range(len(COLUMNS))), {c.key: c.least for c in COLUMNS})

    def _set_columns(self, cols: tuple[int, ...], widths: dict[str, int]) -> None:
        keep, had_rows = self.current_job_id, bool(self._shown)
        self._cols, self._widths = cols, dict(widths)
        self.clear(columns=True)
        self._shown.clear()
        self._colkeys = [self.add_column(COLUMNS[i].label, key=COLUMNS[i].key,
                                         width=widths[COLUMNS[i].key]) for i in cols]
        if had_rows or self.records:
            self.rebuild(keep=keep)

    def on_resize(self) -> bool:
        """The columns that fit, by priority (:func:`fit_job_columns`); True: re-listed."""
        width = self.size.width - 1  # the vertical scroll bar
        cols, widths = fit_job_columns(width, self.records.values(), self.names,
                                       all_endpoints=self.scope_endpoint is None)
        if width <= 0 or cols == self._cols and widths == self._widths:
            return False
        if cols != self._cols:
            self._set_columns(cols, widths)
            return True
        self._widths = widths
        for key, col in self.columns.items():
            col.width = widths.get(str(key.value), col.width)
        self._update_count += 1
        self._require_update_dimensions = True
        self.refresh()
        return False

    # ------------------------------------------------------------------ queries
    @property
    def current_job_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return row_key.value

    def selected_ids(self) -> list[str]:
        """Marked jobs if any, else the job under the cursor."""
        if self.marked:
            return [j for j in self.marked if j in self.records]
        cur = self.current_job_id
        return [cur] if cur else []

    def visible_ids(self) -> list[str]:
        """Job ids of the rows on screen (the tracker refreshes these first)."""
        if self.row_count == 0:
            return []
        top = int(self.scroll_y)
        height = max(1, self.scrollable_content_region.height - 1)
        out: list[str] = []
        for idx in range(top, min(self.row_count, top + height)):
            try:
                out.append(self.coordinate_to_cell_key((idx, 0)).row_key.value)  # type: ignore[arg-type]
            except CellDoesNotExist:
                break
        return [j for j in out if j]

    def matches(self, rec: JobRecord) -> bool:
        if self.scope_endpoint is not None and rec.endpoint_id != self.scope_endpoint:
            return False
        return rec.job_id == self.pinned or filter_matches(rec, self.filter_text, self.names)

    # ------------------------------------------------------------------ cells
    def _row(self, rec: JobRecord) -> tuple[Any, ...]:
        """Plain values that decide whether a cell must be rewritten."""
        now = self._now()
        return (
            "●" if rec.job_id in self.marked else " ",
            rec.job_id,
            (rec.status, rec.expired, rec.retries, rec.stuck_progress),
            fmt_age(now - rec.submitted_at) if rec.submitted_at else "-",
            rec.endpoint_id,
            fmt_ms(rec.delay_ms),
            fmt_ms(rec.execution_ms),
            str(rec.retries or 0),
            progress_plain(rec),
        )

    def _add(self, rec: JobRecord) -> None:
        row = self._row(rec)
        self.add_row(*self._cells.cells(rec.job_id, row, self._cols, lambda: [
            job_cell(COLUMN_KEYS[i], row[i], rec, self.names) for i in self._cols]), key=rec.job_id)
        self._shown[rec.job_id] = row
        if (grown := longer(self._seen, rec, self.names)) is not None:
            self._seen = grown  # a longer id or name than so far: maybe room for it
            self.call_after_refresh(self.on_resize)

    def _refresh_row(self, rec: JobRecord, row: tuple[Any, ...] | None = None) -> bool:
        """Rewrite the cells of one shown row that changed. Returns True if any did.

        Only the changed cells are written, in place (:class:`InPlaceCells`); the table
        repaints them once per batch, in ``flush_cells``.
        """
        job_id = rec.job_id
        old = self._shown.get(job_id)
        new = row if row is not None else self._row(rec)
        if old == new:
            return False
        keys = self._colkeys
        for j, i in enumerate(self._cols):
            if old is None or old[i] != new[i]:
                col = COLUMN_KEYS[i]
                value = job_cell(col, new[i], rec, self.names)
                self.cells_written += 1
                if not self.write_cell(job_id, keys[j], j, value):
                    self.update_cell(job_id, col, value)  # never taken with textual 8.2
        self._shown[job_id] = new
        return True

    # ------------------------------------------------------------------ updates
    def apply(self, records: Iterable[JobRecord]) -> None:
        """Take new or changed records; touch only what changed."""
        added = False
        status_moved = False
        time_moved = False
        removed: list[str] = []
        for rec in records:
            old = self.records.get(rec.job_id)
            self.records[rec.job_id] = rec
            shown = rec.job_id in self._shown
            if not self.matches(rec):
                if shown:
                    removed.append(rec.job_id)
                continue
            if not shown:
                self._add(rec)
                added = True
                continue
            if old is not None:
                if old.status != rec.status or old.expired != rec.expired:
                    status_moved = True
                if old.submitted_at != rec.submitted_at:
                    time_moved = True
            self._refresh_row(rec)
        for job_id in removed:
            self._remove(job_id)
        self.flush_cells()
        if added or time_moved or (status_moved and self.sort_key == "status"):
            self._resort()
        if removed:
            self._say_highlight()

    def _say_highlight(self) -> None:
        """The row under the cursor went away: the cursor now rests on another job, and
        the output pane must show that one (DataTable says nothing when the cursor's
        index stays the same)."""
        job_id = self.current_job_id
        if job_id != self._last_highlight:
            self._last_highlight = job_id
            self.post_message(self.JobHighlighted(job_id))

    def pin(self, job_id: str | None) -> None:
        """Keep ``job_id`` in view (and under the cursor) until the view changes or the
        cursor moves to another job."""
        self.pinned = job_id

    def _remove(self, job_id: str) -> None:
        self._shown.pop(job_id, None)
        try:
            self.remove_row(job_id)
        except RowDoesNotExist:
            pass

    def forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self.records.pop(job_id, None)
            self.marked.discard(job_id)
            if job_id in self._shown:
                self._remove(job_id)

    def _rank(self) -> Callable[[JobRecord], Any]:
        if self.sort_key == "status":
            return lambda r: (status_rank(r), -(r.submitted_at or 0), r.job_id)
        return lambda r: (-(r.submitted_at or 0), r.job_id)

    def _resort(self) -> None:
        keep = self.current_job_id
        rank = self._rank()
        recs = self.records

        def key(cell: IdCell) -> Any:
            rec = recs.get(cell.job_id)
            return rank(rec) if rec is not None else (9, 0, cell.job_id)

        self.sort("id", key=key)
        self._restore_cursor(keep)

    def _restore_cursor(self, job_id: str | None) -> None:
        if job_id is None or job_id not in self._shown:
            return
        try:
            idx = self.get_row_index(job_id)
        except RowDoesNotExist:
            return
        if idx != self.cursor_row:
            self.move_cursor(row=idx, animate=False, scroll=False)

    def rebuild(self, keep: str | None = None) -> None:
        """Re-list every matching job in order (filter, scope or sort changed)."""
        keep = keep or self.current_job_id
        self._cells.trim(len(self.records))
        self.clear()
        self._shown.clear()
        rank = self._rank()
        with self.app.batch_update():
            for rec in sorted((r for r in self.records.values() if self.matches(r)), key=rank):
                self._add(rec)
        if keep is not None and keep in self._shown:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
        self.post_message(self.ViewChanged())

    def tick(self) -> None:
        """Refresh the ages of the rows on screen (called at 1 Hz at most)."""
        for job_id in self.visible_ids():
            rec = self.records.get(job_id)
            if rec is not None:
                self._refresh_row(rec)
        self.flush_cells()

    def set_names(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self._cells.clear()

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
        self.post_message(self.ViewChanged())

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


def filter_matches(rec: JobRecord, text: str, names: Mapping[str, str]) -> bool:
    """Whether the ``/`` filter's text is in the job's id, endpoint, name, status, mode or
    latest update (case-insensitive); an empty filter matches every job."""
    if not text:
        return True
    f = text.lower()
    hay = (rec.job_id.lower(), rec.endpoint_id.lower(), names.get(rec.endpoint_id, "").lower(),
           str(rec.status).lower(), rec.mode, preview(rec.progress, 200).lower())
    return any(f in h for h in hay)
