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

from rpdash.core.models import Policy, PurgeResult
from rpdash.core.records import JobRecord
from rpdash.services.events import HealthEvent, Sink

if TYPE_CHECKING:
    from rpdash.config import Settings


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


class LiveBackend:
    """RunPodClient + HistoryStore + Session built from Settings; ``demo`` first starts the
    simulator in-process (services.demo.start_demo) and runs DemoTraffic against it."""

    def __init__(self, settings: Settings, *, endpoints: list[str] | None = None,
                 demo: bool = False) -> None:
        self.settings = settings
        self.demo = demo
        self._endpoints = endpoints
        self.base_url = "" if demo else settings.base_url
        self.names: dict[str, str] = {v: k for k, v in settings.endpoints.items()}
        self.client: Any = None
        self.store: Any = None
        self.session: Any = None
        self.demo_env: Any = None
        self.traffic: Any = None
        self._traffic_task: asyncio.Task[Any] | None = None

    def endpoints(self) -> list[str]:
        if self._endpoints:
            return list(dict.fromkeys(self._endpoints))
        return self.settings.watched_endpoints()

    def missing(self) -> tuple[bool, bool]:
        """(has_key, has_endpoint) for the setup screen."""
        if self.demo:
            return True, True
        return self.settings.api_key is not None, bool(self.endpoints())

    async def start(self, sink: Sink) -> SessionLike:
        from rpdash.api.client import RunPodClient
        from rpdash.services.session import Session
        from rpdash.store.history import HistoryStore

        s = self.settings
        api_key: Any = s.api_key
        base_url = s.base_url
        endpoints = self.endpoints()
        allow_http = s.allow_insecure_http
        if self.demo:
            from rpdash.services.demo import start_demo

            self.demo_env = await asyncio.to_thread(start_demo)
            api_key = self.demo_env.api_key
            base_url = self.demo_env.base_url
            endpoints = list(self.demo_env.endpoints)
            self.base_url = base_url
            allow_http = True
        self.client = RunPodClient(api_key, base_url, timeout=s.request_timeout,
                                   allow_insecure_http=allow_http)
        self.store = HistoryStore(s.history_file(demo=self.demo))
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
        )
        await self.session.start()
        if self.demo:
            from rpdash.services.demo import DemoTraffic

            self.traffic = DemoTraffic(self.session, getattr(self.demo_env, "clock", None))
            self._traffic_task = asyncio.create_task(self.traffic.run())
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
