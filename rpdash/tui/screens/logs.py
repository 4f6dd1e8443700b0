"""Live log tail of one worker or of the whole endpoint (``L``, ``:logs``; ``l`` in workers).

The lines come from RunPod's SSE log stream through
:class:`rpdash.api.control.ControlClient` (resumable with ``Last-Event-ID``; the endpoint
tail merges every worker's stream and picks up new workers). The screen:

- **coalesces**: the reader only appends lines to a list; a 50 ms timer (started by the
  first line of a batch) filters them and writes them to the Log in one ``write_lines``
  call, so a burst of lines costs one write and one repaint, never one per line;
- keeps the last ``KEEP`` lines for re-filtering and saving (the Log itself shows at most
  ``MAX_LINES``);
- ``s`` follow on/off (off: the view stays put and counts new lines), ``v`` minimum level
  (all, info, warn, error), ``/`` text filter (``esc`` clears), ``ctrl+s`` save what is
  shown to a file, ``esc``/``q`` back (the stream is closed).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from rpdash.core.errors import RpdashError
from rpdash.tui.format import inert, plural
from rpdash.tui.widgets.output import StreamLog

if TYPE_CHECKING:
    from rpdash.api.control import LogLine
    from rpdash.tui.control_plane import ControlPlane

TAIL = 200
KEEP = 20_000
MAX_LINES = 5_000
FLUSH_S = 0.05
LEVELS = (None, "info", "warn", "error")


class LogsScreen(ModalScreen[None]):
    # An opaque screen: its box covers the terminal, and a translucent one (ModalScreen's
    # default) makes every frame render the whole dashboard behind it, dimmed
    # (BackgroundScreen: a third of the time of L, W and M and their escapes).
    DEFAULT_CSS = """
    LogsScreen { align: center middle; background: $background; }
    #logs-box { width: 100%; height: 100%; background: $surface; border: thick $accent 60%;
                padding: 0 1; }
    #logs-head { height: 2; }
    #logs-filter { display: none; }
    #logs-log { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("s", "toggle_follow", "Follow"),
        Binding("v", "level", "Level"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(self, control: ControlPlane, endpoint_id: str, *,
                 worker_id: str | None = None) -> None:
        super().__init__()
        self.control = control
        self.endpoint_id = endpoint_id
        self.worker_id = worker_id
        self.lines: deque[LogLine] = deque(maxlen=KEEP)
        self._pending: list[LogLine] = []
        self._flush_timer: Any = None
        self.level: str | None = None
        self.grep = ""
        self.state = "connecting"
        self.error: str | None = None
        self.writes = 0  # Log writes (one per flush): the coalescing, measurable
        self.shown = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="logs-box"):
            yield Static("", id="logs-head")
            yield Input(placeholder="text filter (enter applies, esc clears)", id="logs-filter",
                        compact=True)
            yield StreamLog(max_lines=MAX_LINES, id="logs-log")
        yield Footer(compact=True)

    @property
    def following(self) -> bool:
        return self.log_widget.following

    @property
    def log_widget(self) -> StreamLog:
        return self.query_one("#logs-log", StreamLog)

    def on_mount(self) -> None:
        self._render_head()
        self.log_widget.focus()
        self.run_worker(self._tail(), group="logs", exclusive=True, exit_on_error=False)

    # ------------------------------------------------------------------ reading
    async def _tail(self) -> None:
        cc = self.control.control(self.endpoint_id)
        if cc is None:
            self._ended(self.control.control_error or "no control plane")
            return
        try:
            if self.worker_id:
                stream = cc.worker_logs(self.endpoint_id, self.worker_id, tail=TAIL, follow=True)
            else:
                stream = cc.endpoint_logs(self.endpoint_id, tail=TAIL, follow=True)
            self.state = "live"
            self._render_head()
            async for line in stream:
                self._pending.append(line)
                if self._flush_timer is None:
                    self._flush_timer = self.set_timer(FLUSH_S, self.flush)
        except RpdashError as exc:
            self._ended(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            self._ended(f"{type(exc).__name__}: {exc}")
            return
        self._ended(None)

    def _ended(self, error: str | None) -> None:
        self.flush()
        self.error = error
        self.state = "ended" if error is None else "error"
        self._render_head()

    def _match(self, line: LogLine) -> bool:
        from rpdash.api.control import log_matches

        return log_matches(line, level=self.level, grep=self.grep or None)

    def _fmt(self, line: LogLine) -> str:
        from rpdash.api.control.loglines import format_log_line

        return format_log_line(line, with_worker=not self.worker_id)

    def flush(self) -> None:
        """Write every line read since the last flush, filtered, in one call."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        self.lines.extend(batch)
        out = [self._fmt(line) for line in batch if self._match(line)]
        if out:
            self._write(out)
        self._render_head()

    def _write(self, out: list[str]) -> None:
        self.writes += 1
        self.shown += len(out)
        self.log_widget.add_lines(out)

    def _rewrite(self) -> None:
        """The filter changed: show the kept lines again through it (one write)."""
        log = self.log_widget
        log.clear()
        self.shown = 0
        out = [self._fmt(line) for line in self.lines if self._match(line)]
        if out:
            self._write(out[-MAX_LINES:])
        self._render_head()

    def visible_text(self) -> list[str]:
        return [self._fmt(line) for line in self.lines if self._match(line)]

    # ------------------------------------------------------------------ header
    def _render_head(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        name = self.control.name_of(self.endpoint_id)
        what = f"worker {self.worker_id}" if self.worker_id else "all workers"
        t.append(f"Logs of {inert(name, one_line=True)} · {inert(what, one_line=True)}", style="bold")
        style = {"live": "green", "connecting": "dim", "ended": "dim", "error": "red"}[self.state]
        label = {"live": "● live", "connecting": "… connecting", "ended": "stream ended",
                 "error": "✗ " + inert(self.error or "", one_line=True)}[self.state]
        t.append(f"  {label}", style=style)
        t.append("\n")
        self.log_widget.follow_label(t)
        t.append(f"  level {self.level or 'all'}")
        if self.grep:
            t.append(f"  filter: {inert(self.grep, one_line=True)}", style="yellow")
        t.append(f"  {self.shown} of {len(self.lines)} lines", style="dim")
        self.query_one("#logs-head", Static).update(t)

    # ------------------------------------------------------------------ actions
    def action_close(self) -> None:
        self.workers.cancel_group(self, "logs")
        self.dismiss(None)

    def action_toggle_follow(self) -> None:
        self.log_widget.toggle_follow()
        self._render_head()

    def action_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self._rewrite()

    def action_filter(self) -> None:
        box = self.query_one("#logs-filter", Input)
        box.value = self.grep
        box.display = True
        box.focus()

    @on(Input.Submitted, "#logs-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.grep = event.value.strip()
        event.input.display = False
        self.log_widget.focus()
        self._rewrite()

    def on_key(self, event: Any) -> None:
        box = self.query_one("#logs-filter", Input)
        if event.key == "escape" and box.has_focus:
            event.stop()
            event.prevent_default()
            box.display = False
            self.grep = ""
            self.log_widget.focus()
            self._rewrite()

    def action_save(self) -> None:
        lines = self.visible_text()
        try:
            path = save_lines(self.endpoint_id, self.worker_id, lines)
        except OSError as exc:
            self.app.notify(f"Could not save: {exc.strerror or exc}", severity="error",
                            timeout=6, markup=False)
            return
        self.app.notify(f"Saved {plural(len(lines), 'line')} to {path}", timeout=6, markup=False)


def save_lines(endpoint_id: str, worker_id: str | None, lines: list[str]) -> Path:
    """``./rpdash-logs-<endpoint>[-<worker>]-<time>.txt`` (the data dir when the current
    directory is not writable); a private file, never overwritten."""
    from rpdash import paths

    def safe(s: str) -> str:
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)[:60]

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"rpdash-logs-{safe(endpoint_id)}" + (f"-{safe(worker_id)}" if worker_id else "") + f"-{stamp}"
    folders = [Path.cwd()]
    with contextlib.suppress(Exception):
        folders.append(paths.data_dir())
    last: OSError | None = None
    for folder in folders:
        if not os.access(folder, os.W_OK):
            continue
        for n in range(100):
            path = folder / (f"{base}.txt" if n == 0 else f"{base}-{n}.txt")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                last = exc
                break
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + ("\n" if lines else ""))
            return path
    raise last or OSError("no writable folder (current directory or data dir)")
