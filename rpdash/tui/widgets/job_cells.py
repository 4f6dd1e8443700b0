"""The job list's columns and cells: which columns, in which order, and what each cell of a
job shows (always a ``Text``: a plain ``str`` cell would be parsed as markup)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from rich.text import Text

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.tui.format import (
    STATUS_ORDER,
    error_summary,
    inert,
    preview,
    status_text,
)
from rpdash.tui.widgets.column_fit import ColumnSpec, fit_columns

#: the job list's columns in their order; which show, and how wide, follows the table's
#: width by priority (:func:`~rpdash.tui.widgets.column_fit.fit_columns`): the id, the
#: status and the age stay longest; the id grows to the whole id first when there is room,
#: the latest update takes the rest
COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("mark", " ", 1, 0),
    ColumnSpec("id", "job id", 11, 1, want=40, most=40),
    ColumnSpec("status", "status", 14, 2),  # room for COMPLETED* and ↻N
    ColumnSpec("age", "age", 4, 3),
    ColumnSpec("endpoint", "endpoint", 12, 4, most=24),
    ColumnSpec("delay", "delay", 6, 7),
    ColumnSpec("exec", "exec", 6, 6),
    ColumnSpec("retries", "rtr", 3, 8),
    ColumnSpec("progress", "latest update", 16, 5, want=30, most=400),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def fit_job_columns(width: int, records: Iterable[JobRecord], names: Mapping[str, str], *,
                    all_endpoints: bool) -> tuple[tuple[int, ...], dict[str, int]]:
    """The columns (indexes into ``COLUMNS``) and their widths for a table ``width`` cells
    wide: the id as long as the longest id, the endpoint only for all endpoints' jobs (no
    pane scrolls sideways; columns drop by priority)."""
    longest_id = longest_name = 0
    for r in records:
        longest_id = max(longest_id, len(r.job_id))
        longest_name = max(longest_name, len(names.get(r.endpoint_id, r.endpoint_id)))
    # the endpoint column as wide as the names (8 to 16), growing to the longest later
    specs = [replace(c, least=max(8, min(16, longest_name))) if c.key == "endpoint" else c
             for c in COLUMNS]
    fitted = fit_columns(specs, width, most={"id": max(11, longest_id),
                                             "endpoint": max(8, longest_name)},
                         skip=() if all_endpoints else ("endpoint",))
    return (tuple(COLUMN_KEYS.index(k) for k, _, _ in fitted),
            {k: w for k, _, w in fitted})


def longer(seen: tuple[int, int], rec: JobRecord,
           names: Mapping[str, str]) -> tuple[int, int] | None:
    """The longest (id, endpoint name) with ``rec``'s, if it is longer than ``seen``."""
    now = (max(seen[0], len(rec.job_id)),
           max(seen[1], len(names.get(rec.endpoint_id, rec.endpoint_id))))
    return now if now != seen else None


class IdCell(Text):
    """The id column's cell: the whole id (cut with … to the column's width), remembers
    the raw one. (Rows are ordered on their row key, job_rows.JobRows._resort, not on
    this cell: a row off screen holds a placeholder until it is drawn.)"""

    def __init__(self, job_id: str, shown: str) -> None:
        super().__init__(shown, no_wrap=True, overflow="ellipsis", end="")
        self.job_id = job_id


def status_rank(rec: JobRecord) -> int:
    """Sort order by status, as the status column shows it: EXPIRED and NOT FOUND are
    groups of their own whatever status the job had when RunPod forgot it."""
    if rec.expired and not rec.status.terminal:
        return 8 if rec.status is JobStatus.UNKNOWN else 7
    return STATUS_ORDER.get(rec.status, 9)


def progress_plain(rec: JobRecord) -> str:
    if rec.error and rec.status.terminal:
        return error_summary(rec.error, 120)
    if rec.progress is not None and not rec.status.terminal:
        return preview(rec.progress, 120)
    if rec.chunk_count and not rec.status.terminal:
        return f"{rec.chunk_count} chunks"
    if rec.mode != "run" and not rec.status.terminal:
        return rec.mode
    return ""

def job_status_text(rec: JobRecord) -> Text:
    """The status as the list shows it: ``COMPLETED*`` for a job RunPod still reports
    IN_PROGRESS after it finished (``stuck_progress``), ``↻3`` when the platform ran it
    again (``retries``)."""
    t = status_text(rec.status, expired=rec.expired)
    if rec.stuck_progress:
        t.append("*", style="bold yellow")
    if rec.retries:
        t.append(f" ↻{rec.retries}", style="yellow")
    return t


def job_cell(col: str, value: Any, rec: JobRecord, names: Mapping[str, str]) -> Any:
    """The renderable of one cell of the job list. Always a ``Text`` (a plain ``str`` cell would be
    parsed as markup by DataTable, which is slow and would interpret ``[...]``)."""
    if col == "mark":
        return Text(value, style="bold yellow")
    if col == "id":
        return IdCell(rec.job_id, inert(rec.job_id, one_line=True))
    if col == "endpoint":
        name = names.get(rec.endpoint_id, rec.endpoint_id)
        return Text(inert(name, one_line=True), no_wrap=True, overflow="ellipsis")
    if col == "status":
        if value[-1]:  # an action under way ("retrying…")
            return Text(value[-1], style="bold yellow", no_wrap=True, end="")
        return job_status_text(rec)
    if col == "progress":
        style = "red" if rec.error and rec.status.terminal else "dim" if not value else ""
        return Text(value, style=style, no_wrap=True, end="")
    return Text(value, no_wrap=True, end="")
