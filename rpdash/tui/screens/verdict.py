"""``v`` on an endpoint row: its verdict's reasoning (every finding, the chosen one first)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from rpdash.tui.format import fmt_ago, inert
from rpdash.tui.widgets.health import verdict_text


class VerdictScreen(ModalScreen[None]):
    """The verdict of one endpoint: short text, severity, since when, and why."""

    BINDINGS = [Binding("escape,q,v", "close", "Close")]

    def __init__(self, label: str, verdict: Any, *, now: float | None = None) -> None:
        super().__init__()
        self._label = label
        self._verdict = verdict
        self._now = now

    def compose(self) -> ComposeResult:
        v = self._verdict
        with Vertical(id="dialog", classes="wide"):
            title = Text(inert(self._label, one_line=True) + ": ", style="bold")
            title.append_text(verdict_text(v))
            yield Static(title, id="dialog-title")
            with VerticalScroll(id="verdict-reasons"):
                if v is None:
                    yield Static(Text("No verdict yet: no answer from RunPod so far.", style="dim"))
                else:
                    head = Text(f"severity {v.severity}", style="dim")
                    if v.since and self._now is not None:
                        head.append(f" · since {fmt_ago(max(0.0, self._now - v.since))}")
                    yield Static(head)
                    reasons = v.reasons or [v.short_text]
                    for i, reason in enumerate(reasons):
                        yield Static(Text(("• " if i else "▶ ") + inert(reason),
                                          style="" if i else "bold"))
            yield Static(Text("esc to close", style="dim"))
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)
