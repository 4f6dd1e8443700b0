"""Latency metrics (``M``, ``:metrics``): per watched endpoint, over 15 min, 1 h or 24 h.

Numbers from the jobs rpdash has seen (its history: delay and execution at p50/p70/p90/p98,
failure rate, throughput per minute, cold starts; see services/metrics.py for the exact
definitions), and small charts (Textual ``Sparkline``): finished jobs per minute, failures
per minute, queue length, workers and unhealthy workers from the stored ``/health``
samples (the Session stores one per answer, so the charts survive a restart).

Reads the history file directly (a few indexed queries); refreshed every 5 s while shown
and when the window changes (``w``). Everything is a read: nothing is sent to RunPod.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Sparkline, Static

from rpdash.tui.format import inert, plural

if TYPE_CHECKING:
    from rpdash.tui.control_plane import ControlPlane

WINDOWS = (("15m", 900.0), ("1h", 3600.0), ("24h", 86400.0))
#: (key, label, how the buckets are reduced)
CHARTS = (
    ("throughput", "finished/min", "sum"),
    ("failed", "failed/min", "mean"),
    ("in_queue", "queue", "max"),
    ("workers", "workers", "max"),
    ("unhealthy", "unhealthy", "max"),
)
BUCKETS = 60
REFRESH_S = 5.0


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:.1f} %"


class EndpointMetricsView(Vertical):
    """One endpoint: numbers, then one sparkline per chart."""

    DEFAULT_CSS = """
    EndpointMetricsView { height: auto; margin-bottom: 1; }
    EndpointMetricsView .m-numbers { height: auto; }
    EndpointMetricsView .m-row { height: 1; }
    EndpointMetricsView .m-label { width: 14; color: $text-muted; }
    EndpointMetricsView Sparkline { width: 1fr; height: 1; }
    EndpointMetricsView .m-value { width: 16; padding-left: 1; }
    """

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(classes="m-endpoint")
        self.endpoint_id = endpoint_id
        self.metrics: Any = None
        self.series: dict[str, list[float]] = {}

    def compose(self) -> ComposeResult:
        yield Static("", classes="m-numbers")
        for key, label, _ in CHARTS:
            with Horizontal(classes="m-row"):
                yield Static(label, classes="m-label")
                yield Sparkline([0.0], id=f"spark-{key}")
                yield Static("", id=f"val-{key}", classes="m-value")

    def show(self, name: str, window_label: str, met: Any, series: dict[str, list[float]],
             last: dict[str, str]) -> None:
        from rpdash.services.metrics import format_ms

        self.metrics = met
        self.series = series
        head = Text()
        head.append(inert(name, one_line=True), style="bold")
        if name != self.endpoint_id:
            head.append(f"  {inert(self.endpoint_id, one_line=True)}", style="dim")
        head.append(f"  · last {window_label}: {met.finished} finished "
                    f"({met.completed} completed, {met.failed} failed, {met.timed_out} timed out, "
                    f"{met.cancelled} cancelled)")
        head.append("\nfailure rate ")
        head.append(_pct(met.failure_rate), style="bold red" if (met.failure_rate or 0) > 0.1 else "bold")
        head.append(f"   throughput {met.throughput_per_min:.2f}/min   cold starts ")
        head.append(str(met.cold_starts), style="bold")
        if met.without_worker:
            head.append(f" ({plural(met.without_worker, 'job')} without worker id)", style="dim")
        table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False, header_style="bold")
        for col in ("", "p50", "p70", "p90", "p98", "jobs"):
            table.add_column(col, justify="right" if col else "left")
        for label, st in (("delay", met.delay), ("execution", met.execution),
                          ("cold start", met.cold_start_delay)):
            table.add_row(label, format_ms(st.p50), format_ms(st.p70), format_ms(st.p90),
                          format_ms(st.p98), str(st.count))
        from rich.console import Group

        self.query_one(".m-numbers", Static).update(Group(head, table))
        for key, _, _ in CHARTS:
            data = series.get(key) or [0.0]
            self.query_one(f"#spark-{key}", Sparkline).data = data
            self.query_one(f"#val-{key}", Static).update(last.get(key, "-"))


class MetricsScreen(ModalScreen[None]):
    """Metrics of every watched endpoint (the current one first)."""

    DEFAULT_CSS = """
    MetricsScreen { align: center middle; background: $background; }
    #metrics-box { width: 100%; height: 100%; background: $surface; border: thick $accent 60%;
                   padding: 0 1; }
    #metrics-head { height: auto; margin-bottom: 1; }
    #metrics-body { height: 1fr; }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Back"),
        Binding("w", "window", "Window 15m/1h/24h"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, control: ControlPlane, endpoints: list[str], *, current: str | None = None,
                 window: str = "1h") -> None:
        super().__init__()
        self.control = control
        order = ([current] if current else []) + [e for e in endpoints if e != current]
        self.endpoints = list(dict.fromkeys(order))
        self.window_label = window
        self.window_s = dict(WINDOWS)[window]
        self._timer: Any = None
        self.problem: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="metrics-box"):
            yield Static("", id="metrics-head")
            with VerticalScroll(id="metrics-body"):
                # only the current endpoint's view is in the first frame; the others
                # (6 rows of widgets each) are mounted just after it
                for ep in self.endpoints[:1]:
                    yield EndpointMetricsView(ep)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.call_after_refresh(self._after_first_frame)
        self._timer = self.set_interval(REFRESH_S, self.reload, name="metrics-refresh")

    async def _after_first_frame(self) -> None:
        if not self.is_attached:
            return
        rest = [EndpointMetricsView(ep) for ep in self.endpoints[1:]]
        if rest:
            await self.query_one("#metrics-body", VerticalScroll).mount_all(rest)
        self.reload()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_window(self) -> None:
        labels = [w for w, _ in WINDOWS]
        self.window_label = labels[(labels.index(self.window_label) + 1) % len(labels)]
        self.window_s = dict(WINDOWS)[self.window_label]
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    # ------------------------------------------------------------------ data
    def _store(self) -> Any:
        session = getattr(self.app, "session", None)
        metrics = getattr(session, "metrics", None)
        if metrics is not None:
            return metrics
        store = getattr(session, "store", None)
        if store is None:
            return None
        from rpdash.store.history import HistoryStore
        from rpdash.store.metrics_store import MetricsStore

        return MetricsStore(store) if isinstance(store, HistoryStore) else None

    def reload(self) -> None:
        """Flush the newest finishes, then read and compute in a thread (the history may
        be large); the views are filled when it is done."""
        ms = self._store()
        now = self.app.clock.time()  # type: ignore[attr-defined]
        head = Text()
        head.append("Metrics", style="bold")
        head.append(f" · window {self.window_label} (w changes: 15m, 1h, 24h)", style="")
        head.append(" · from the jobs rpdash has seen and the /health samples it stored",
                    style="dim")
        if ms is None:
            head.append("\nNo history store: nothing to measure.", style="yellow")
        session = getattr(self.app, "session", None)
        book = getattr(session, "book", None)
        if book is not None:
            try:
                book.flush()  # the newest finishes too
            except Exception:  # noqa: BLE001
                pass
        self.query_one("#metrics-head", Static).update(head)
        eps = [v.endpoint_id for v in self.query(EndpointMetricsView)]
        window_s, label = self.window_s, self.window_label
        self.run_worker(lambda: self._compute(ms, eps, now, window_s, label), thread=True,
                        group="metrics", exclusive=True, exit_on_error=False)

    def _compute(self, ms: Any, eps: list[str], now: float, window_s: float, label: str) -> None:
        """In a thread: the store's reads (it locks) and the arithmetic; no widget."""
        from rpdash.services.metrics import compute_metrics, counter_rate, downsample, health_series

        start = now - window_s
        out: list[tuple[str, Any, dict[str, list[float]], dict[str, str]]] = []
        for ep in eps:
            try:
                jobs = ms.finished_jobs(ep, start, now) if ms is not None else []
                first = ms.first_jobs_of_workers(ep, [j.worker_id for j in jobs if j.worker_id]) \
                    if ms is not None else {}
                samples = ms.health_samples(ep, start, now) if ms is not None else []
            except Exception as exc:  # noqa: BLE001 - an unreadable history is a state
                self.problem = str(exc)
                jobs, first, samples = [], {}, []
            bucket = window_s / BUCKETS
            met = compute_metrics(jobs, endpoint_id=ep, window_s=window_s, now=now,
                                  first_jobs=first, bucket_s=bucket)
            series: dict[str, list[float]] = {}
            last: dict[str, str] = {}
            per_min = 60.0 / bucket
            series["throughput"] = [n * per_min for _, n in met.throughput_series]
            last["throughput"] = f"{met.throughput_per_min:.2f}/min avg"
            failed = counter_rate(samples, "failed")
            series["failed"] = [v or 0.0 for v in downsample(failed, start=start, end=now,
                                                             buckets=BUCKETS, how="mean")]
            last["failed"] = f"{failed[-1][1]:.1f}/min now" if failed else "-"
            for key in ("in_queue", "workers", "unhealthy"):
                pts = health_series(samples, key)
                series[key] = [v or 0.0 for v in downsample(pts, start=start, end=now,
                                                            buckets=BUCKETS, how="max")]
                last[key] = f"{int(pts[-1][1])} now, max {int(max(v for _, v in pts))}" if pts else "-"
            out.append((ep, met, series, last))
        self.app.call_from_thread(self._show, out, label)

    def _show(self, out: list[tuple[str, Any, dict[str, list[float]], dict[str, str]]],
              label: str) -> None:
        if not self.is_attached or label != self.window_label:
            return  # closed, or the window changed again meanwhile (its own read follows)
        views = {v.endpoint_id: v for v in self.query(EndpointMetricsView)}
        for ep, met, series, last in out:
            view = views.get(ep)
            if view is not None:
                view.show(self.control.name_of(ep), label, met, series, last)
