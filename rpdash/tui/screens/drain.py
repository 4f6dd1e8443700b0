"""The drain dialog (``:drain``): the purge dialog's typed-name confirmation, saying what a
drain does (save the scale, min and max workers to 0, purge the queue) and how to undo it
(``:restore``). The name or the id typed exactly confirms, as ``rpdash drain --confirm``
(:func:`rpdash.services.scaling.confirms`). Being a purge dialog, it keeps the queue size
live while it is up.
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from rpdash.api.control.models import EndpointInfo
from rpdash.services.scaling import confirms
from rpdash.tui.screens.confirm import PurgeScreen


class DrainScreen(PurgeScreen):
    """Drain an endpoint: asks for its name (or id) to be typed."""

    HEADING = "Drain endpoint"
    YES = "Drain"
    UNDONE = "nothing was drained"

    #: the purge dialog's keys (esc, n cancel), with what enter does named
    BINDINGS = [Binding("enter", "confirm", "Drain (once the name matches)", show=True)]

    def __init__(self, endpoint_id: str, name: str, queue_size: int | None,
                 scale: str | None) -> None:
        super().__init__(endpoint_id, name, queue_size)
        #: the scale as last read (``workers 0-3, idle 5 s, ...``), None if not known
        self.scale = scale

    def _body(self) -> Text:
        body = Text("Drain ")
        self._named(body)
        body.append(":\n · save its scale")
        if self.scale:
            body.append(f": {self.scale}", style="bold")
        body.append("\n · set min and max workers to 0 (running jobs finish)\n · remove every "
                    "job waiting in its queue (now: ")
        body.append("unknown" if self.queue_size is None else str(self.queue_size),
                    style="bold yellow")
        body.append(")\n:restore puts the scale back; removed jobs are gone.\n\n")
        body.append("Type the endpoint's name to confirm:")
        return body

    def set_scale(self, scale: str) -> None:
        """The scale, once read (the dialog opens at once and says it when it knows)."""
        if scale != self.scale:
            self.scale = scale
            self.query_one("#dialog-body", Static).update(self._body())

    def _matches(self, typed: str) -> bool:
        return confirms(EndpointInfo(self.endpoint_id, self.name_to_type), typed)
