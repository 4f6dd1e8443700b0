"""How the dashboard's panes share the terminal, by size (DESIGN.md 2, "Layouts by size").

- From ``SINGLE_BELOW`` up (100x30 and more): the four panes side by side; below 130x40
  (``-narrow``) the submit form folds to one line until it has the focus.
- Below it (80x24, the default terminal): one pane at a time takes the screen and a
  one-line :class:`~rpdash.tui.widgets.panes.PaneSwitcher` names the others with their
  keys and a summary. alt+1-alt+4 switch; tab / shift+tab walk the fields of the pane on
  screen, then on to the next pane; anything that focuses a widget of a hidden pane (``e``
  fills the form, ...) brings that pane on screen first. Nothing shrinks to nothing and
  no pane scrolls sideways.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.widget import Widget

from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer
from rpdash.tui.widgets.panes import PANES, PaneSwitcher

#: below this width or height: one pane at a time
SINGLE_BELOW = (100, 30)
#: below this width or height (and from SINGLE_BELOW up): the submit form folds
NARROW_BELOW = (130, 40)

PANE_NAMES = tuple(p[0] for p in PANES)


def pane_of(widget: Widget | None) -> str | None:
    """The pane (``health``, ``jobs``, ...) a widget lives in, or None (the bars)."""
    node: Any = widget
    while node is not None:
        node_id = getattr(node, "id", None) or ""
        if node_id.startswith("pane-"):
            return node_id[5:]
        node = getattr(node, "parent", None)
    return None


class PaneLayoutMixin:
    """Mixed into :class:`~rpdash.tui.screens.dashboard.DashboardScreen` (before Screen)."""

    single = False
    shown_pane = "jobs"

    def _on_width(self, width: int, height: int) -> None:
        screen: Any = self
        single = width < SINGLE_BELOW[0] or height < SINGLE_BELOW[1]
        narrow = not single and (width < NARROW_BELOW[0] or height < NARROW_BELOW[1])
        screen.set_class(narrow, "-narrow")
        if single != self.single:
            self.single = single
            screen.set_class(single, "-single")
            focused = pane_of(screen.focused)
            self.show_pane(focused or self.shown_pane)

    def show_pane(self, name: str) -> None:
        """In the single-pane layout: put pane ``name`` on screen (the others hide)."""
        screen: Any = self
        if name not in PANE_NAMES:
            return
        self.shown_pane = name
        for other in PANE_NAMES:
            screen.set_class(other == name, f"-show-{other}")
        self.refresh_switcher()

    def set_focus(self, widget: Widget | None, scroll_visible: bool = True,
                  from_app_focus: bool = False) -> None:
        pane = pane_of(widget)
        if self.single and pane is not None and pane != self.shown_pane:
            self.show_pane(pane)  # displayed first: a hidden widget cannot take the focus
        elif pane is not None:
            self.shown_pane = pane
            self.refresh_switcher()
        super().set_focus(widget, scroll_visible, from_app_focus)  # type: ignore[misc]

    def focus_next(self, selector: Any = "*") -> Widget | None:
        return self._step_focus(1, selector)

    def focus_previous(self, selector: Any = "*") -> Widget | None:
        return self._step_focus(-1, selector)

    def _step_focus(self, direction: int, selector: Any) -> Widget | None:
        screen: Any = self
        step = super().focus_next if direction > 0 else super().focus_previous  # type: ignore[misc]
        if not self.single:
            return step(selector)
        chain = [w for w in screen.focus_chain if pane_of(w) == self.shown_pane]
        focused = screen.focused
        at_end = (not chain or focused not in chain
                  or chain.index(focused) == (len(chain) - 1 if direction > 0 else 0))
        if not at_end:
            return step(selector)
        i = PANE_NAMES.index(self.shown_pane)
        nxt = PANE_NAMES[(i + direction) % len(PANE_NAMES)]
        self.show_pane(nxt)
        chain = [w for w in screen.focus_chain if pane_of(w) == nxt]
        if not chain:
            return None
        target = chain[0] if direction > 0 else chain[-1]
        screen.set_focus(target)
        return target

    @on(PaneSwitcher.PaneChosen)
    def _pane_chosen(self, event: PaneSwitcher.PaneChosen) -> None:
        screen: Any = self
        screen.focus_pane(event.pane)

    def update_status(self) -> None:
        super().update_status()  # type: ignore[misc]
        self.refresh_switcher()

    def refresh_switcher(self) -> None:
        """The switcher's summaries (only drawn in the single-pane layout)."""
        screen: Any = self
        if not self.single:
            return
        try:
            switcher = screen.query_one(PaneSwitcher)
            health = screen.query_one(HealthTable)
            jobs = screen.query_one(JobTable)
            viewer = screen.query_one(OutputViewer)
        except Exception:  # noqa: BLE001 - not composed yet, or torn down
            return
        switcher.set_state(self.shown_pane, {
            "health": _health_summary(health),
            "jobs": _jobs_summary(jobs),
            "output": str(viewer.job.status) if viewer.job is not None else "",
        })


def _health_summary(health: HealthTable) -> str:
    ok = queued = 0
    for view in health.views.values():
        ev = view.event
        if ev is None:
            continue
        if str(getattr(ev.state, "name", "")) == "OK":
            ok += 1
        if ev.health is not None:
            queued += ev.health.jobs.inQueue or 0
    down = len(health.views) - ok
    return f"queue {queued}" + (f" · {down} not ok" if down else "")


def _jobs_summary(jobs: JobTable) -> str:
    return f"{jobs.active} active"
