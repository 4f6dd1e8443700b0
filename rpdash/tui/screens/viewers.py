"""Small modals: a job's raw JSON (``y``) and the recent-inputs picker (ctrl+o)."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from rpdash.tui.format import inert, preview
from rpdash.tui.widgets.output import render_value


class JsonScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,y", "dismiss", "Close")]

    def __init__(self, title: str, value: Any) -> None:
        super().__init__()
        self._title = title
        self._value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static(Text(inert(self._title, one_line=True), style="bold"), id="dialog-title")
            with VerticalScroll(id="json-body"):
                yield Static(render_value(self._value))
            yield Static(Text("esc to close", style="dim"))
        yield Footer(compact=True)

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)


class RecentInputsScreen(ModalScreen[dict | None]):
    """Pick one of the recent inputs; enter loads it into the editor."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("enter", "noop", "Load into the editor", show=True)]

    def action_noop(self) -> None:
        """Shown in the footer; the list's own enter loads the input."""

    def __init__(self, inputs: list[dict[str, Any]]) -> None:
        super().__init__()
        self._inputs = inputs

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Static(Text("Recent inputs", style="bold"), id="dialog-title")
            if not self._inputs:
                yield Static(Text("No inputs submitted yet.", style="dim"))
            yield OptionList(
                *(Option(Text(preview(v, 100)), id=str(i)) for i, v in enumerate(self._inputs)),
                id="recent-list",
            )
            yield Static(Text("enter: load into the editor · esc: cancel", style="dim"))
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        idx = int(event.option.id or 0)
        self.dismiss(self._inputs[idx] if 0 <= idx < len(self._inputs) else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
