"""The job list's row model: which jobs are listed, in which order, and which cells of the
rows on screen must be rewritten when records change (the widget, its keys and messages
are :class:`~rpdash.tui.widgets.jobs.JobTable`).

Why it looks like this:
- Rows are keyed by job id and updated in place; the table is never cleared to apply an
  update, so the cursor, the scroll position and the column widths stay put while
  statuses change.
- A row off screen is data only (:class:`~rpdash.tui.widgets.lazy_rows.LazyRows`): a change
  to it is a dict write and a mark; its cells are formatted when it is drawn or read. Only
  the ~45 rows on screen are diffed and rewritten (only the cells whose text changed), and
  the caller wraps a burst in ``app.batch_update()`` so the screen repaints once.
- Rebuilding (clear + add in order) only happens when the *view* changes: a new filter, a
  new scope (all endpoints / the current one) or a new sort key.
- New jobs are appended and the rows re-ordered on a rank, then the cursor is put back on
  the job it was on.
- Ages change every second; only the rows on screen are refreshed, by ``tick()`` at 1 Hz.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.tui.format import fmt_job_age, fmt_ms, preview
from rpdash.tui.widgets.cell_cache import CellCache
from rpdash.tui.widgets.cells import InPlaceCells
from rpdash.tui.widgets.fast_rows import OneLineRows
from rpdash.tui.widgets.job_cells import (
    COLUMN_KEYS,
    COLUMNS,
    fit_job_columns,
    job_cell,
    longer,
    progress_plain,
    status_rank,
)
from rpdash.tui.widgets.lazy_rows import LazyRows
from rpdash.tui.widgets.quick_cells import QuickCells

#: the statuses of a finished job (``JobRecord.terminal``, for a loop over 10,000 records)
_FINISHED = frozenset(s for s in JobStatus if s.terminal)


class JobRows(InPlaceCells, LazyRows, QuickCells, OneLineRows, DataTable[Any]):
    """Jobs of the session as rows: filtered, scoped, sorted, marked; cells on demand."""

    def __init__(self, *, now: Callable[[], float], names: Mapping[str, str] | None,
                 **kwargs: Any) -> None:
        self._stale = set()
        super().__init__(**kwargs)
        self._now = now
        #: endpoint id -> display name
        self.names: dict[str, str] = dict(names or {})
        self.records: dict[str, JobRecord] = {}
        #: how many of ``records`` are not finished, kept as records come and go (the
        #: status bar says it after every burst: no scan of 10,000 records for it)
        self.active = 0
        #: job id -> the plain cell values shown (None: listed, not formatted yet)
        self._shown: dict[str, tuple[Any, ...] | None] = {}
        self._cells = CellCache()  # formatted cells per job, reused when re-listed
        self.marked: set[str] = set()
        self.filter_text: str = ""
        self.scope_endpoint: str | None = None  # None: all endpoints
        self.sort_key: str = "age"
        self.cells_written = 0  # for tests and the bench: how many cells were written
        #: the job the user just acted on (retried, ...): kept in view under a filter it
        #: no longer matches, so the cursor stays on it instead of jumping to another job
        self.pinned: str | None = None
        #: job id -> what its status cell says while an action on it is under way
        #: ("retrying…": shown with the key, before the API answers)
        self.pending: dict[str, str] = {}
        self._colkeys: list[ColumnKey] = []
        self._cols: tuple[int, ...] = ()
        self._widths: dict[str, int] = {}
        self._seen = (0, 0)  # the longest id and endpoint name listed so far

    # hooks of the widget (messages live there)
    def _say_highlight(self) -> None:
        """The row under the cursor went away."""

    def _view_changed(self) -> None:
        """Filter, scope, sort or marks changed."""

    # ------------------------------------------------------------------ columns
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
        return self.cursor_row_key()

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
        get_key = self._row_locations.get_key
        out = [get_key(i) for i in range(top, min(self.row_count, top + height))]
        return [k.value for k in out if k is not None and k.value]

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
            (rec.status, rec.expired, rec.retries, rec.stuck_progress,
             self.pending.get(rec.job_id)),
            fmt_job_age(now, rec.submitted_at) if rec.submitted_at else "-",
            rec.endpoint_id,
            fmt_ms(rec.delay_ms),
            fmt_ms(rec.execution_ms),
            str(rec.retries or 0),
            progress_plain(rec),
        )

    def _add_all(self, recs: list[JobRecord]) -> None:
        """List these jobs at the end (data only; formatted when drawn)."""
        seen = self._seen
        for rec in recs:
            self._shown[rec.job_id] = None
            if (grown := longer(seen, rec, self.names)) is not None:
                seen = grown
        self.add_lazy_rows(rec.job_id for rec in recs)
        if seen != self._seen:
            self._seen = seen  # a longer id or name than so far: maybe room for it
            self.call_after_refresh(self.on_resize)

    def _fill_rows(self, row_keys: list[str]) -> None:
        for job_id in row_keys:
            rec = self.records.get(job_id)
            if rec is not None and job_id in self._shown:
                self._refresh_row(rec)

    def _refresh_row(self, rec: JobRecord) -> bool:
        """Rewrite the cells of one listed row that changed. Returns True if any did.

        Only the changed cells are written, in place (:class:`InPlaceCells`); the table
        repaints them once per batch, in ``flush_cells``.
        """
        job_id = rec.job_id
        self._stale.discard(job_id)
        old = self._shown.get(job_id)
        new = self._row(rec)
        if old == new:
            return False
        keys = self._colkeys
        if old is None:  # first drawn: all cells (kept per job for a re-listing)
            cells = self._cells.cells(job_id, new, self._cols, lambda: [
                job_cell(COLUMN_KEYS[i], new[i], rec, self.names) for i in self._cols])
            for j, value in enumerate(cells):
                self.cells_written += 1
                if not self.write_cell(job_id, keys[j], j, value):
                    self.update_cell(job_id, COLUMN_KEYS[self._cols[j]], value)
        else:
            for j, i in enumerate(self._cols):
                if old[i] != new[i]:
                    col = COLUMN_KEYS[i]
                    value = job_cell(col, new[i], rec, self.names)
                    self.cells_written += 1
                    if not self.write_cell(job_id, keys[j], j, value):
                        self.update_cell(job_id, col, value)  # never taken with textual 8.2
        self._shown[job_id] = new
        return True

    def _refresh_visible(self) -> None:
        """Rewrite the changed rows on screen now (the rest when they are drawn)."""
        stale, records = self._stale, self.records
        for job_id in self.visible_ids():
            if job_id in stale and (rec := records.get(job_id)) is not None:
                self._refresh_row(rec)

    # ------------------------------------------------------------------ updates
    def apply(self, records: Iterable[JobRecord]) -> None:
        """Take new or changed records; touch only what changed and is on screen."""
        added: list[JobRecord] = []
        status_moved = False
        time_moved = False
        removed: list[str] = []
        known, shown, stale = self.records, self._shown, self._stale
        every = self.scope_endpoint is None and not self.filter_text  # no test per job
        active = self.active
        for rec in records:
            job_id = rec.job_id
            old = known.get(job_id)
            known[job_id] = rec
            # rec.terminal, inlined (10,000 property calls cost ~2 ms)
            if old is None:
                active += not (rec.expired or rec.status in _FINISHED)
            elif old.status is not rec.status or old.expired != rec.expired:
                active += ((old.expired or old.status in _FINISHED)
                           - (rec.expired or rec.status in _FINISHED))
            if not every and not self.matches(rec):
                if job_id in shown:
                    removed.append(job_id)
                continue
            if job_id not in shown:
                added.append(rec)
                continue
            if old is not None:
                if old.status != rec.status or old.expired != rec.expired:
                    status_moved = True
                if old.submitted_at != rec.submitted_at:
                    time_moved = True
            stale.add(job_id)
        self.active = active
        for job_id in removed:
            self._remove(job_id)
        if added:
            self._add_all(added)
        if added or time_moved or (status_moved and self.sort_key == "status"):
            self._resort()
        self._refresh_visible()
        self.flush_cells()
        if removed:
            self._say_highlight()

    def set_pending(self, job_ids: Iterable[str], label: str | None) -> None:
        """Show ``label`` in these jobs' status cells now (None: their status again)."""
        for job_id in job_ids:
            if label:
                self.pending[job_id] = label
            else:
                self.pending.pop(job_id, None)
            rec = self.records.get(job_id)
            if rec is not None and job_id in self._shown:
                self._refresh_row(rec)
        self.flush_cells()

    def pin(self, job_id: str | None) -> None:
        """Keep ``job_id`` in view (and under the cursor) until the view changes or the
        cursor moves to another job."""
        self.pinned = job_id

    def _remove(self, job_id: str) -> None:
        self._shown.pop(job_id, None)
        self._stale.discard(job_id)
        try:
            self.remove_row(job_id)
        except RowDoesNotExist:
            pass

    def forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            if (rec := self.records.pop(job_id, None)) is not None and not rec.terminal:
                self.active -= 1
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

        def key(job_id: str) -> Any:
            rec = recs.get(job_id)
            return rank(rec) if rec is not None else (9, 0, job_id)

        self.order_rows(key)
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
            self._add_all(sorted((r for r in self.records.values() if self.matches(r)),
                                 key=rank))
        if keep is not None and keep in self._shown:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
        self._view_changed()

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


def filter_matches(rec: JobRecord, text: str, names: Mapping[str, str]) -> bool:
    """Whether the ``/`` filter's text is in the job's id, endpoint, name, status, mode or
    latest update (case-insensitive); an empty filter matches every job."""
    if not text:
        return True
    f = text.lower()
    hay = (rec.job_id.lower(), rec.endpoint_id.lower(), names.get(rec.endpoint_id, "").lower(),
           str(rec.status).lower(), rec.mode, preview(rec.progress, 200).lower())
    return any(f in h for h in hay)
