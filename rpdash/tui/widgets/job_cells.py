"""The job list's columns and cells: which columns, in which order, and what each cell of a
job shows (always a ``Text``: a plain ``str`` cell would be parsed as markup)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.text import Text

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.tui.format import (
    STATUS_ORDER,
    clip,
    error_summary,
    inert,
    preview,
    short_id,
    status_text,
)

# Most useful first: on a narrow terminal the table scrolls sideways past the rest.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("mark", " ", 1),
    ("id", "job id", 11),
    ("status", "status", 14),
    ("age", "age", 4),
    ("endpoint", "endpoint", 12),
    ("delay", "delay", 6),
    ("exec", "exec", 6),
    ("retries", "rtr", 3),
    ("progress", "latest update", 30),
)
PROGRESS_MIN = 16
COLUMN_KEYS = tuple(c[0] for c in COLUMNS)
#: which columns show: all of them when there is room, else the essentials (the rest is
#: in the output pane's header and in ``y``)
WIDE_COLS = tuple(range(len(COLUMNS)))
NARROW_COLS = tuple(COLUMN_KEYS.index(k) for k in ("mark", "id", "status", "age", "exec", "progress"))
NARROW_BELOW = 2 * len(COLUMNS) + sum(c[2] for c in COLUMNS[:-1]) + PROGRESS_MIN


class IdCell(Text):
    """The id column's cell: shows the short id, remembers the full one (for sorting)."""

    def __init__(self, job_id: str, shown: str) -> None:
        super().__init__(shown, no_wrap=True, end="")
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
        return IdCell(rec.job_id, short_id(rec.job_id, 11))
    if col == "endpoint":
        name = names.get(rec.endpoint_id, rec.endpoint_id)
        return Text(clip(inert(name, one_line=True), 12), no_wrap=True)
    if col == "status":
        return job_status_text(rec)
    if col == "progress":
        style = "red" if rec.error and rec.status.terminal else "dim" if not value else ""
        return Text(value, style=style, no_wrap=True, end="")
    return Text(value, no_wrap=True, end="")
