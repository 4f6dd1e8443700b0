"""The dashboard's operations side (issue 6): endpoint picker, favourites, workers, logs,
metrics, stuck-queue diagnosis, result expiry and the local dev worker's limits.

One :class:`Ops` per app, made when the session is up. It owns the control-plane client
(REST v2 / GraphQL, :class:`rpdash.api.control.ControlClient`), a short cache of worker
lists (diagnosis reads them at most every ``WORKERS_TTL`` seconds), the favourites (saved
to the config file) and the list of actions the API behind the session lacks (the local
dev worker has no cancel, retry, purge, health or control plane). Screens and the
:class:`~rpdash.tui.widgets.job_notes.JobNotes` widget call it; it never touches widgets
itself except through the app's documented entry points (``watch_endpoint``).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rpdash.core.errors import ConfigError, NotFound, RpdashError

if TYPE_CHECKING:
    from rpdash.api.control import ControlClient, EndpointInfo, WorkerList
    from rpdash.tui.app import RpdashApp

#: a worker list younger than this is reused (diagnosis of a queued job, 1 Hz notes)
WORKERS_TTL = 10.0
#: endpoint settings (min/max workers, scaler) change rarely
INFO_TTL = 300.0
#: how often finished jobs are checked for results not stored yet, and how many are
#: fetched per sweep (each is one status read)
SWEEP_S = 10.0
SWEEP_MAX = 4

NO_CONTROL_LOCAL = ("the local dev worker has no control plane (no endpoint list, workers or "
                    "logs): it runs one handler in process")


class Ops:
    """Control-plane access, caches and favourites for the dashboard."""

    def __init__(self, app: RpdashApp) -> None:
        self.app = app
        backend = app.backend
        self.local_url: str | None = getattr(backend, "local_url", None)
        self._control: ControlClient | None = getattr(backend, "control", None)
        self._own_control = self._control is None
        self.control_error: str | None = None
        self._keyed: dict[str, ControlClient] = {}
        self._workers: dict[str, tuple[float, Any]] = {}
        self._workers_failed: dict[str, float] = {}
        self._info: dict[str, tuple[float, Any]] = {}
        self.endpoint_infos: dict[str, EndpointInfo] = {}
        settings = app.settings
        self.favourites: dict[str, str] = dict(getattr(settings, "favourites", {}) or {})
        self.config_path: Path | None = None
        self.demo = bool(getattr(backend, "demo", False))
        if self.demo:  # the demo keeps its own config, as its own history
            from rpdash import paths
            from rpdash.config.saving import favourites_in

            self.config_path = paths.config_file(demo=True)
            self.favourites = favourites_in(self.config_path)
        #: action name -> why it is not available (local dev worker)
        self.unsupported: dict[str, str] = {}
        #: job ids whose result was fetched by the expiry guard (at most once each)
        self.fetched: dict[str, str] = {}
        self._notes_job: str | None = None
        self._swept_at = float("-inf")
        self._notes_at = 0.0
        if self.local_url:
            from rpdash.api.local_worker import LocalWorkerClient

            why = LocalWorkerClient.why_not
            self.unsupported = {
                "cancel": why("cancel"),
                "retry": why("retry"),
                "purge": why("purge_queue"),
                "pick_endpoint": NO_CONTROL_LOCAL,
                "show_workers": NO_CONTROL_LOCAL,
                "show_logs": NO_CONTROL_LOCAL,
            }

    # ------------------------------------------------------------------ control plane
    def _own_key(self, endpoint_id: str | None) -> Any:
        """The endpoint's own API key (``[endpoint_keys]``), or None."""
        settings = self.app.settings
        if endpoint_id is None or settings is None or getattr(self.app.backend, "demo_env", None):
            return None
        own_keys = getattr(settings, "own_keys", None)
        if own_keys is None:
            return None
        return own_keys([endpoint_id]).get(endpoint_id)

    def control(self, endpoint_id: str | None = None) -> ControlClient | None:
        """The control-plane client (the one with ``endpoint_id``'s own key when it has
        one), or None (``control_error`` says why)."""
        own = self._own_key(endpoint_id)
        if own is not None and self._control_base() is not None:
            secret = own.get_secret_value()
            if secret not in self._keyed:
                from rpdash.api.control import ControlClient

                url, insecure, timeout = self._control_base()  # type: ignore[misc]
                try:
                    self._keyed[secret] = ControlClient(own, url, timeout=timeout,
                                                        allow_insecure_http=insecure)
                except RpdashError as exc:
                    self.control_error = str(exc)
                    return None
            return self._keyed[secret]
        if self._control is not None:
            return self._control
        if self.local_url:
            self.control_error = NO_CONTROL_LOCAL
            return None
        from rpdash.api.control import ControlClient, control_url_for

        app = self.app
        backend = app.backend
        settings = app.settings
        demo_env = getattr(backend, "demo_env", None)
        try:
            if demo_env is not None:
                key: Any = demo_env.api_key
                url = control_url_for(demo_env.base_url)
                insecure = True
            elif settings is not None:
                key = settings.api_key
                url = os.environ.get("RUNPOD_API_BASE_URL", "").strip() or \
                    control_url_for(settings.base_url)
                insecure = bool(settings.allow_insecure_http)
            else:
                base = getattr(backend, "base_url", "")
                if not base:
                    self.control_error = "no control plane configured"
                    return None
                key, url, insecure = None, control_url_for(base), False
            timeout = float(getattr(settings, "request_timeout", 30.0) or 30.0)
            self._control = ControlClient(key, url, timeout=timeout, allow_insecure_http=insecure)
        except RpdashError as exc:
            self.control_error = str(exc)
            return None
        self.control_error = None
        return self._control

    def _control_base(self) -> tuple[str, bool, float] | None:
        """(control-plane URL, allow plain http, timeout) from the settings."""
        from rpdash.api.control import control_url_for

        settings = self.app.settings
        if settings is None or self.local_url:
            return None
        url = os.environ.get("RUNPOD_API_BASE_URL", "").strip() or control_url_for(settings.base_url)
        return url, bool(settings.allow_insecure_http), float(settings.request_timeout or 30.0)

    async def aclose(self) -> None:
        if self._control is not None and self._own_control:
            with contextlib.suppress(Exception):
                await self._control.aclose()
        for cc in self._keyed.values():
            with contextlib.suppress(Exception):
                await cc.aclose()

    async def list_endpoints(self) -> list[EndpointInfo]:
        """The account's queue endpoints; with ``[endpoint_keys]``, the endpoints the other
        keys see are added (an endpoint of another account shows up with its own key)."""
        cc = self.control()
        if cc is None:
            raise RpdashError(self.control_error or "no control plane")
        errors: list[RpdashError] = []
        eps: list[EndpointInfo] = []
        try:
            eps = await cc.list_endpoints()
        except RpdashError as exc:
            errors.append(exc)
        settings = self.app.settings
        extra_ids = {settings.endpoints.get(n, n) for n in (getattr(settings, "endpoint_keys", None) or {})} \
            if settings is not None else set()
        seen = {e.id for e in eps}
        for ep in sorted(extra_ids - seen):
            other = self.control(ep)
            if other is None or other is cc:
                continue
            try:
                eps += [e for e in await other.list_endpoints() if e.id not in seen]
            except RpdashError as exc:
                errors.append(exc)
            seen = {e.id for e in eps}
        if errors and not eps:
            raise errors[0]
        now = time.monotonic()
        for e in eps:
            self.endpoint_infos[e.id] = e
            self._info[e.id] = (now, e)
        return eps

    def cached_workers(self, endpoint_id: str) -> Any:
        hit = self._workers.get(endpoint_id)
        return hit[1] if hit is not None else None

    def workers_fresh(self, endpoint_id: str) -> bool:
        """True when the list was read, or failed to be read, in the last WORKERS_TTL s
        (a control plane that refuses is asked again only that often)."""
        now = time.monotonic()
        hit = self._workers.get(endpoint_id)
        failed = self._workers_failed.get(endpoint_id)
        return (hit is not None and now - hit[0] < WORKERS_TTL) or \
            (failed is not None and now - failed < WORKERS_TTL)

    async def workers(self, endpoint_id: str, *, fresh: bool = False) -> WorkerList:
        hit = self._workers.get(endpoint_id)
        if not fresh and hit is not None and time.monotonic() - hit[0] < WORKERS_TTL:
            return hit[1]
        cc = self.control(endpoint_id)
        if cc is None:
            raise RpdashError(self.control_error or "no control plane")
        try:
            wl = await cc.workers(endpoint_id)
        except RpdashError:
            self._workers_failed[endpoint_id] = time.monotonic()
            raise
        self._workers_failed.pop(endpoint_id, None)
        self._workers[endpoint_id] = (time.monotonic(), wl)
        return wl

    def cached_info(self, endpoint_id: str) -> Any:
        hit = self._info.get(endpoint_id)
        return hit[1] if hit is not None else None

    async def endpoint_info(self, endpoint_id: str) -> Any:
        hit = self._info.get(endpoint_id)
        if hit is not None and time.monotonic() - hit[0] < INFO_TTL:
            return hit[1]
        cc = self.control(endpoint_id)
        if cc is None:
            return None
        info = await cc.get_endpoint(endpoint_id)
        self._info[endpoint_id] = (time.monotonic(), info)
        self.endpoint_infos[endpoint_id] = info
        return info

    async def diagnosis_inputs(self, endpoint_id: str) -> tuple[Any, Any, str | None]:
        """(workers, endpoint info, problem) for :func:`rpdash.services.diagnosis.diagnose`;
        a control plane that cannot be read leaves both None and says why."""
        try:
            wl = await self.workers(endpoint_id)
        except RpdashError as exc:
            return None, self.cached_info(endpoint_id), str(exc)
        try:
            info = await self.endpoint_info(endpoint_id)
        except RpdashError:
            info = self.cached_info(endpoint_id)
        return wl, info, None

    # ------------------------------------------------------------------ favourites
    def favourite_of(self, endpoint_id: str) -> str | None:
        for k, v in sorted(self.favourites.items()):
            if v == endpoint_id:
                return k
        return None

    def _config_file(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        found = getattr(self.app.settings, "config_file", None)
        if found is not None:
            return Path(found)
        from rpdash import paths

        return paths.config_file()

    def set_favourite(self, digit: str, endpoint_id: str | None) -> Path:
        """Star ``endpoint_id`` as favourite ``digit`` (None clears it) and save it in the
        config file's ``[favourites]`` table (read, change, atomic write; the rest of the
        file is kept). An endpoint has one key: starring it again moves it."""
        from rpdash.config import read_config, write_config

        if digit not in tuple("0123456789"):
            raise ConfigError("favourite keys are 0 to 9")
        path = self._config_file()
        data = read_config(path)
        favs = {str(k): str(v) for k, v in dict(data.get("favourites") or {}).items()}
        if endpoint_id is None:
            favs.pop(digit, None)
        else:
            favs = {k: v for k, v in favs.items() if v != endpoint_id}
            favs[digit] = endpoint_id
        data["favourites"] = dict(sorted(favs.items()))
        written = write_config(path, data)
        self.favourites = dict(data["favourites"])
        settings = self.app.settings
        if settings is not None and not self.demo:
            with contextlib.suppress(Exception):
                settings.favourites = dict(self.favourites)
        return written

    # ------------------------------------------------------------------ result expiry
    async def fetch_result(self, endpoint_id: str, job_id: str) -> str:
        """Read a finished job's status once more to store its result before RunPod drops
        it. Returns what happened ("stored", "no output", "expired", or an error)."""
        session = self.app.session
        client = getattr(session, "client", None)
        book = getattr(session, "book", None)
        if client is None or book is None:
            return "cannot fetch: no client"
        try:
            job = await client.status(endpoint_id, job_id)
        except NotFound:
            book.change(job_id, expired=True)
            return "expired"
        except RpdashError as exc:
            return f"fetch failed: {exc}"
        rec = book.apply(job_id, job) or book.get(job_id)
        if rec is not None and rec.output is None and rec.error is None and not rec.chunk_count:
            return "no output"
        return "stored"

    # ------------------------------------------------------------------ UI entry points
    def _dash(self) -> Any:
        app = self.app
        dash = app.dashboard
        if dash is None or not dash.is_attached:
            return None
        return dash

    def current_endpoint(self) -> str | None:
        from rpdash.tui.widgets.health import HealthTable

        dash = self._dash()
        if dash is None:
            return None
        try:
            return dash.query_one(HealthTable).current
        except Exception:  # noqa: BLE001 - torn down
            return None

    def name_of(self, endpoint_id: str) -> str:
        names = getattr(self.app.backend, "names", {}) or {}
        if endpoint_id in names:
            return names[endpoint_id]
        info = self.endpoint_infos.get(endpoint_id)
        return info.name if info is not None else endpoint_id

    def started(self) -> None:
        """The dashboard is up: say what the local dev worker lacks, once, plainly."""
        if not self.local_url:
            return
        from rpdash.services.events import ConnState, HealthEvent

        self.app.notify(
            f"Local dev worker at {self.local_url}: a /run job runs when its status is read; "
            "there is no queue, cancel, retry, purge, /health, endpoint list, workers or logs "
            "(those keys are disabled; the palette says why).",
            title="Local dev worker mode", timeout=12, markup=False)
        self.app.run_worker(self._probe_local(), group="ops-probe", exit_on_error=False)
        dash = self._dash()
        session = self.app.session
        if dash is None or session is None:
            return
        for ep in list(session.endpoints):
            ev = HealthEvent(ep, ConnState.OK, None, None, None,
                             "local dev worker: no /health")
            dash.on_health(ev)

    async def _probe_local(self) -> None:
        from rpdash.api.local_worker import probe

        assert self.local_url is not None
        if not await probe(self.local_url):
            self.app.notify(f"No runpod-python dev worker answers at {self.local_url}: start one "
                            "with python handler.py --rp_serve_api (--rp_api_port N), then submit.",
                            severity="warning", timeout=12, markup=False)

    def sweep_results(self) -> list[str]:
        """Every 10 s: finished jobs whose result is not stored while RunPod still keeps
        it get one status read each (4 at a time), soonest to expire first, so a result is
        fetched before it goes even if nobody opens the job. Returns the ids started."""
        from rpdash.services.expiry import ResultState, result_remaining, result_state

        now_m = time.monotonic()
        if self.local_url or now_m - self._swept_at < SWEEP_S:
            return []
        self._swept_at = now_m
        session = self.app.session
        jobs = getattr(session, "jobs", None)
        if not jobs or getattr(session, "book", None) is None:
            return []
        now = self.app.clock.time()
        due: list[tuple[float, Any]] = []
        for rec in list(jobs.values()):
            if not rec.status.terminal or rec.job_id in self.fetched or rec.expired:
                continue
            if result_state(rec, now) is ResultState.AVAILABLE:
                due.append((result_remaining(rec, now) or 0.0, rec))
        due.sort(key=lambda d: d[0])
        started: list[str] = []
        for _, rec in due[:SWEEP_MAX]:
            self.fetched[rec.job_id] = "fetching it now"
            started.append(rec.job_id)

            async def fetch(ep: str = rec.endpoint_id, job_id: str = rec.job_id) -> None:
                self.fetched[job_id] = await self.fetch_result(ep, job_id)

            self.app.run_worker(fetch(), group="ops-fetch", exit_on_error=False)
        return started

    def tick(self, *, force: bool = True) -> None:
        """1 Hz (and, ``force=False``, when jobs change): the notes under the shown job,
        and the sweep of results not stored yet."""
        if force:
            self.sweep_results()
        from rpdash.tui.widgets.job_notes import JobNotes
        from rpdash.tui.widgets.output import OutputViewer

        dash = self._dash()
        if dash is None:
            return
        try:
            notes = dash.query_one(JobNotes)
            viewer = dash.query_one(OutputViewer)
        except Exception:  # noqa: BLE001 - no notes pane (tests, teardown)
            return
        rec = viewer.job
        # jobs change many times a second under load: recompute at most every 0.25 s
        # unless another job is shown
        now = time.monotonic()
        shown = rec.job_id if rec is not None else None
        if not force and shown == self._notes_job and now - self._notes_at < 0.25:
            return
        self._notes_job, self._notes_at = shown, now
        session = self.app.session
        if rec is not None and session is not None:
            rec = getattr(session, "jobs", {}).get(rec.job_id, rec)
        notes.update_for(rec, self, session)

    def _not_here(self, action: str) -> bool:
        why = self.unsupported.get(action)
        if why:
            self.app.notify(f"Not available: {why}", severity="warning", timeout=6, markup=False)
            return True
        return False

    def open_picker(self, query: str = "") -> None:
        from rpdash.tui.screens.picker import EndpointPicker

        if self._not_here("pick_endpoint") or self._dash() is None:
            return
        session = self.app.session
        watched = list(getattr(session, "endpoints", []) or [])

        def picked(result: tuple[str, str] | None) -> None:
            if result is not None:
                self.watch_endpoint(result[0], result[1])

        self.app.push_screen(EndpointPicker(self, watched=watched, query=query), picked)

    def _endpoint_or_say(self) -> str | None:
        ep = self.current_endpoint()
        if ep is None:
            self.app.notify("No current endpoint: pick one with ctrl+e", severity="warning",
                            timeout=4)
        return ep

    def open_workers(self) -> None:
        from rpdash.tui.screens.workers import WorkersScreen

        if self._not_here("show_workers") or self._dash() is None:
            return
        ep = self._endpoint_or_say()
        if ep is not None:
            self.app.push_screen(WorkersScreen(self, ep))

    def open_logs(self, worker_id: str | None = None, endpoint_id: str | None = None) -> None:
        from rpdash.tui.screens.logs import LogsScreen

        if self._not_here("show_logs") or self._dash() is None:
            return
        ep = endpoint_id or self._endpoint_or_say()
        if ep is not None:
            self.app.push_screen(LogsScreen(self, ep, worker_id=worker_id))

    def open_metrics(self) -> None:
        from rpdash.tui.screens.metrics import MetricsScreen

        if self._dash() is None:
            return
        ep = self.current_endpoint()
        session = self.app.session
        eps = list(getattr(session, "endpoints", []) or [])
        if ep is None and not eps:
            self.app.notify("No endpoint to measure", severity="warning", timeout=4)
            return
        self.app.push_screen(MetricsScreen(self, eps, current=ep))

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
        from rpdash.tui.widgets.health import HealthTable
        from rpdash.tui.widgets.jobs import JobTable
        from rpdash.tui.widgets.submit import SubmitForm

        dash = self._dash()
        session = self.app.session
        if dash is None or session is None:
            return False
        if name and name != endpoint_id:
            names = getattr(self.app.backend, "names", None)
            if isinstance(names, dict):
                names.setdefault(endpoint_id, name)
        label = self.name_of(endpoint_id)
        if label != endpoint_id:
            dash.names.setdefault(endpoint_id, label)
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
        health = dash.query_one(HealthTable)
        health.add_endpoint(endpoint_id, dash.names.get(endpoint_id, endpoint_id))
        with contextlib.suppress(Exception):
            form = dash.query_one(SubmitForm)
            if label != endpoint_id:
                form._names.setdefault(endpoint_id, label)
            dash.query_one(JobTable).set_names(dash.names)
        if use:
            dash.use_endpoint(endpoint_id)
            if endpoint_id in health.views:
                health.move_cursor(row=list(health.views).index(endpoint_id), animate=False)
        if new:
            self.app.notify(f"Watching {label}" + (" (now current)" if use else ""),
                            timeout=3, markup=False)
        elif use:
            self.app.notify(f"Current endpoint: {label}", timeout=2, markup=False)
        return new
