"""The workers of the current endpoint (``W``, ``:workers``): REST v2 worker list.

One row per active worker: id, status, GPU, data centre, uptime, release version, stale.
Above it, the summary (running, idle, initializing, throttled, unhealthy) and, while jobs
wait, the stuck-queue diagnosis in plain words (services/diagnosis.py). Re-read every 5 s
while shown (one request; a failure is shown and retried, the last list stays). ``enter``
or ``l`` tails the selected worker's log, ``L`` the whole endpoint's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from rpdash.core.errors import RpdashError
from rpdash.services.diagnosis import uptime_text
from rpdash.tui.format import inert, plural

if TYPE_CHECKING:
    from rpdash.tui.control_plane import ControlPlane

REFRESH_S = 5.0
STATUS_STYLE = {
    "RUNNING": "green",
    "IDLE": "cyan",
    "INITIALIZING": "yellow",
    "THROTTLED": "yellow",
    "UNHEALTHY": "bold red",
    "OUTDATED": "dim",
}


class WorkersScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    WorkersScreen { align: center middle; background: $background; }
    #workers-box { width: 100%; height: 100%; background: $surface; border: thick $accent 60%;
                   padding: 0 1; }
    #workers-head { height: auto; }
    #workers-diag { height: auto; max-height: 10; margin-bottom: 1; }
    #workers-table { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("enter,l", "worker_logs", "Worker logs"),
        Binding("L", "endpoint_logs", "Endpoint logs", key_display="L"),
        Binding("ctrl+r", "reload", "Refresh"),
    ]

    def __init__(self, control: ControlPlane, endpoint_id: str, *,
                 open_logs: Callable[..., None]) -> None:
        super().__init__()
        self.control = control
        self._open_logs = open_logs
        self.endpoint_id = endpoint_id
        self.worker_list: Any = None
        self.error: str | None = None
        self.loads = 0
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        with Vertical(id="workers-box"):
            yield Static(Text("loading the worker list…", style="dim"), id="workers-head")
            yield Static("", id="workers-diag")
            yield DataTable(cursor_type="row", zebra_stripes=False, id="workers-table")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key, label, width in (("id", "worker", 22), ("status", "status", 13),
                                  ("gpu", "GPU", 24), ("dc", "data centre", 12),
                                  ("uptime", "uptime", 9), ("version", "version", 8),
                                  ("stale", "stale", 6)):
            table.add_column(label, key=key, width=width)
        table.focus()
        self.reload()
        self._timer = self.set_interval(REFRESH_S, self.reload, name="workers-refresh")

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def reload(self) -> None:
        self.run_worker(self._load(), group="workers", exclusive=True, exit_on_error=False)

    async def _load(self) -> None:
        try:
            wl = await self.control.workers(self.endpoint_id, fresh=True)
        except RpdashError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"
        else:
            self.error = None
            self.worker_list = wl
            try:
                await self.control.endpoint_info(self.endpoint_id)
            except RpdashError:
                pass
        self.loads += 1
        self.redraw()

    def redraw(self) -> None:
        from rpdash.services.diagnosis import diagnose
        from rpdash.services.events import ConnState

        name = self.control.name_of(self.endpoint_id)
        head = Text()
        head.append(f"Workers of {inert(name, one_line=True)}", style="bold")
        if name != self.endpoint_id:
            head.append(f"  {inert(self.endpoint_id, one_line=True)}", style="dim")
        info = self.control.cached_info(self.endpoint_id)
        if info is not None:
            head.append(f"  · min {info.workers_min} / max {info.workers_max} workers, "
                        f"{inert(info.gpu_text, one_line=True)}, idle timeout "
                        f"{info.idle_timeout_s} s", style="dim")
        wl = self.worker_list
        if wl is not None:
            s = wl.summary
            head.append(f"\n{plural(s.get('total', len(wl.workers)), 'worker')}: running "
                        f"{s.get('running', 0)}, idle {s.get('idle', 0)}, initializing "
                        f"{s.get('initializing', 0)}, throttled {s.get('throttled', 0)}, "
                        f"unhealthy {s.get('unhealthy', 0)}")
            if wl.endpoint_version is not None:
                head.append(f" · endpoint release {wl.endpoint_version}", style="dim")
        if self.error:
            head.append(f"\nCannot read the workers: {inert(self.error, one_line=True)}"
                        + (" (showing the last list)" if wl is not None else ""), style="yellow")
        self.query_one("#workers-head", Static).update(head)

        session = getattr(self.app, "session", None)
        ev = (getattr(session, "health", None) or {}).get(self.endpoint_id)
        health = ev.health if ev is not None else None
        diag = Text()
        if health is not None and health.jobs.inQueue > 0:
            limited = (ev.retry_in or True) if ev.state is ConnState.RATE_LIMITED else False
            now = self.app.clock.time()  # type: ignore[attr-defined]
            findings = diagnose(health, wl, info, None, now, limited)
            diag.append(f"{plural(health.jobs.inQueue, 'job')} queued. Why:", style="bold")
            for f in findings:
                mark = {"error": ("✗ ", "bold red"), "warn": ("! ", "yellow")}.get(f.severity, ("· ", ""))
                diag.append("\n")
                diag.append(mark[0], style=mark[1])
                diag.append(inert(f.text, one_line=True))
        self.query_one("#workers-diag", Static).update(diag)
        self.query_one("#workers-diag", Static).display = bool(diag.plain)

        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        for w in (wl.workers if wl is not None else []):
            gpu = (w.gpu_type or "-") + (f" x{w.gpu_count}" if w.gpu_count and w.gpu_count > 1 else "")
            table.add_row(
                inert(w.id, one_line=True),
                Text(inert(w.status, one_line=True), style=STATUS_STYLE.get(w.status, "")),
                inert(gpu, one_line=True),
                inert(w.data_center or "-", one_line=True),
                uptime_text(w.uptime_s),
                "-" if w.version is None else str(w.version),
                Text("stale", style="yellow") if w.is_stale else "",
                key=w.id,
            )
        if keep is not None and wl is not None:
            ids = [w.id for w in wl.workers]
            if keep in ids:
                table.move_cursor(row=ids.index(keep), animate=False)

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        wl = self.worker_list
        if wl is None or not wl.workers or table.row_count == 0:
            return None
        row = max(0, min(table.cursor_row, len(wl.workers) - 1))
        return wl.workers[row].id

    # ------------------------------------------------------------------ actions
    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.reload()

    def action_worker_logs(self) -> None:
        wid = self.selected()
        if wid is None:
            self.app.notify("No worker selected", severity="warning", timeout=3)
            return
        self._open_logs(worker_id=wid, endpoint_id=self.endpoint_id)

    def action_endpoint_logs(self) -> None:
        self._open_logs(endpoint_id=self.endpoint_id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_worker_logs()
