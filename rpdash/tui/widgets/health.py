"""Endpoint health: one row per endpoint with workers, jobs, trends and connection state.

A DataTable keyed by endpoint id. A new HealthEvent rewrites only the cells that changed.
The "last good answer" age and the retry countdown are refreshed by ``tick()``, which the
app calls at 1 Hz; values from the last good answer stay on screen, dimmed and marked
stale, while the endpoint cannot be reached.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.binding import BindingType
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

from rpdash.core.models import Health
from rpdash.services.events import ConnState, HealthEvent
from rpdash.tui.actions import ReadonlyAware, bindings_for
from rpdash.tui.format import clip, fmt_ago, inert, sparkline
from rpdash.tui.widgets.cells import InPlaceCells
from rpdash.tui.widgets.column_fit import ColumnSpec, fit_columns

#: samples kept per endpoint for the sparklines (at the 5 s default: 10 minutes)
HISTORY = 120

WIDE = (
    ("name", "endpoint", 16),
    ("state", "state", 27),
    ("idle", "idle", 4),
    ("running", "run", 4),
    ("initializing", "init", 4),
    ("ready", "rdy", 4),
    ("throttled", "thr", 4),
    ("unhealthy", "unh", 4),
    ("inQueue", "queue", 5),
    ("inProgress", "prog", 5),
    ("completed", "done", 6),
    ("failed", "fail", 5),
    ("retried", "retr", 5),
    ("q_trend", "queue trend", 11),
    ("r_trend", "run trend", 11),
    ("age", "last answer", 11),
)
COMPACT = (
    ("name", "endpoint", 12),
    ("state", "state", 26),
    ("idle", "idle", 4),
    ("running", "run", 4),
    ("initializing", "init", 4),
    ("unhealthy", "unh", 3),
    ("inQueue", "queue", 5),
    ("inProgress", "prog", 4),
    ("failed", "fail", 4),
    ("age", "answer", 9),
)
#: between the two (a 120-160 column terminal): COMPACT plus completed jobs, throttled
#: workers and the running trend, so a common terminal width is not half empty
MEDIUM = (
    ("name", "endpoint", 12),
    ("state", "state", 24),
    ("idle", "idle", 4),
    ("running", "run", 4),
    ("initializing", "init", 4),
    ("throttled", "thr", 3),
    ("unhealthy", "unh", 3),
    ("inQueue", "queue", 5),
    ("inProgress", "prog", 4),
    ("completed", "done", 6),
    ("failed", "fail", 4),
    ("q_trend", "q trend", 8),
    ("age", "answer", 11),
)
#: the table width from which each profile is used, widest first (its columns plus their
#: padding: no horizontal scroll bar), plus VERDICT_ROOM for the state column, so that a
#: verdict such as "crash-looping (3 unhealthy, 0 running)" shows whole: the verdict is
#: worth more than the trend and done columns of the wider profiles
VERDICT_ROOM = 16
PROFILE_FROM = ((158 + VERDICT_ROOM, WIDE), (118 + VERDICT_ROOM, MEDIUM), (0, COMPACT))
#: which columns go first when the pane is too narrow for its profile (0 stays longest);
#: the name column is as wide as the longest name, up to NAME_MOST (names truncate last)
PRIORITY = {k: i for i, k in enumerate((
    "name", "inQueue", "state", "running", "inProgress", "failed", "idle", "initializing",
    "unhealthy", "throttled", "age", "completed", "q_trend", "ready", "retried", "r_trend"))}
NAME_MOST = 40
#: the state column grows into spare width up to this ("account worker cap (5) used by
#: other endpoints · ≈ $0.0012/s" is 60)
STATE_MOST = 64
WORKER_KEYS = ("idle", "running", "initializing", "ready", "throttled", "unhealthy")
JOB_KEYS = ("inQueue", "inProgress", "completed", "failed", "retried")


@dataclass
class EndpointView:
    endpoint_id: str
    name: str
    event: HealthEvent | None = None
    received: float = 0.0  # monotonic time the event arrived (for the retry countdown)
    queue: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    running: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    last_sample_at: float | None = None
    #: the incident verdict (rpdash.services.verdict.Verdict) and the running cost, USD/s
    verdict: Any = None
    cost_per_s: float | None = None


def state_text(ev: HealthEvent | None, remaining: float | None, *, compact: bool = False) -> Text:
    """The connection state as a person reads it."""
    if ev is None:
        return Text("… connecting", style="dim")
    st = ev.state
    n = f" {max(0, int(round(remaining)))}s" if remaining is not None else ""
    if st is ConnState.OK:
        return Text("● ok", style="green")
    if st is ConnState.CONNECTING:
        return Text("… connecting", style="dim")
    if st is ConnState.RETRYING:
        if compact:
            return Text(f"↻ retry{n}", style="yellow")
        return Text(f"↻ retrying in{n}" if n else "↻ retrying", style="yellow")
    if st is ConnState.RATE_LIMITED:
        return Text(f"⚠ {'limited' if compact else 'rate limited'}{n}", style="yellow")
    if st is ConnState.KEY_REJECTED:
        return Text("✗ key rejected", style="bold red")
    if st is ConnState.NOT_FOUND:
        return Text("✗ not found", style="bold red")
    if st is ConnState.UNREACHABLE:
        return Text(f"✗ unreachable{n}", style="red")
    if st is ConnState.PAUSED:
        return Text("‖ paused", style="dim")
    return Text(inert(str(st), one_line=True))


#: verdict severity -> style of its short text in the row
VERDICT_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "critical": "bold red"}


def verdict_text(verdict: Any, cost_per_s: float | None = None) -> Text:
    """The verdict's short text in its severity's colour, then the running cost (only when
    known and workers run: ``≈ $0.0012/s``)."""
    if verdict is None:
        t = Text("…", style="dim")
    else:
        t = Text(inert(verdict.short_text, one_line=True),
                 style=VERDICT_STYLE.get(verdict.severity, ""))
    if cost_per_s:  # nothing running costs nothing: no "$0/s" noise
        from rpdash.services.cost import format_rate

        t.append(" · " + format_rate(cost_per_s), style="dim")
    return t


class HealthTable(ReadonlyAware, InPlaceCells, DataTable[Any]):
    """One row per watched endpoint."""

    BINDINGS: list[BindingType] = bindings_for("health")  # type: ignore[assignment]

    DEFAULT_CSS = """
    HealthTable { height: auto; max-height: 12; }
    """

    class ShowVerdict(Message):
        """``v``: show the reasoning of the endpoint's verdict."""

        def __init__(self, endpoint_id: str) -> None:
            super().__init__()
            self.endpoint_id = endpoint_id

    class EndpointAction(Message):
        def __init__(self, action: str, endpoint_id: str) -> None:
            super().__init__()
            self.action = action
            self.endpoint_id = endpoint_id

    def __init__(
        self,
        endpoints: list[str],
        *,
        names: Mapping[str, str] | None = None,
        wall: Callable[[], float],
        mono: Callable[[], float],
        fresh_within: float = 7.0,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._wall = wall
        self._mono = mono
        #: an answer younger than this reads "just now": while polls arrive on time the
        #: column stays still (no repaint every second at idle); a count appears once an
        #: answer is late, which is when it means something
        self.fresh_within = fresh_within
        names = names or {}
        self.views: dict[str, EndpointView] = {
            e: EndpointView(e, names.get(e, e)) for e in endpoints
        }
        self.current: str | None = endpoints[0] if endpoints else None
        self._profile: tuple[tuple[str, str, int], ...] = ()
        self._shown: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ layout
    def on_mount(self) -> None:
        self._set_profile(WIDE)

    def on_resize(self) -> None:
        width = self.size.width
        base = next(p for least, p in PROFILE_FROM if width >= least)
        # names truncate last: other columns drop before a name is cut
        longest = min(NAME_MOST, max((len(v.name) for v in self.views.values()), default=0) + 2)
        # the state column takes what room is left, so a long verdict and its cost show whole
        specs = [ColumnSpec(k, label, max(w, longest) if k == "name" else w, PRIORITY.get(k, 99),
                            most=STATE_MOST if k == "state" else 0) for k, label, w in base]
        # one column of room for the vertical scroll bar: never a horizontal one
        want = fit_columns(specs, width - 1)
        if want != self._profile:
            self._set_profile(want)

    def _set_profile(self, profile: tuple[tuple[str, str, int], ...]) -> None:
        keep = self.current_endpoint
        self._profile = profile
        self.clear(columns=True)
        self._shown.clear()
        for key, label, width in profile:
            self.add_column(label, key=key, width=width)
        for ep in self.views:
            cells = self._cells(self.views[ep])
            self.add_row(*(cells[k] for k, _, _ in profile), key=ep)
            self._shown[ep] = {k: _plain(cells[k]) for k, _, _ in profile}
        if keep in self.views:
            self.move_cursor(row=list(self.views).index(keep), animate=False)

    # ------------------------------------------------------------------ data
    @property
    def current_endpoint(self) -> str | None:
        return self.cursor_row_key()

    def set_current(self, endpoint_id: str) -> None:
        """Make ``endpoint_id`` the one the user is on: the ▶ marker and the cursor are
        one (every action, key, ``:`` command and dialog reads this endpoint)."""
        old = self.current
        self.current = endpoint_id
        for ep in (old, endpoint_id):
            if ep in self.views:
                self._refresh_row(ep)
        if endpoint_id in self.views and self.current_endpoint != endpoint_id:
            self.move_cursor(row=list(self.views).index(endpoint_id), animate=False)

    def update_event(self, ev: HealthEvent) -> None:
        view = self.views.get(ev.endpoint_id)
        if view is None:  # an endpoint added by :ep
            view = self.views[ev.endpoint_id] = EndpointView(ev.endpoint_id, ev.endpoint_id)
            cells = self._cells(view)
            self.add_row(*(cells[k] for k, _, _ in self._profile), key=ev.endpoint_id)
            self._shown[ev.endpoint_id] = {k: _plain(cells[k]) for k, _, _ in self._profile}
        view.event = ev
        view.received = self._mono()
        if ev.health is not None and ev.last_ok_at is not None and ev.last_ok_at != view.last_sample_at:
            view.last_sample_at = ev.last_ok_at
            view.queue.append(float(ev.health.jobs.inQueue))
            view.running.append(float(ev.health.workers.running))
        # a fresh answer that changes nothing but "N s ago" waits for the 1 Hz tick: at
        # idle that halves the repaints (one per tick instead of one more per answer)
        self._refresh_row(ev.endpoint_id, age_waits=True)

    def add_endpoint(self, endpoint_id: str, name: str | None = None) -> None:
        if endpoint_id in self.views:
            return
        view = self.views[endpoint_id] = EndpointView(endpoint_id, name or endpoint_id)
        cells = self._cells(view)
        self.add_row(*(cells[k] for k, _, _ in self._profile), key=endpoint_id)
        self._shown[endpoint_id] = {k: _plain(cells[k]) for k, _, _ in self._profile}

    def set_verdict(self, endpoint_id: str, verdict: Any, cost_per_s: float | None = None) -> None:
        """The endpoint's incident verdict (and running cost) in its row."""
        view = self.views.get(endpoint_id)
        if view is None:
            return
        view.verdict, view.cost_per_s = verdict, cost_per_s
        self._refresh_row(endpoint_id)

    def queue_size(self, endpoint_id: str) -> int | None:
        view = self.views.get(endpoint_id)
        if view is None or view.event is None or view.event.health is None:
            return None
        return view.event.health.jobs.inQueue

    def tick(self) -> None:
        """Refresh ages and countdowns (1 Hz at most; only cells whose text changed)."""
        for ep in self.views:
            self._refresh_row(ep)

    def _remaining(self, view: EndpointView) -> float | None:
        ev = view.event
        if ev is None or ev.retry_in is None:
            return None
        return max(0.0, ev.retry_in - (self._mono() - view.received))

    def _cells(self, view: EndpointView) -> dict[str, Any]:
        ev = view.event
        health: Health | None = ev.health if ev is not None else None
        stale = ev is not None and ev.state is not ConnState.OK and health is not None
        num_style = "dim" if stale else ""
        marker = "▶ " if view.endpoint_id == self.current else "  "
        name_w = next((w for k, _, w in self._profile if k == "name"), 16)
        cells: dict[str, Any] = {
            "name": Text(marker + clip(inert(view.name, one_line=True), name_w - 2),
                         style="bold" if marker.strip() else ""),
            "state": self._state(view, ev),
        }
        for k in WORKER_KEYS:
            v = getattr(health.workers, k) if health is not None else None
            style = num_style
            if v and k in ("unhealthy", "throttled") and not stale:
                style = "bold red" if k == "unhealthy" else "yellow"
            cells[k] = Text("-" if v is None else str(v), style=style, justify="right")
        for k in JOB_KEYS:
            v = getattr(health.jobs, k) if health is not None else None
            cells[k] = Text("-" if v is None else str(v), style=num_style, justify="right")
        qw = next((w for k, _, w in self._profile if k == "q_trend"), 16)
        rw = next((w for k, _, w in self._profile if k == "r_trend"), 16)
        cells["q_trend"] = Text(sparkline(list(view.queue), qw), style="dim" if stale else "yellow")
        cells["r_trend"] = Text(sparkline(list(view.running), rw), style="dim" if stale else "cyan")
        if ev is None or ev.last_ok_at is None:
            age = Text("never", style="dim")
        else:
            age_s = self._wall() - ev.last_ok_at
            ago = "just now" if not stale and age_s < self.fresh_within else fmt_ago(age_s)
            if self._width("age") < 11:  # "14 s stale" is 10 cells
                ago = ago.replace(" s ", "s ").replace(" min ", "m ").replace(" h ", "h ")
            if stale:
                age = Text(ago.replace(" ago", "") + " stale", style="yellow")
            else:
                age = Text(ago)
        cells["age"] = age
        return cells

    def _width(self, key: str) -> int:
        """The width of a shown column (0 when it is not shown)."""
        return next((w for k, _, w in self._profile if k == key), 0)

    def _state(self, view: EndpointView, ev: HealthEvent | None) -> Text:
        """The connection while it is not answering well, else the endpoint's verdict
        (incidents are states: one column says what is wrong, whichever it is)."""
        if (ev is None or ev.state is not ConnState.OK or view.verdict is None
                or view.verdict.kind == "unknown"):
            return state_text(ev, self._remaining(view), compact=self._width("state") < 27)
        return verdict_text(view.verdict, view.cost_per_s)

    def _refresh_row(self, endpoint_id: str, age_waits: bool = False) -> None:
        view = self.views[endpoint_id]
        cells = self._cells(view)
        shown = self._shown.setdefault(endpoint_id, {})
        if age_waits and all(k == "age" or shown.get(k) == _plain(cells[k])
                             for k, _, _ in self._profile):
            return
        for j, (k, _, _) in enumerate(self._profile):
            plain = _plain(cells[k])
            if shown.get(k) != plain:
                if not self.write_cell(endpoint_id, ColumnKey(k), j, cells[k]):
                    try:
                        self.update_cell(endpoint_id, k, cells[k])
                    except CellDoesNotExist:
                        continue
                shown[k] = plain
        self.flush_cells()  # only the changed cells' renders go; the row is repainted

    # ------------------------------------------------------------------ actions
    def _act(self, action: str) -> None:
        ep = self.current or self.current_endpoint
        if ep is not None:
            self.post_message(self.EndpointAction(action, ep))

    def action_show_endpoint_jobs(self) -> None:
        self._act("jobs")

    def action_make_current(self) -> None:
        self._act("use")

    def action_show_verdict(self) -> None:
        ep = self.current or self.current_endpoint
        if ep is not None:
            self.post_message(self.ShowVerdict(ep))

    def action_purge(self) -> None:
        self._act("purge")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving the cursor here moves "the endpoint you are on" with it. Events left
        over from a rebuild (a resize) are stale: the cursor is elsewhere by then."""
        event.stop()
        ep = event.row_key.value if event.row_key is not None else None
        if (ep is not None and ep != self.current and self.has_focus
                and event.cursor_row == self.cursor_row):
            self.post_message(self.EndpointAction("use", ep))


def _plain(value: Any) -> Any:
    if isinstance(value, Text):
        return (value.plain, str(value.style))
    return value
