"""Notes under the output of the shown job: why a queued job waits, and how long RunPod
keeps a finished job's result that rpdash has not stored yet.

- **Stuck-queue diagnosis** (services/diagnosis.py) for a job that is still in the queue:
  from the endpoint's last ``/health`` answer, the REST v2 worker list and the endpoint's
  settings (both read through :class:`rpdash.tui.control_plane.ControlPlane`, at most
  every 10 s), and
  whether rpdash itself is rate limited. Plain sentences, most severe first.
- **Result expiry** (services/expiry.py): a finished job whose output is not stored gets a
  countdown, and rpdash fetches the result once, at once, before it goes; a job whose
  result RunPod dropped before rpdash read it is marked "expired before rpdash saw it".

Updated by the app's 1 Hz tick (and when jobs change); it starts at most one request at a
time, in a worker, and renders only when its text changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widgets import Static

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState
from rpdash.tui.format import inert
from rpdash.tui.widgets.steady import update_in_place

if TYPE_CHECKING:
    from rpdash.tui.control_plane import ControlPlane
    from rpdash.tui.results import ResultKeeper

_MARK = {"error": ("✗ ", "bold red"), "warn": ("! ", "yellow"), "info": ("· ", "")}


def _tracker_messages() -> tuple[str, str]:
    from rpdash.services.tracking import EXPIRED_MESSAGE, PURGED_MESSAGE

    return EXPIRED_MESSAGE, PURGED_MESSAGE


def expiry_note(rec: JobRecord, now: float, fetched: str | None = None) -> tuple[str, str] | None:
    """(severity, sentence) about the result of a finished job, or None."""
    from rpdash.services.expiry import ResultState, result_remaining, result_state

    expired_msg, purged_msg = _tracker_messages()
    if rec.expired:
        if rec.error == purged_msg or rec.output is not None or rec.chunk_count:
            return None
        if rec.error not in (None, expired_msg):
            return None
        why = "RunPod keeps results 30 min after /run and 1 min after /runsync"
        if rec.status is JobStatus.UNKNOWN:
            return None  # never seen at all: the error ("not found") says all there is
        if rec.status is JobStatus.IN_QUEUE:
            return ("error", "RunPod dropped this job before rpdash saw it start or end: if it "
                             f"ran, its result expired before rpdash saw it ({why})")
        return ("error", f"result expired before rpdash saw it: {why}")
    state = result_state(rec, now)
    if state is ResultState.EXPIRED_UNSEEN:
        return ("error", "result most likely expired before rpdash saw it (RunPod keeps results "
                         "30 min after /run, 1 min after /runsync)")
    if state is not ResultState.AVAILABLE:
        return None
    if fetched == "no output":
        return ("info", "RunPod returned no output for this job")
    left = result_remaining(rec, now)
    if left is None:
        return ("warn", "result not stored yet: RunPod keeps it only for a limited time")
    m, s = divmod(int(left), 60)
    when = f"{m} min {s:02d} s" if m else f"{s} s"
    tail = {None: "fetching it now", "stored": "stored"}.get(fetched, fetched)
    return ("warn", f"result not stored yet: RunPod keeps it {when} more ({tail})")


class JobNotes(Static):
    """Diagnosis and expiry notes for the job in the output pane (hidden when silent)."""

    DEFAULT_CSS = """
    JobNotes {
        height: auto;
        max-height: 45%;
        overflow-y: auto;
        padding: 0 1;
        border-top: hkey $panel-lighten-2;
        display: none;
    }
    """

    def __init__(self, *, wall: Callable[[], float], id: str | None = None) -> None:
        super().__init__("", id=id)
        self._wall = wall
        self.job_id: str | None = None
        self.lines: list[tuple[str, str]] = []
        self._shown: Any = None
        self._busy: set[str] = set()
        self.problem: str | None = None

    # ------------------------------------------------------------------ entry point
    def update_for(self, rec: JobRecord | None, control: ControlPlane, results: ResultKeeper,
                   session: Any) -> None:
        self.job_id = rec.job_id if rec is not None else None
        lines: list[tuple[str, str]] = []
        title = ""
        if rec is not None:
            now = self._wall()
            if rec.status is JobStatus.IN_QUEUE and not rec.terminal:
                title = "Why is it waiting?"
                lines = self._diagnose(rec, control, session, now)
            elif rec.terminal:
                note = expiry_note(rec, now, results.fetched.get(rec.job_id))
                if note is not None:
                    title = "Result"
                    lines = [note]
                    if (note[0] == "warn" and rec.job_id not in results.fetched
                            and not control.local_url):
                        self._fetch(rec, results)
        self.lines = lines
        self._show(title, lines)

    # ------------------------------------------------------------------ diagnosis
    def _diagnose(self, rec: JobRecord, control: ControlPlane, session: Any, now: float) -> list[tuple[str, str]]:
        from rpdash.services.diagnosis import diagnose

        ev = (getattr(session, "health", None) or {}).get(rec.endpoint_id)
        health = ev.health if ev is not None else None
        limited: bool | float = False
        if ev is not None and ev.state is ConnState.RATE_LIMITED:
            limited = ev.retry_in or True
        workers = control.cached_workers(rec.endpoint_id)
        info = control.cached_info(rec.endpoint_id)
        if not control.workers_fresh(rec.endpoint_id) and not control.local_url:
            if control.control(rec.endpoint_id) is not None:
                self._load(rec.endpoint_id, control)
            else:
                self.problem = control.control_error
        findings = diagnose(health, workers, info, rec, now, limited)
        out = [(f.severity, f.text) for f in findings]
        if workers is None and self.problem:
            out.append(("info", f"(worker list not read: {self.problem})"))
        return out

    def _load(self, endpoint_id: str, control: ControlPlane) -> None:
        key = f"w:{endpoint_id}"
        if key in self._busy:
            return
        self._busy.add(key)

        async def load() -> None:
            try:
                _, _, problem = await control.diagnosis_inputs(endpoint_id)
                self.problem = problem
            finally:
                self._busy.discard(key)

        self.run_worker(load(), group="notes-load", exit_on_error=False)

    # ------------------------------------------------------------------ expiry
    def _fetch(self, rec: JobRecord, results: ResultKeeper) -> None:
        key = f"f:{rec.job_id}"
        if key in self._busy:
            return
        self._busy.add(key)
        results.fetched[rec.job_id] = "fetching it now"

        async def fetch() -> None:
            try:
                results.fetched[rec.job_id] = await results.fetch_result(rec.endpoint_id, rec.job_id)
            finally:
                self._busy.discard(key)

        self.run_worker(fetch(), group="notes-fetch", exit_on_error=False)

    # ------------------------------------------------------------------ rendering
    def _show(self, title: str, lines: list[tuple[str, str]]) -> None:
        key = (title, tuple(lines))
        if key == self._shown:
            return
        self._shown = key
        if not lines:
            self.display = False
            self.update("")
            return
        t = Text()
        t.append(title, style="bold")
        for severity, sentence in lines:
            mark, style = _MARK.get(severity, ("· ", ""))
            t.append("\n")
            t.append(mark, style=style)
            t.append(inert(sentence, one_line=True), style=style if severity == "error" else "")
        if self.display:
            update_in_place(self, t)  # the 1 Hz tick's new wait: no layout unless it grows
        else:
            self.update(t)
        self.display = True

    @property
    def text(self) -> str:
        return "\n".join(s for _, s in self.lines)
