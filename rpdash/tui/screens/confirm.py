"""Confirmation modals for destructive actions.

Focus starts on "No", so a stray enter never cancels jobs. ``y`` answers yes, ``n`` and
``esc`` no; the dialog's own footer says so. Purging asks for the endpoint's name to be
typed, and "Purge" stays disabled until it matches (``y`` never confirms without it).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Static

from rpdash.tui.format import inert
from rpdash.tui.widgets.keyorder import OrderedInput


class ConfirmScreen(ModalScreen[bool]):
    """Yes/No; dismisses with True only on an explicit "Yes"."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No", key_display="n/esc"),
        Binding("left,right", "switch", "Switch", key_display="←/→"),
        Binding("enter", "press", "Choose", show=True),
    ]

    def __init__(self, title: str, body: Text | str, *, yes: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._body = body if isinstance(body, Text) else Text(inert(body))
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self._title, style="bold"), id="dialog-title")
            yield Static(self._body, id="dialog-body")
            with Horizontal(id="dialog-buttons"):
                yield Button("No", id="no", variant="primary")
                yield Button(self._yes, id="yes", variant="error")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # "No" first; a dialog pushed while the app is closing may have no buttons left
        for no in self.query("#no").results(Button):
            no.focus()

    def action_press(self) -> None:
        focused = self.focused
        if isinstance(focused, Button):
            focused.press()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    def action_switch(self) -> None:
        yes, no = self.query_one("#yes", Button), self.query_one("#no", Button)
        (no if yes.has_focus else yes).focus()


class PurgeScreen(ModalScreen[bool]):
    """Purge a queue: shows its size, asks for the endpoint's name."""

    #: the dialog's title, its confirm button, and what a refusal says did not happen
    HEADING = "Purge queue"
    YES = "Purge"
    UNDONE = "nothing was purged"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "confirm", "Purge (once the name matches)", show=True),
        Binding("y", "confirm", "Purge", show=False),
        Binding("n", "cancel", "Cancel", show=False),
    ]

    def __init__(self, endpoint_id: str, name: str, queue_size: int | None) -> None:
        super().__init__()
        self.endpoint_id = endpoint_id
        self.name_to_type = name
        self.queue_size = queue_size

    def _named(self, body: Text) -> None:
        """The endpoint's name in bold, its id after it when they differ."""
        body.append(inert(self.name_to_type, one_line=True), style="bold")
        if self.name_to_type != self.endpoint_id:
            body.append(f" ({inert(self.endpoint_id, one_line=True)})", style="dim")

    def _body(self) -> Text:
        size = "unknown (no health answer yet)" if self.queue_size is None else str(self.queue_size)
        body = Text()
        body.append("Remove every job still waiting in the queue of ")
        self._named(body)
        body.append(".\nJobs in queue now: ")
        body.append(size, style="bold yellow")
        body.append("\nJobs already running keep running. This cannot be undone.\n\n")
        body.append("Type the endpoint's name to confirm:")
        return body

    def set_queue_size(self, size: int | None) -> None:
        """The health poller's latest answer (the dialog stays current while it is up)."""
        if size is not None and size != self.queue_size:
            self.queue_size = size
            self.query_one("#dialog-body", Static).update(self._body())

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self.HEADING, style="bold red"), id="dialog-title")
            yield Static(self._body(), id="dialog-body")
            yield OrderedInput(placeholder=f"type {inert(self.name_to_type, one_line=True)}", id="purge-name")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="no", variant="primary")
                yield Button(self.YES, id="yes", variant="error", disabled=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        name = self.query_one("#purge-name", Input)
        name.cursor_blink = False  # no idle repaint
        name.focus()

    def _matches(self, typed: str) -> bool:
        return typed.strip() == self.name_to_type

    def on_input_changed(self, event: Input.Changed) -> None:
        self.query_one("#yes", Button).disabled = not self._matches(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self._matches(event.value):
            self.dismiss(True)
        else:
            self.notify(f"The name does not match; {self.UNDONE}", severity="warning",
                        timeout=3)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "yes" and self._matches(self.query_one("#purge-name", Input).value):
            self.dismiss(True)
        else:
            self.dismiss(False)

    def action_confirm(self) -> None:
        """``y`` (or enter) away from the name field: purges only once the name matches."""
        if self._matches(self.query_one("#purge-name", Input).value):
            self.dismiss(True)
        else:
            self.notify(f"Type the endpoint's name first; {self.UNDONE}",
                        severity="warning", timeout=3)

    def action_cancel(self) -> None:
        self.dismiss(False)
