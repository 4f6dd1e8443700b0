"""Going places from the dashboard: the endpoint picker (ctrl+e, ``:ep``), favourites
(``0``-``9``), the workers, logs and metrics screens (``W``, ``L``, ``M``) of the current
endpoint, and the local dev worker's first notice.

One :class:`Navigator` per app. It opens screens and asks the session to watch an
endpoint; the dashboard changes its own widgets (:meth:`DashboardScreen.show_watched`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rpdash.core.errors import RpdashError

if TYPE_CHECKING:
    from textual.app import App

    from rpdash.tui.control_plane import ControlPlane
    from rpdash.tui.favourites import Favourites
    from rpdash.tui.screens.dashboard import DashboardScreen


class Navigator:
    """Opens the side screens for the endpoint the user is on."""

    def __init__(self, app: App[Any], control: ControlPlane, favourites: Favourites,
                 dashboard: Callable[[], DashboardScreen | None]) -> None:
        self.app = app
        self.control = control
        self.favourites = favourites
        self._dashboard = dashboard

    @property
    def _session(self) -> Any:
        return getattr(self.app, "session", None)

    def _dash(self) -> DashboardScreen | None:
        dash = self._dashboard()
        if dash is None or not dash.is_attached:
            return None
        return dash

    def current_endpoint(self) -> str | None:
        dash = self._dash()
        if dash is None:
            return None
        try:
            return dash.current_endpoint
        except Exception:  # noqa: BLE001 - torn down
            return None

    def _not_here(self, action: str) -> bool:
        why = self.control.unsupported.get(action)
        if why:
            self.app.notify(f"Not available: {why}", severity="warning", timeout=6, markup=False)
            return True
        return False

    def _endpoint_or_say(self) -> str | None:
        ep = self.current_endpoint()
        if ep is None:
            self.app.notify("No current endpoint: pick one with ctrl+e", severity="warning",
                            timeout=4)
        return ep

    # ------------------------------------------------------------------ screens
    def open_picker(self, query: str = "") -> None:
        from rpdash.tui.screens.picker import EndpointPicker

        if self._not_here("pick_endpoint") or self._dash() is None:
            return
        watched = list(getattr(self._session, "endpoints", []) or [])

        def picked(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.watch_endpoint(result[0], result[1])

        self.app.push_screen(EndpointPicker(self.control, self.favourites, watched=watched,
                                            query=query), picked)

    def open_workers(self) -> None:
        from rpdash.tui.screens.workers import WorkersScreen

        if self._not_here("show_workers") or self._dash() is None:
            return
        ep = self._endpoint_or_say()
        if ep is not None:
            self.app.push_screen(WorkersScreen(self.control, ep, open_logs=self.open_logs))

    def open_logs(self, worker_id: str | None = None, endpoint_id: str | None = None) -> None:
        from rpdash.tui.screens.logs import LogsScreen

        if self._not_here("show_logs") or self._dash() is None:
            return
        ep = endpoint_id or self._endpoint_or_say()
        if ep is not None:
            self.app.push_screen(LogsScreen(self.control, ep, worker_id=worker_id))

    def open_metrics(self) -> None:
        from rpdash.tui.screens.metrics import MetricsScreen

        if self._dash() is None:
            return
        ep = self.current_endpoint()
        eps = list(getattr(self._session, "endpoints", []) or [])
        if ep is None and not eps:
            self.app.notify("No endpoint to measure", severity="warning", timeout=4)
            return
        self.app.push_screen(MetricsScreen(self.control, eps, current=ep))

    # ------------------------------------------------------------------ endpoints
    def favourite(self, n: int) -> None:
        digit = str(n)
        ep = self.favourites.get(digit)
        if ep is None:
            self.app.notify(f"No favourite {digit} yet: open the endpoint list (ctrl+e), tab to "
                            f"an endpoint and press {digit}", severity="warning", timeout=5)
            return
        self.watch_endpoint(ep, None)

    def watch_endpoint(self, endpoint_id: str, name: str | None, *, use: bool = True) -> bool:
        """Watch ``endpoint_id`` (its own health row) and, with ``use``, make it current.
        Returns True when it was not watched before."""
        dash = self._dash()
        session = self._session
        if dash is None or session is None:
            return False
        if name and name != endpoint_id:
            names = getattr(getattr(self.app, "backend", None), "names", None)
            if isinstance(names, dict):
                names.setdefault(endpoint_id, name)
        label = self.control.name_of(endpoint_id)
        add = getattr(session, "add_endpoint", None)
        try:
            if callable(add):
                new = bool(add(endpoint_id))
            else:
                new = endpoint_id not in session.endpoints
                if new:
                    session.endpoints.append(endpoint_id)
        except RpdashError as exc:
            self.app.notify(f"Cannot watch: {exc}", severity="error", timeout=6, markup=False)
            return False
        dash.show_watched(endpoint_id, label, use=use)
        if new:
            dash.flash(f"Watching {label}" + (" (now current)" if use else ""))
        elif use:
            dash.flash(f"Current endpoint: {label}")
        return new

    # ------------------------------------------------------------------ local dev worker
    def started(self) -> None:
        """The dashboard is up: say what the local dev worker lacks, once, plainly."""
        local_url = self.control.local_url
        if not local_url:
            return
        from rpdash.services.events import ConnState, HealthEvent

        self.app.notify(
            f"Local dev worker at {local_url}: a /run job runs when its status is read; "
            "there is no queue, cancel, retry, purge, /health, endpoint list, workers or logs "
            "(those keys are disabled; the palette says why).",
            title="Local dev worker mode", timeout=12, markup=False)
        self.app.run_worker(self._probe_local(local_url), group="ops-probe",
                            exit_on_error=False)
        dash = self._dash()
        session = self._session
        if dash is None or session is None:
            return
        for ep in list(session.endpoints):
            ev = HealthEvent(ep, ConnState.OK, None, None, None,
                             "local dev worker: no /health")
            dash.on_health(ev)

    async def _probe_local(self, local_url: str) -> None:
        from rpdash.api.local_worker import probe

        if not await probe(local_url):
            self.app.notify(f"No runpod-python dev worker answers at {local_url}: start one "
                            "with python handler.py --rp_serve_api (--rp_api_port N), then submit.",
                            severity="warning", timeout=12, markup=False)
