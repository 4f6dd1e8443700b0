"""The pane switcher: one line that names the four panes, their keys and a summary of each
(queue counts, active jobs, the shown job's status), the pane on screen highlighted.

It shows in the single-pane layout of a small terminal (80x24), where one pane takes the
screen and the others are a keypress away (alt+1-alt+4, tab / shift+tab, or a click on
their name here)."""

from __future__ import annotations

from rich.text import Text
from textual.events import Click
from textual.message import Message
from textual.widgets import Static

#: the panes in tab order: (name, key, title)
PANES: tuple[tuple[str, str, str], ...] = (
    ("health", "alt+1", "Endpoints"),
    ("jobs", "alt+2", "Jobs"),
    ("output", "alt+3", "Output"),
    ("submit", "alt+4", "Submit"),
)


class PaneSwitcher(Static):
    """``[1] Endpoints 4 ok q 2 │ [2] Jobs 2 active │ …`` with the shown pane highlighted."""

    DEFAULT_CSS = """
    PaneSwitcher { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    class PaneChosen(Message):
        def __init__(self, pane: str) -> None:
            super().__init__()
            self.pane = pane

    def __init__(self, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.shown = "jobs"
        self.summaries: dict[str, str] = {}
        self._spans: list[tuple[int, int, str]] = []
        self._key: tuple[object, ...] = ()

    def set_state(self, shown: str, summaries: dict[str, str]) -> None:
        key = (shown, tuple(sorted(summaries.items())))
        if key == self._key:
            return  # idle: no repaint at 1 Hz
        self._key = key
        self.shown = shown
        self.summaries = dict(summaries)
        # one line high, as wide as the screen: a new summary never changes its size, so
        # no layout of the screen (it changes with every burst of job status changes)
        self.update(self._render_line(), layout=False)

    def _render_line(self) -> Text:
        """The line with every summary that fits: the output's goes first, then the
        jobs', then the endpoints' (the pane names and keys always show)."""
        width = self.size.width or 200
        shown = dict(self.summaries)
        line = self._line(shown)
        for drop in ("output", "jobs", "health"):
            if len(line) <= width:
                break
            shown.pop(drop, None)
            line = self._line(shown)
        return line

    def on_resize(self) -> None:
        self.update(self._render_line())

    def _line(self, summaries: dict[str, str]) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        self._spans = []
        for i, (name, key, title) in enumerate(PANES):
            if i:
                t.append(" │ ", style="dim")
            start = len(t)
            on = name == self.shown
            t.append(f"[{key[-1]}] ", style="bold reverse" if on else "bold")
            t.append(title, style="bold reverse" if on else "")
            summary = summaries.get(name)
            if summary:
                t.append(f" {summary}", style="" if on else "dim")
            self._spans.append((start, len(t), name))
        return t

    @property
    def plain(self) -> str:
        return self._render_line().plain

    def on_click(self, event: Click) -> None:
        x = event.x
        for start, end, name in self._spans:
            if start <= x < end:
                self.post_message(self.PaneChosen(name))
                return
