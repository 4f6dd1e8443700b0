"""The one-line bars: title with badges on top, connection summary at the bottom, and the
``:`` command line and ``/`` filter line that appear above the footer when asked for.

All of them are redrawn only when what they show changes (no timers of their own).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input, Static

from rpdash.services.events import ConnState, HealthEvent
from rpdash.tui.format import inert
from rpdash.tui.widgets.keyorder import InOrderKeys


class TopBar(Static):
    """``rpdash`` + badges: DEMO, LOCAL DEV WORKER, READ-ONLY, PAUSED, HISTORY NOT SAVED."""

    DEFAULT_CSS = """
    TopBar { height: 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, *, demo: bool, readonly: bool, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.demo = demo
        self.readonly = readonly
        #: driving a local dev worker (``--local-worker``), not RunPod
        self.local = False
        self.paused = False
        self.base_url = ""
        #: which API key is in use, masked (``rp_…a1b2``); never the key itself
        self.key_hint = ""
        self.busy: str | None = None
        #: the job history is not being saved (the status bar says why)
        self.history_off = False

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" rpdash ", style="bold reverse")
        t.append(" RunPod serverless ", style="dim")
        if self.demo:
            t.append(" DEMO — simulated, nothing is real ", style="bold black on yellow")
            t.append(" ")
        if self.local:
            t.append(" LOCAL DEV WORKER — no health, cancel, retry or purge ",
                     style="bold black on cyan")
            t.append(" ")
        if self.readonly:
            t.append(" READ-ONLY ", style="bold white on blue")
            t.append(" ")
        if self.paused:
            t.append(" PAUSED ", style="bold black on magenta")
            t.append(" ")
        if self.history_off:
            t.append(" HISTORY NOT SAVED ", style="bold white on red")
            t.append(" ")
        if self.busy:
            t.append(f" {self.busy}… ", style="italic cyan")
        if self.base_url:
            t.append(f" {inert(self.base_url, one_line=True)}", style="dim")
        if self.key_hint:
            t.append(f"  key {self.key_hint}", style="dim")
        self.update(t)

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self.redraw()

    def set_busy(self, what: str | None) -> None:
        """What request is in flight (shown as text; no spinner, so no idle repaint)."""
        if what != self.busy:
            self.busy = what
            self.redraw()


_SUMMARY_STYLE = {
    ConnState.OK: "green",
    ConnState.CONNECTING: "dim",
    ConnState.RETRYING: "yellow",
    ConnState.RATE_LIMITED: "yellow",
    ConnState.KEY_REJECTED: "bold red",
    ConnState.NOT_FOUND: "bold red",
    ConnState.UNREACHABLE: "red",
    ConnState.PAUSED: "dim",
}


#: how long a routine message stays in the status bar's flash slot
FLASH_S = 6.0
_FLASH_STYLE = {"error": "bold red", "warning": "yellow"}


class StatusBar(Static):
    """Connection summary · jobs summary · the last problem · the flash line: routine news
    (a job finished, a retry sent) in one line that never covers data (k9s style)."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._conn = Text("connecting…", style="dim")
        self._jobs = Text("")
        self._problem: Text | None = None
        self._verdict: Text | None = None
        self._flash: Text | None = None
        self._flash_timer: Any = None
        #: the last flash messages (newest last), for tests and the debug view
        self.flashes: list[str] = []
        self._key = None

    def set_connections(self, events: Iterable[HealthEvent | None], paused: bool) -> None:
        counts: dict[ConnState, int] = {}
        waiting = 0
        for ev in events:
            if ev is None:
                waiting += 1
                continue
            counts[ev.state] = counts.get(ev.state, 0) + 1
        t = Text()
        if paused:
            t.append("‖ paused ", style="bold magenta")
        for st, n in sorted(counts.items(), key=lambda kv: list(_SUMMARY_STYLE).index(kv[0])
                            if kv[0] in _SUMMARY_STYLE else 99):
            t.append(f"{'●' if st is ConnState.OK else '◌'} {n} {st.value}  ",
                     style=_SUMMARY_STYLE.get(st, ""))
        if waiting:
            t.append(f"… {waiting} connecting  ", style="dim")
        self._conn = t
        self._redraw()

    def set_jobs(self, active: int, total: int, marked: int) -> None:
        t = Text(f"jobs {active} active / {total}", style="")
        if marked:
            t.append(f" · {marked} marked", style="bold yellow")
        self._jobs = t
        self._redraw()

    def set_verdict(self, text: str | None, severity: str = "warn") -> None:
        """The worst endpoint verdict in a few words (None: every endpoint is ok)."""
        if text is None:
            self._verdict = None
        else:
            mark = "✗ " if severity == "critical" else "⚠ " if severity == "warn" else "• "
            style = {"critical": "bold red", "warn": "yellow"}.get(severity, "cyan")
            self._verdict = Text(mark + inert(text, one_line=True), style=style)
        self._redraw()

    @property
    def verdict_text(self) -> str:
        return self._verdict.plain if self._verdict is not None else ""

    def set_problem(self, message: str | None, severity: str = "warning") -> None:
        if message is None:
            self._problem = None
        else:
            style = "bold red" if severity == "error" else "yellow"
            self._problem = Text(inert(message, one_line=True), style=style)
        self._redraw()

    def flash(self, message: str, severity: str = "information") -> None:
        """Show ``message`` in the flash slot for FLASH_S seconds (replacing the last)."""
        text = inert(message, one_line=True)
        self._flash = Text(text, style=_FLASH_STYLE.get(severity, "green"))
        self.flashes = [*self.flashes[-49:], text]
        if self._flash_timer is not None:
            self._flash_timer.stop()
        self._flash_timer = self.set_timer(FLASH_S, self._clear_flash)
        self._redraw()

    @property
    def flash_text(self) -> str:
        return self._flash.plain if self._flash is not None else ""

    def _clear_flash(self) -> None:
        self._flash_timer = None
        self._flash = None
        self._redraw()

    def _redraw(self) -> None:
        t = Text(" ", no_wrap=True, overflow="ellipsis")
        t.append_text(self._conn)
        if self._verdict is not None:
            t.append("│ ", style="dim")
            t.append_text(self._verdict)
            t.append("  ")
        t.append("│ ", style="dim")
        t.append_text(self._jobs)
        if self._problem is not None:
            t.append("  │ ", style="dim")
            t.append_text(self._problem)
        if self._flash is not None:
            t.append("  │ ", style="dim")
            t.append_text(self._flash)
        key = (t.plain, tuple(str(s.style) for s in t.spans))
        if key != self._key:
            self._key = key
            # one line high by its CSS, as wide as the screen: its size never changes, so
            # no layout of the screen (a burst of job changes redraws this line only)
            self.update(t, layout=False)


class LineInput(InOrderKeys, Input):
    """A one-line prompt (``:`` commands, ``/`` filter). Enter submits, esc closes."""

    BINDINGS = [Binding("escape", "close", "Close", show=False)]

    class Closed(Message):
        def __init__(self, line: LineInput) -> None:
            super().__init__()
            self.line = line

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # typed-ahead keys land at the cursor; selecting all on focus would let the next
        # key replace them
        kwargs.setdefault("select_on_focus", False)
        super().__init__(*args, **kwargs)

    def action_close(self) -> None:
        self.post_message(self.Closed(self))

    def check_consume_key(self, key: str, character: str | None) -> bool:
        from rpdash.tui.actions import PANE_KEYS

        return key not in PANE_KEYS and super().check_consume_key(key, character)
