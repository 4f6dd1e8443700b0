"""The endpoint picker (``ctrl+e``, ``:ep``): the account's queue endpoints, fuzzy-filtered.

The list comes from the control plane (REST v2 ``GET /v2/serverless``, GraphQL
``myself.endpoints`` as the fallback; load-balancer endpoints are left out) through
:class:`rpdash.tui.control_plane.ControlPlane`. Type to filter (name or id, fuzzy), ``up``/``down`` move,
``enter`` watches the endpoint (a health row of its own, and it becomes current), ``tab``
goes to the list where ``0``-``9`` star it as that favourite key (saved to the config
file's ``[favourites]``) and ``x`` removes its star. When the list cannot be read, an
endpoint id typed in full can still be watched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from rpdash.core.errors import RpdashError
from rpdash.core.models import is_safe_id
from rpdash.tui.format import clip, inert
from rpdash.tui.widgets.keyorder import OrderedInput

if TYPE_CHECKING:
    from rpdash.api.control import EndpointInfo
    from rpdash.tui.control_plane import ControlPlane
    from rpdash.tui.favourites import Favourites


def _n(v: int | None) -> str:
    return "?" if v is None else str(v)


class PickerTable(DataTable[Any]):
    """The list: digits star the highlighted endpoint."""

    BINDINGS = [
        *(Binding(str(n), f"star('{n}')", f"Star {n}", show=False) for n in range(10)),
        Binding("x,delete", "unstar", "Unstar"),
        Binding("enter", "choose", "Watch"),
        Binding("slash", "search", "Search", key_display="/"),
    ]

    def action_star(self, digit: str) -> None:
        screen = self.screen
        if isinstance(screen, EndpointPicker):
            screen.star(digit)

    def action_unstar(self) -> None:
        screen = self.screen
        if isinstance(screen, EndpointPicker):
            screen.star(None)

    def action_choose(self) -> None:
        screen = self.screen
        if isinstance(screen, EndpointPicker):
            screen.choose()

    def action_search(self) -> None:
        self.screen.query_one("#picker-search", Input).focus()


class EndpointPicker(ModalScreen["tuple[str, str] | None"]):
    """Pick an endpoint to watch; returns (endpoint id, name) or None."""

    DEFAULT_CSS = """
    EndpointPicker { align: center middle; }
    #picker {
        width: 120; max-width: 96%; height: 80%;
        border: thick $accent 60%; background: $surface; padding: 0 1;
    }
    #picker-title { margin-bottom: 1; }
    #picker-status { height: auto; color: $text-muted; }
    #picker-list { height: 1fr; }
    #picker-help { height: 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
    ]

    def __init__(self, control: ControlPlane, favourites: Favourites, *, watched: list[str],
                 query: str = "") -> None:
        super().__init__()
        self.control = control
        self.favourites = favourites
        self.watched = set(watched)
        self.search_text = query
        self.endpoints: list[EndpointInfo] = []
        self.shown: list[str] = []
        self.error: str | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(Text("Endpoints of this account (queue-based)", style="bold"),
                         id="picker-title")
            yield OrderedInput(value=self.search_text, placeholder="type to filter by name or id",
                        id="picker-search", compact=True)
            yield Static(Text("loading the endpoint list…", style="dim"), id="picker-status")
            yield PickerTable(cursor_type="row", zebra_stripes=False, id="picker-list")
            yield Static(Text("enter: watch · tab: to the list, then 0-9: star as favourite, "
                              "x: unstar · esc: close", style="dim"), id="picker-help")

    def on_mount(self) -> None:
        table = self.query_one(PickerTable)
        for key, label, width in (("fav", "★", 3), ("name", "name", 24), ("id", "id", 20),
                                  ("workers", "workers", 8), ("gpu", "GPU", 24),
                                  ("idle", "idle timeout", 12), ("watched", "", 8)):
            table.add_column(label, key=key, width=width)
        self.query_one("#picker-search", Input).focus()
        self.run_worker(self._load(), group="picker", exclusive=True, exit_on_error=False)

    async def _load(self) -> None:
        try:
            eps = await self.control.list_endpoints()
        except RpdashError as exc:
            self._loaded([], str(exc))
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            self._loaded([], f"{type(exc).__name__}: {exc}")
        else:
            self._loaded(eps, None)

    def _loaded(self, eps: list[EndpointInfo], error: str | None) -> None:
        self.endpoints = sorted(eps, key=lambda e: (e.name.lower(), e.id))
        self.error = error
        self.loaded = True
        self._refilter()

    # ------------------------------------------------------------------ list
    @on(Input.Changed, "#picker-search")
    def _changed(self, event: Input.Changed) -> None:
        self.search_text = event.value
        if self.loaded:
            self._refilter()

    def _refilter(self) -> None:
        q = self.search_text.strip()
        rows: list[tuple[float, EndpointInfo]] = []
        if q:
            matcher = Matcher(q)
            for e in self.endpoints:
                score = max(matcher.match(e.name), matcher.match(e.id) * 0.9)
                if score > 0:
                    rows.append((score, e))
            rows.sort(key=lambda r: -r[0])
        else:
            rows = [(1.0, e) for e in self.endpoints]
        table = self.query_one(PickerTable)
        table.clear()
        self.shown = []
        for _, e in rows:
            fav = self.favourites.favourite_of(e.id)
            idle = f"{e.idle_timeout_s} s" if e.idle_timeout_s is not None else "-"
            table.add_row(
                Text(f"★{fav}" if fav is not None else "", style="bold yellow"),
                Text(clip(inert(e.name, one_line=True), 24), style="bold"),
                inert(e.id, one_line=True),
                f"{_n(e.workers_min)}-{_n(e.workers_max)}",
                clip(inert(e.gpu_text, one_line=True), 24),
                idle,
                Text("watched", style="green") if e.id in self.watched else "",
                key=e.id,
            )
            self.shown.append(e.id)
        status = self.query_one("#picker-status", Static)
        if self.error:
            hint = " Type a full endpoint id and press enter to watch it anyway." if not rows else ""
            status.update(Text(f"Cannot list endpoints: {inert(self.error, one_line=True)}.{hint}",
                               style="yellow"))
        elif not self.endpoints:
            status.update(Text("No queue-based endpoints in this account.", style="dim"))
        else:
            src = getattr(self.control.control(), "last_source", None)
            via = " (via GraphQL: REST v2 unavailable)" if src == "graphql" else ""
            status.update(Text(f"{len(rows)} of {len(self.endpoints)} endpoints{via}", style="dim"))

    def highlighted(self) -> str | None:
        table = self.query_one(PickerTable)
        if not self.shown or table.row_count == 0:
            return None
        row = max(0, min(table.cursor_row, len(self.shown) - 1))
        return self.shown[row]

    def _info(self, endpoint_id: str) -> EndpointInfo | None:
        return next((e for e in self.endpoints if e.id == endpoint_id), None)

    # ------------------------------------------------------------------ actions
    def action_move(self, delta: int) -> None:
        table = self.query_one(PickerTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + delta)))

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#picker-search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.choose()

    def choose(self) -> None:
        ep = self.highlighted()
        if ep is None:
            typed = self.search_text.strip()
            if typed and is_safe_id(typed) and (self.error or not self.endpoints):
                self.dismiss((typed, typed))
            return
        info = self._info(ep)
        self.dismiss((ep, info.name if info is not None else ep))

    def star(self, digit: str | None) -> None:
        ep = self.highlighted()
        if ep is None:
            return
        info = self._info(ep)
        name = inert(info.name if info is not None else ep, one_line=True)
        try:
            if digit is None:
                fav = self.favourites.favourite_of(ep)
                if fav is None:
                    return
                path = self.favourites.set_favourite(fav, None)
                self.app.notify(f"{name} is no longer favourite {fav} (saved to {path})",
                                timeout=4, markup=False)
            else:
                path = self.favourites.set_favourite(digit, ep)
                self.app.notify(f"★{digit} = {name}: press {digit} on the dashboard to jump to "
                                f"it (saved to {path})", timeout=5, markup=False)
        except RpdashError as exc:
            self.app.notify(f"Favourite not saved: {exc}", severity="error", timeout=6,
                            markup=False)
            return
        row = self.query_one(PickerTable).cursor_row
        self._refilter()
        self.query_one(PickerTable).move_cursor(row=row)
