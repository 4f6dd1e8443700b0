"""``!`` / ``:alerts``: the alerts fired and recovered, newest first: this session's, then
the ones kept in the history database (read in a thread)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from rpdash.tui.format import inert

#: stored events listed at most
LIMIT = 200


def _kind(ev: Any) -> str:
    return str(getattr(ev.kind, "value", ev.kind))


class AlertsScreen(ModalScreen[None]):
    """Fired / recovered alerts with their time, endpoint, rule and message."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, feed: Any, names: Mapping[str, str], *, wall: Callable[[], float]) -> None:
        super().__init__()
        self._feed = feed
        self._names = names
        self._wall = wall
        self.rows: list[Any] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static(Text("Alerts", style="bold"), id="dialog-title")
            yield DataTable(cursor_type="row", zebra_stripes=False, id="alerts-table")
            yield Static(Text("esc to close", style="dim"), id="alerts-note")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in (("at", "time", 8), ("kind", "", 9), ("sev", "severity", 8),
                                  ("ep", "endpoint", 14), ("msg", "what", 60)):
            table.add_column(label, key=key, width=width)
        self._show(list(reversed(self._feed.events)))
        table.focus()
        if self._feed.store is not None:
            self._load_stored()

    @work(thread=True, exit_on_error=False)
    def _load_stored(self) -> None:
        try:
            stored = self._feed.store.recent(LIMIT)
        except Exception:  # noqa: BLE001 - the history may be unreadable; this session's show
            return
        self.app.call_from_thread(self._merge, stored)

    def _merge(self, stored: list[Any]) -> None:
        seen = {(round(float(e.at), 3), e.endpoint_id, e.rule, _kind(e)) for e in self.rows}
        extra = [e for e in stored if (round(float(e.at), 3), e.endpoint_id, e.rule, _kind(e)) not in seen]
        if extra:
            self._show(sorted([*self.rows, *extra], key=lambda e: -float(e.at)))

    def _show(self, events: list[Any]) -> None:
        self.rows = events
        table = self.query_one(DataTable)
        table.clear()
        for ev in events:
            fired = _kind(ev) == "fired"
            style = ("bold red" if ev.severity == "critical" else "yellow") if fired else "green"
            table.add_row(
                Text(time.strftime("%H:%M:%S", time.localtime(float(ev.at)))),
                Text("⚠ fired" if fired else "✓ recovered", style=style),
                Text(str(ev.severity)),
                Text(inert(self._names.get(ev.endpoint_id, ev.endpoint_id), one_line=True)),
                Text(inert(str(ev.message), one_line=True)),
            )
        if not events:
            self.query_one("#alerts-note", Static).update(
                Text("No alerts so far. esc to close", style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
