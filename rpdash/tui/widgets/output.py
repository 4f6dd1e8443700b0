"""The output viewer: streamed chunks as they arrive, then the final output or the error.

Speed: chunks are never written one by one. :meth:`OutputViewer.feed` only appends the
chunk texts to a list; :meth:`OutputViewer.flush` joins them and hands the result to the
log in one ``write`` call (the app calls it once per batch of stream events, and a 50 ms
timer catches anything fed outside a batch). The log keeps at most ``MAX_LINES`` lines on
screen; the history store keeps every chunk, and save/copy read from there.

Safety: the log's lines pass through :func:`rpdash.tui.format.inert` when rendered, and
the final output and errors are rich ``Text``/``JSON`` objects built from data, never
markup, so escape sequences and ``[markup]`` in a job's output are shown, not obeyed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Log, Static

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.tracking.quirks import still_stuck
from rpdash.tui.actions import bindings_for
from rpdash.tui.format import (
    chunk_text,
    clip,
    fmt_ms,
    inert,
    inert_text,
)
from rpdash.tui.messages import Flash
from rpdash.tui.widgets.job_cells import job_status_text
from rpdash.tui.widgets.steady import update_in_place
from rpdash.tui.widgets.wrapping import StreamText, wrap_stream

__all__ = ["OutputViewer", "StreamLog", "wrap_stream"]

MAX_LINES = 5_000
#: what the output pane says about a live job with nothing to show yet
_PENDING_NOTE = {
    JobStatus.IN_QUEUE: "in the queue: waiting for a worker",
    JobStatus.IN_PROGRESS: "running: no progress update yet",
    JobStatus.UNKNOWN: "status not known yet",
}
#: final outputs larger than this are shown as plain (unhighlighted) text
MAX_PRETTY_CHARS = 200_000


#: a job watched by id (``:watch``) that RunPod never answered for
NOT_FOUND_MESSAGE = ("not found (404): RunPod does not know this job id on this endpoint: "
                     "a mistyped id, another endpoint, or a result it no longer keeps")


def shown_error(rec: JobRecord) -> str | None:
    """The error to show for a job. A job rpdash never saw any status of (watched by id)
    that 404s is "not found", which may well be a typo: calling it "expired" misleads."""
    if rec.expired and rec.status is JobStatus.UNKNOWN and rec.error:
        from rpdash.services.tracking import EXPIRED_MESSAGE

        if rec.error == EXPIRED_MESSAGE:
            return NOT_FOUND_MESSAGE
    return rec.error


class StreamLog(Log):
    """A Log whose lines are made inert before they are drawn, written in batches, that
    can stop following: while off it keeps its place and counts the lines that arrive.
    (The output viewer's stream and the logs screen.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.following = True
        self.new_lines = 0  # lines that arrived while follow was off

    @classmethod
    def _process_line(cls, line: str) -> str:
        return inert(line.expandtabs())

    def add_text(self, text: str) -> None:
        """One write of many lines (``text`` as it came)."""
        if not self.following:
            self.new_lines += text.count("\n")
        self.write(text, scroll_end=self.following)

    def add_lines(self, lines: list[str]) -> None:
        """One write of whole lines."""
        if not self.following:
            self.new_lines += len(lines)
        self.write_lines(lines, scroll_end=self.following)

    def toggle_follow(self) -> None:
        self.following = not self.following
        self.auto_scroll = self.following
        if self.following:
            self.new_lines = 0
            self.scroll_end(animate=False)

    def follow_label(self, into: Text) -> None:
        """``follow on`` / ``follow off · N new lines``, appended to a header line."""
        if self.following:
            into.append("follow on", style="green")
        else:
            into.append("follow off", style="yellow")
            if self.new_lines:
                into.append(f" · {self.new_lines} new lines", style="bold yellow")


def render_value(value: Any) -> RenderableType:
    """A final output as highlighted JSON (or inert text for strings and huge values)."""
    if isinstance(value, str):
        if len(value) > MAX_PRETTY_CHARS:  # a 10 MB string would take a minute to lay out
            return inert_text(value[:MAX_PRETTY_CHARS] + f"\n… (truncated on screen: "
                              f"{len(value):,} characters; save with ctrl+s)")
        return inert_text(value)
    try:
        dumped = json.dumps(value, ensure_ascii=False, indent=2, default=str)
    except (TypeError, ValueError):
        return inert_text(repr(value))
    if len(dumped) > MAX_PRETTY_CHARS:
        return inert_text(dumped[:MAX_PRETTY_CHARS] + "\n… (truncated on screen; save with ctrl+s)")
    try:
        # rich's JSON highlighter works on a Text built from the string: no markup parsing
        pretty = JSON(inert(dumped))
        pretty.text.no_wrap = False  # rich's JSON never wraps: a long URL was cut off
        pretty.text.overflow = "fold"
        return pretty
    except Exception:  # noqa: BLE001 - anything odd: show it plain
        return inert_text(dumped)


def render_error(error: str) -> RenderableType:
    """An error string; runpod-python workers send a JSON-encoded object, shown pretty."""
    parsed: Any = None
    s = error.strip()
    if s.startswith("{"):
        try:
            parsed = json.loads(s)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        head = parsed.get("error_message") or parsed.get("error") or ""
        parts: list[RenderableType] = []
        if head:
            parts.append(inert_text(f"{parsed.get('error_type', 'error')}: {head}", "bold red"))
        tb = parsed.get("error_traceback")
        if isinstance(tb, str) and tb:
            parts.append(inert_text(tb, "red"))
        rest = {k: v for k, v in parsed.items()
                if k not in ("error_message", "error_traceback", "error_type")}
        if rest:
            parts.append(render_value(rest))
        return Group(*parts) if parts else inert_text(error, "red")
    return inert_text(error, "bold red")


class OutputViewer(Vertical, can_focus=False):
    """Shows one job: header, stream log, final output or error."""

    BINDINGS: list[BindingType] = bindings_for("output")  # type: ignore[assignment]

    class SaveRequested(Message):
        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    class CopyRequested(Message):
        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(self, *, wall: Callable[[], float], id: str | None = None) -> None:
        super().__init__(id=id)
        self._wall = wall
        self.job: JobRecord | None = None
        self.wrap = True
        self.text = StreamText()  # the stream as it came, for wrapping again
        self.next_seq = 0  # index of the next chunk expected for this job
        self.chunks_shown = 0
        self._pending: list[str] = []
        self._flush_timer: Any = None
        self.stream_done = False
        self.stream_note: str | None = None
        self._shown_final: Any = object()
        self._shown_head: Text | None = None
        #: a finished job's estimated cost in USD (None: unknown), set by the screen
        self.cost_of: Callable[[JobRecord], float | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("Select a job in the jobs pane (alt+2) to see its output.", style="dim"),
                     id="out-head")
        yield StreamLog(max_lines=MAX_LINES, id="out-stream")
        with VerticalScroll(id="out-final"):
            yield Static("", id="out-final-body")

    @property
    def log_widget(self) -> StreamLog:
        return self.query_one("#out-stream", StreamLog)

    @property
    def following(self) -> bool:
        return self.log_widget.following

    @property
    def new_lines(self) -> int:
        return self.log_widget.new_lines

    # ------------------------------------------------------------------ job selection
    def show_job(self, rec: JobRecord | None, chunks: list[Any] | None = None) -> None:
        """Show ``rec`` (with the chunks stored so far), replacing whatever was shown."""
        self.job = rec
        self._pending.clear()
        self.log_widget.new_lines = 0
        self.stream_done = False
        self.stream_note = None
        self._shown_final = object()
        log = self.log_widget
        log.clear()
        self.text.clear()
        self.next_seq = 0
        self.chunks_shown = 0
        # shown before it is written: a hidden log has no width to wrap for
        self._set_log_display(bool(rec is not None and (rec.mode == "stream" or chunks)))
        if rec is not None and chunks:
            self.feed(rec.job_id, 0, chunks)
            self.flush()
        self._render_final()
        self._render_head()

    def update_job(self, rec: JobRecord) -> None:
        """The shown job's record changed (status, timings, output)."""
        if self.job is None or rec.job_id != self.job.job_id:
            return
        self.job = rec
        if rec.chunk_count and not self.log_widget.display:
            self._set_log_display(True)
        self._render_final()
        self._render_head()

    # ------------------------------------------------------------------ streaming
    def feed(self, job_id: str, seq: int, outputs: list[Any], *, done: bool = False,
             message: str | None = None) -> bool:
        """Queue chunks ``seq..`` of ``job_id``. Returns False when a gap means the caller
        should reload the job from the store (chunks were missed)."""
        if self.job is None or job_id != self.job.job_id:
            return True
        if message:
            self.stream_note = message
        if done:
            self.stream_done = True
        if seq > self.next_seq:
            return False
        skip = self.next_seq - seq
        if skip >= len(outputs):
            return True
        fresh = outputs[skip:] if skip else outputs
        self.next_seq += len(fresh)
        pending = self._pending
        for value in fresh:
            pending.append(value if isinstance(value, str) else chunk_text(value))
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(0.05, self.flush)
        return True

    def flush(self) -> None:
        """Write everything queued in one call."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if not self._pending:
            if self.stream_done or self.stream_note:
                self._render_head()
            return
        text = "".join(self._pending)
        count = len(self._pending)
        width = self._wrap_width()
        text = self.text.add(text, width)
        if self.wrap and width is None:
            self.call_after_refresh(self._rewrap_if_needed)  # once the log has a width
        self._pending.clear()
        self.chunks_shown += count
        log = self.log_widget
        if not log.display:
            self._set_log_display(True)
        log.add_text(text)
        self._render_head()

    def _wrap_width(self) -> int | None:
        """The width to wrap the stream for (None: wrap is off, or the log has no width
        yet: it is wrapped again once it has one)."""
        if not self.wrap:
            return None
        log = self.log_widget
        room = log.scrollable_content_region.width
        if not log.show_vertical_scrollbar:
            # it appears once the log overflows: lines wrapped for the wider view
            # would then be one column too long and bring a horizontal scrollbar
            room -= log.styles.scrollbar_size_vertical
        return room - 1 if room > 9 else None

    def rewrap(self) -> None:
        """Write the stream again, wrapped for the log's width now (or not wrapped)."""
        log = self.log_widget
        width = self._wrap_width()
        if self.wrap and width is None:
            return  # no width yet: on_resize comes back
        new_lines = log.new_lines
        log.clear()
        log.add_text(self.text.all(width))
        log.new_lines = new_lines

    def _rewrap_if_needed(self) -> None:
        if self.wrap and self.log_widget.display and self.text.width != (self._wrap_width() or 0):
            self.rewrap()

    def on_resize(self) -> None:
        self.call_after_refresh(self._rewrap_if_needed)
        self.call_after_refresh(self._render_head)  # the id is cut to the width

    def _set_log_display(self, shown: bool) -> None:
        """The stream log only shows for jobs with a stream; without it the final output
        takes the whole pane."""
        self.log_widget.display = shown
        self.set_class(not shown, "-nostream")

    # ------------------------------------------------------------------ rendering
    def _render_head(self) -> None:
        rec = self.job
        head = self.query_one("#out-head", Static)
        if rec is None:
            self._shown_head = None
            update_in_place(head, Text("Select a job in the jobs pane (alt+2) to see its output.",
                                       style="dim"))
            return
        # line 1: which job and its state (the id cut to the width); line 2: follow state
        # and details, wrapped in a narrow pane rather than cut (the counts are at its end)
        t = Text(overflow="fold", end="")
        t.append_text(job_status_text(rec))
        t.append("  ")
        room = head.content_region.width - len(t) if head.content_region.width else 200
        t.append(clip(inert(rec.job_id, one_line=True), max(room, 8)), style="bold")
        t.append("\n")
        if rec.stuck_progress:  # first on its line: a narrow pane must not cut it off
            t.append("* finished; RunPod still says IN_PROGRESS (late progress update)  "
                     if still_stuck(rec) else
                     "* finished; it stayed IN_PROGRESS at RunPod, cleared at RunPod by cancel  ",
                     style="yellow")  # fmt: skip
        if self.log_widget.display:  # following only means something for a stream
            self.log_widget.follow_label(t)
            t.append("  ")
        t.append(rec.mode, style="dim")
        t.append(f"  delay {fmt_ms(rec.delay_ms)}  exec {fmt_ms(rec.execution_ms)}")
        if rec.retries:
            t.append(f"  retries {rec.retries} (re-run by RunPod)")
        cost = self.cost_of(rec) if self.cost_of is not None and rec.terminal else None
        if cost is not None:
            from rpdash.services.cost import format_cost

            t.append(f"  cost {format_cost(cost)}", style="dim")
        if self.chunks_shown or rec.mode == "stream":
            t.append(f"  chunks {self.next_seq}", style="dim")
        if self.stream_note:
            t.append("  " + inert(self.stream_note, one_line=True), style="yellow")
        if t != self._shown_head:  # a burst that does not change what it says: no repaint
            self._shown_head = t
            update_in_place(head, t)  # a layout only if its height changes

    def _render_final(self) -> None:
        rec = self.job
        body = self.query_one("#out-final-body", Static)
        box = self.query_one("#out-final", VerticalScroll)
        if rec is None:
            update_in_place(body, "")
            return
        key = (rec.status, rec.expired, id(rec.output), rec.error, id(rec.progress))
        if key == self._shown_final:
            return
        self._shown_final = key
        parts: list[RenderableType] = []
        error = shown_error(rec)
        if error:
            parts.append(Text("error", style="bold red underline"))
            parts.append(render_error(error))
        if (rec.status.terminal and isinstance(rec.output, list) and self.next_seq
                and len(rec.output) == self.next_seq):
            # a generator's aggregate output repeats the stream shown above
            parts.append(Text(f"output: the {len(rec.output)} streamed items above "
                              "(ctrl+s saves everything)", style="dim"))
        elif rec.status.terminal and rec.output is not None:
            parts.append(Text("output", style="bold underline"))
            parts.append(render_value(rec.output))
        elif not rec.terminal and rec.progress is not None:
            parts.append(Text("latest progress", style="bold underline"))
            parts.append(render_value(rec.progress))
        elif not rec.terminal:
            if self.log_widget.display:  # the stream says it all
                update_in_place(body, "")
                box.display = False
                return
            parts.append(Text(_PENDING_NOTE.get(rec.status, f"{rec.status}: no output yet"),
                              style="dim"))
        elif rec.expired:
            # finished as far as rpdash is concerned: never "waiting"; the error (if any)
            # above already says why, else say it here
            if not rec.error:
                parts.append(Text("RunPod no longer has this job (expired)", style="dim"))
        elif rec.output is None and not rec.error:
            parts.append(Text("(no output)", style="dim"))
        update_in_place(body, Group(*parts))  # a layout only if its height changes
        box.display = True

    # ------------------------------------------------------------------ actions
    def action_toggle_follow(self) -> None:
        self.log_widget.toggle_follow()
        self._render_head()

    def action_toggle_wrap(self) -> None:
        """Wrap long lines (or not): the whole stream is written again."""
        self.wrap = not self.wrap
        self.rewrap()
        self.post_message(Flash(f"Wrap {'on' if self.wrap else 'off'}"))

    def action_save(self) -> None:
        if self.job is not None:
            self.post_message(self.SaveRequested(self.job.job_id))
        else:
            self.notify("No job shown", severity="warning", timeout=3)

    def action_copy_output(self) -> None:
        if self.job is not None:
            self.post_message(self.CopyRequested(self.job.job_id))
        else:
            self.notify("No job shown", severity="warning", timeout=3)

    def action_top(self) -> None:
        self.log_widget.scroll_home(animate=False)
        self.query_one("#out-final", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        """To the end: the lines counted while follow was off are seen now."""
        log = self.log_widget
        log.scroll_end(animate=False)
        self.query_one("#out-final", VerticalScroll).scroll_end(animate=False)
        if log.new_lines:
            log.new_lines = 0
            self._render_head()

    def on_focus(self) -> None:  # pragma: no cover - container is not focusable
        self.log_widget.focus()


def export_text(rec: JobRecord, chunks: list[Any]) -> str:
    """Everything known about a job's output, as a file's content (raw, not sanitised:
    the file is the user's and should hold exactly what the worker produced)."""
    lines = [f"# job {rec.job_id} on {rec.endpoint_id}: {rec.status}"]
    if chunks:
        lines.append("# stream")
        lines.append("".join(chunk_text(c) for c in chunks))
    if rec.output is not None:
        lines.append("# output")
        lines.append(json.dumps(rec.output, ensure_ascii=False, indent=2, default=str)
                     if not isinstance(rec.output, str) else rec.output)
    if rec.error:
        lines.append("# error")
        lines.append(rec.error)
    return "\n".join(lines) + "\n"
