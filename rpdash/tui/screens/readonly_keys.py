"""Read-only mode on the dashboard: a key of an action that read-only mode removed (cancel,
retry, purge, submit, mark) is not silently ignored; it says why, in the flash line."""

from __future__ import annotations

from textual import events

from rpdash.tui.actions import readonly_refusal
from rpdash.tui.screens.parts import DashboardPart

#: which pane's keys apply where the focus is
_PANE_SCOPES = {"JobTable": "jobs", "HealthTable": "health", "SubmitForm": "submit",
                "OutputViewer": "output"}


class ReadonlyKeysMixin(DashboardPart):
    """Key events that reach the screen (no binding took them)."""

    focused: object

    def on_key(self, event: events.Key) -> None:
        """Read-only mode: a key of an action that is absent says why, in one line."""
        if not self._app.readonly:
            return
        node = self.focused
        scope = None
        while node is not None and scope is None:
            scope = _PANE_SCOPES.get(type(node).__name__)
            node = node.parent
        why = readonly_refusal(scope, event.key, self._app.keymap) if scope else None
        if why is not None:
            event.stop()
            self.flash(why, "warning")
