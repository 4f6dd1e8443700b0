"""Telling the user that tracked jobs finished, without burying the screen in toasts.

Routine news goes to the flash line in the status bar, which never covers data. Finished
jobs are gathered over a short window, so a burst (a busy endpoint, the history's jobs
expiring at start) makes one line ("12 jobs finished: 10 COMPLETED, 2 FAILED"). A toast
only for what needs the user: a job they submitted, retried or watched that failed, timed
out or was not found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.tui.format import error_summary, fmt_ms, inert, short_id
from rpdash.tui.guard import guarded
from rpdash.tui.widgets.output import NOT_FOUND_MESSAGE, shown_error

#: seconds over which finished jobs are gathered into one toast
DONE_TOAST_WINDOW = 1.0
#: ... and jobs of an earlier run found expired, into one toast
EXPIRED_TOAST_WINDOW = 4.0


class JobNotices:
    """Coalesces finished-job notices; ``set_timer`` is the screen's (its timers stop with
    it). Errors in the timed flushes are reported by the app (:func:`guarded`)."""

    def __init__(self, app: Any, set_timer: Callable[..., Any],
                 names: Mapping[str, str], flash: Callable[[str, str], None]) -> None:
        self.app = app
        self._flash = flash
        self._set_timer = set_timer
        self.names = names
        #: jobs the user submitted, retried or watched from this screen: always a notice
        self.own: set[str] = set()
        self._done_buffer: list[JobRecord] = []
        self._done_timer: Any = None
        self._expired_buffer: list[JobRecord] = []
        self._expired_timer: Any = None

    def job_done(self, rec: JobRecord) -> None:
        self._done_buffer.append(rec)
        if self._done_timer is None:
            self._done_timer = self._set_timer(DONE_TOAST_WINDOW, self._flush_done)

    @guarded
    def _flush_done(self) -> None:
        self._done_timer = None
        batch, self._done_buffer = self._done_buffer, []
        if not batch:
            return
        own = [r for r in batch if r.job_id in self.own]
        rest = [r for r in batch if r.job_id not in self.own]
        expired = [r for r in rest if r.expired and not r.status.terminal]
        finished = [r for r in rest if not (r.expired and not r.status.terminal)]
        for rec in own + (finished if len(finished) <= 2 else []):
            self._say_one(rec, toast=rec in own)
        if len(finished) > 2:
            self._say_many(finished)
        if expired:
            # jobs of an earlier run RunPod has forgotten: they expire over a few seconds
            # as the tracker gets to them, so they are gathered longer, into one toast
            self._expired_buffer.extend(expired)
            if self._expired_timer is None:
                self._expired_timer = self._set_timer(EXPIRED_TOAST_WINDOW,
                                                      self._flush_expired)

    @guarded
    def _flush_expired(self) -> None:
        self._expired_timer = None
        n, self._expired_buffer = len(self._expired_buffer), []
        if n:
            what = "1 earlier job expired" if n == 1 else f"{n} earlier jobs expired"
            its = "its result" if n == 1 else "their results"
            self._flash(f"{what}: RunPod no longer keeps {its} (kept in the history)",
                        "warning")

    def _say_one(self, rec: JobRecord, *, toast: bool) -> None:
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
        self._flash(what + detail, sev)
        if toast and (sev == "error" or gone):
            # the user's own job went wrong: that needs them
            self.app.notify(what + detail, severity=sev, timeout=8, markup=False)

    def _say_many(self, recs: list[JobRecord]) -> None:
        counts: dict[str, int] = {}
        for r in recs:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        bad = [r for r in recs if r.status is not JobStatus.COMPLETED]
        text = f"{len(recs)} jobs finished: " + ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        if bad and bad[-1].error:
            text += f" (latest: {short_id(bad[-1].job_id, 14)}: {error_summary(bad[-1].error, 80)})"
        failed = any(r.status in (JobStatus.FAILED, JobStatus.TIMED_OUT) for r in recs)
        self._flash(text, "error" if failed else "information")
