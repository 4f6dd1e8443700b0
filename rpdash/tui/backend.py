"""What the dashboard runs on: the Session and its client, store and (for --demo) simulator.

The UI talks to a :class:`SessionLike` only; a :class:`Backend` builds one and tears it
down. ``LiveBackend`` builds the real thing from Settings (optionally starting the
in-process demo simulator first); tests and snapshots pass a ``StaticBackend`` around a
fake session, so the widgets never know the difference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

from rpdash.core.errors import RpdashError
from rpdash.core.redact import mask

if TYPE_CHECKING:  # (pydantic models: not needed before the first frame)
    from rpdash.config import Settings
    from rpdash.core.models import Policy, PurgeResult
    from rpdash.core.records import JobRecord
    from rpdash.services.events import HealthEvent, Sink


class SessionLike(Protocol):
    """The part of ``rpdash.services.session.Session`` the UI uses."""

    jobs: dict[str, JobRecord]
    health: dict[str, HealthEvent]
    endpoints: list[str]
    readonly: bool
    paused: bool

    async def submit(self, endpoint_id: str, input: str | dict, *, mode: str = "run",
                     policy: Policy | None = None, webhook: str | None = None) -> JobRecord: ...

    async def cancel(self, job_ids: list[str]) -> list[tuple[str, Any]]: ...

    async def retry(self, job_id: str) -> JobRecord: ...

    async def purge(self, endpoint_id: str) -> PurgeResult: ...

    def watch(self, job_id: str, endpoint_id: str) -> JobRecord: ...

    def follow(self, job_id: str) -> None: ...

    def unfollow(self, job_id: str) -> None: ...

    def chunks(self, job_id: str) -> list[Any]: ...

    def set_visible(self, job_ids: Iterable[str]) -> None: ...

    def set_health_active(self, active: bool) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def refresh_now(self) -> None: ...

    async def stop(self) -> None: ...


class Backend(Protocol):
    """Builds the session for the app and tears everything down at exit."""

    demo: bool
    base_url: str
    #: endpoint id -> display name
    names: dict[str, str]
    #: why the job history is not being saved (None: it is); shown by the dashboard
    history_problem: str | None

    async def start(self, sink: Sink) -> SessionLike: ...

    def recent_inputs(self, limit: int = 20) -> list[dict[str, Any]]: ...

    async def stop(self) -> None: ...


class StaticBackend:
    """A backend around a ready session (tests, snapshots)."""

    def __init__(self, session: SessionLike, *, names: dict[str, str] | None = None,
                 demo: bool = False, base_url: str = "", recent: list[dict] | None = None,
                 start_session: bool = False) -> None:
        self.session = session
        self.names = dict(names or {})
        self.demo = demo
        self.base_url = base_url
        self.history_problem: str | None = None
        self._recent = list(recent or [])
        self._start_session = start_session

    async def start(self, sink: Sink) -> SessionLike:
        attach = getattr(self.session, "attach_sink", None)
        if callable(attach):
            attach(sink)
        if self._start_session:
            await self.session.start()  # type: ignore[attr-defined]
        return self.session

    def recent_inputs(self, limit: int = 20) -> list[dict[str, Any]]:
        store = getattr(self.session, "store", None)
        if store is not None and hasattr(store, "recent_inputs"):
            return store.recent_inputs(limit)
        return self._recent[:limit]

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.session.stop()


#: the endpoint id shown for a local dev worker (it has no endpoint id of its own)
LOCAL_ENDPOINT = "local"


#: Retries inside the dashboard's client (the services retry on their own; see start()).
DASHBOARD_MAX_RETRIES = 1


class LiveBackend:
    """RunPodClient + HistoryStore + Session built from Settings; ``demo`` first starts the
    simulator in-process (services.demo.start_demo) and runs DemoTraffic against it."""

    def __init__(self, settings: Settings, *, endpoints: list[str] | None = None,
                 demo: bool = False, local_worker: str | None = None,
                 scenario: str | None = None, pickup: str | None = None) -> None:
        self.settings = settings
        self.demo = demo
        #: the --demo simulator's scenario (default "demo") and pickup order
        self.demo_world = {"scenario": scenario or "demo", "pickup": pickup}
        #: URL of a local dev worker (``--local-worker``): LocalWorkerClient, no RunPod
        self.local_url = local_worker.rstrip("/") if local_worker else None
        self._endpoints = endpoints
        self.base_url = "" if demo else settings.base_url
        #: the API key in use, masked for the header (``rp_…a1b2``)
        self.key_hint = ""
        self.names: dict[str, str] = {v: k for k, v in settings.endpoints.items()}
        self.client: Any = None
        self.store: Any = None
        self.session: Any = None
        self.demo_env: Any = None
        self.traffic: Any = None
        self._traffic_task: asyncio.Task[Any] | None = None
        self.history_problem: str | None = None

    def _open_store(self, prefix: str = "") -> Any:
        """The history file (named ``prefix`` + the usual name), or, when it cannot be
        opened (no data directory, unwritable directory, corrupt file, ...), a store in
        memory so the dashboard still runs; ``history_problem`` then says what is wrong,
        and the dashboard shows it."""
        from rpdash.store.history import HistoryStore

        try:
            path = self.settings.history_file(demo=self.demo)
            store = HistoryStore(path.with_name(prefix + path.name))
        except Exception as exc:  # noqa: BLE001 - StoreError, or an OSError from the dirs
            reason = str(exc) if isinstance(exc, RpdashError) else f"{type(exc).__name__}: {exc}"
            self.history_problem = (f"job history is not being saved ({reason}); this "
                                    "session keeps it in memory only")
            return HistoryStore(None)
        problem = getattr(store, "problem", None)
        if problem is not None and not getattr(store, "writable", True):
            self.history_problem = (f"job history is not being saved ({problem}); new jobs "
                                    "are kept in memory only")
        return store

    def endpoints(self) -> list[str]:
        if self._endpoints:
            return list(dict.fromkeys(self._endpoints))
        return self.settings.watched_endpoints()

    def missing(self) -> tuple[bool, bool]:
        """(has_key, has_endpoint) for the setup screen."""
        if self.demo or self.local_url:
            return True, True
        return self.settings.api_key is not None, bool(self.endpoints())

    async def start(self, sink: Sink) -> SessionLike:
        from rpdash.api.client import RunPodClient
        from rpdash.services.session import Session

        s = self.settings
        api_key: Any = s.api_key
        base_url = s.base_url
        endpoints = self.endpoints()
        allow_http = s.allow_insecure_http
        if self.local_url:
            return await self._start_local(sink)
        if self.demo:
            from rpdash.services.demo import start_demo

            self.demo_env = await asyncio.to_thread(start_demo, **self.demo_world)
            api_key = self.demo_env.api_key
            base_url = self.demo_env.base_url
            endpoints = list(self.demo_env.endpoints)
            self.base_url = base_url
            allow_http = True
            if getattr(s, "account_worker_cap", None) is None:
                # the simulated account's cap is ours to know (a real account's is not
                # readable: the setting, or learnt from a refused scale-up)
                with contextlib.suppress(Exception):
                    s.account_worker_cap = self.demo_env.sim.engine.account_max_workers

        def on_retry(exc: Any, delay: float, n: int, most: int) -> None:
            # the client retries transient failures itself: say so while it waits
            from rpdash.services.events import ProblemEvent

            with contextlib.suppress(Exception):
                label = getattr(exc, "label", "error")
                sink(ProblemEvent(f"{label}, retrying in {max(1, round(delay))} s "
                                  f"(retry {n} of {most}): {exc}",
                                  endpoint_id=getattr(exc, "endpoint_id", None)))

        raw = api_key.get_secret_value() if hasattr(api_key, "get_secret_value") else api_key
        self.key_hint = "" if self.demo else mask(raw)
        # One quick retry in the client: the services keep retrying on their own (the
        # health poller and the tracker back off, stream followers resume), and a problem
        # must show on screen within a second or two, not after four silent backoffs.
        self.client = RunPodClient(api_key, base_url, timeout=s.request_timeout,
                                   allow_insecure_http=allow_http, on_retry=on_retry,
                                   max_retries=DASHBOARD_MAX_RETRIES)
        if not self.demo:
            self.client = self._keyed(self.client, base_url, allow_http)
        # an incident drill keeps its own history: the jobs of another scenario's simulator
        # (gone now) would only say "endpoint not found" here
        scenario = self.demo_world["scenario"] if self.demo else "demo"
        self.store = self._open_store(prefix="" if scenario == "demo" else f"{scenario}-")
        retention = getattr(s, "retention_seconds", None)
        if retention:
            with contextlib.suppress(Exception):
                self.store.prune(retention)
        self.session = Session(
            client=self.client,
            store=self.store,
            endpoints=endpoints,
            sink=sink,
            health_interval=s.health_interval,
            status_interval=s.status_interval,
            readonly=s.readonly,
            metrics_retention_s=retention,  # health samples pruned with the history
        )
        await self.session.start()
        if self.demo:
            from rpdash.services.demo import DemoTraffic

            self.traffic = DemoTraffic(self.session, getattr(self.demo_env, "clock", None))
            self._traffic_task = asyncio.create_task(self.traffic.run())
        return self.session

    def _keyed(self, default: Any, base_url: str, allow_http: bool) -> Any:
        """Endpoints with a key of their own (``[endpoint_keys]``) get a client of their
        own behind one KeyedClient; without any, the default client as it is."""
        s = self.settings
        keys = getattr(s, "endpoint_keys", None) or {}
        if not keys:
            return default
        from rpdash.api.client import RunPodClient
        from rpdash.api.keyed import KeyedClient

        ids = {s.endpoints.get(name, name) for name in keys}
        by_key: dict[str, Any] = {}
        routes: dict[str, Any] = {}
        for ep, key in s.own_keys(sorted(ids)).items():
            secret = key.get_secret_value()
            if secret not in by_key:
                by_key[secret] = RunPodClient(key, base_url, timeout=s.request_timeout,
                                              allow_insecure_http=allow_http)
            routes[ep] = by_key[secret]
        return KeyedClient(default, routes) if routes else default

    async def _start_local(self, sink: Sink) -> SessionLike:
        """``--local-worker``: the dev server has one handler, no auth, no /health (no
        pollers), no queue; jobs run when their status is read. Its jobs go to a history
        file of their own next to the usual one."""
        from rpdash.api.local_worker import LocalWorkerClient
        from rpdash.services.session import Session

        s = self.settings
        assert self.local_url is not None
        self.base_url = self.local_url
        self.client = LocalWorkerClient(self.local_url)
        self.names.setdefault(LOCAL_ENDPOINT, "local dev worker")
        self.store = self._open_store(prefix="local-")
        self.session = Session(client=self.client, store=self.store, endpoints=[LOCAL_ENDPOINT],
                               sink=sink, health_interval=s.health_interval,
                               status_interval=s.status_interval, readonly=s.readonly,
                               poll_health=False)
        await self.session.start()
        return self.session

    def recent_inputs(self, limit: int = 20) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        return self.store.recent_inputs(limit)

    async def stop(self) -> None:
        if self.traffic is not None:
            with contextlib.suppress(Exception):
                self.traffic.stop()
        if self._traffic_task is not None:
            self._traffic_task.cancel()
            with contextlib.suppress(BaseException):
                await self._traffic_task
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.stop()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()
        if self.demo_env is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.demo_env.stop)
