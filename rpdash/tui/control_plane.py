"""The control plane as the dashboard reads it: the account's endpoints, their workers and
settings (REST v2 / GraphQL, :class:`rpdash.api.control.ControlClient`), with short caches,
and what the API behind the session lacks.

One :class:`ControlPlane` per app. Diagnosis reads worker lists at most every
``WORKERS_TTL`` seconds and endpoint settings every ``INFO_TTL``. The settings of each
watched endpoint (its GPU: the health row's cost) are fetched once it gets its first health
answer and again every ``INFO_TTL`` while health answers come (:meth:`ControlPlane.want_info`,
an asyncio task: never on the UI's path, nothing while paused); a failure is one quiet
line through ``note`` (once until a fetch succeeds again). An endpoint with its own
API key (``[endpoint_keys]``) gets a client of its own. The local dev worker has no
control plane (and no cancel, retry or purge): :attr:`ControlPlane.unsupported` says why,
for the palette, the keys and the notices. No Textual here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rpdash.core.errors import RpdashError

if TYPE_CHECKING:
    from rpdash.api.control import ControlClient, EndpointInfo, WorkerList

#: a worker list younger than this is reused (diagnosis of a queued job, 1 Hz notes)
WORKERS_TTL = 10.0
#: endpoint settings (min/max workers, scaler) change rarely
INFO_TTL = 300.0

NO_CONTROL_LOCAL = ("the local dev worker has no control plane (no endpoint list, workers or "
                    "logs): it runs one handler in process")


class ControlPlane:
    """Control-plane clients and their caches, and the actions the session's API lacks."""

    def __init__(self, settings: Any, backend: Any) -> None:
        self.settings = settings
        self.backend = backend
        self.local_url: str | None = getattr(backend, "local_url", None)
        self._control: ControlClient | None = getattr(backend, "control", None)
        self._own_control = self._control is None
        self.control_error: str | None = None
        self._keyed: dict[str, ControlClient] = {}
        self._workers: dict[str, tuple[float, Any]] = {}
        self._workers_failed: dict[str, float] = {}
        self._info: dict[str, tuple[float, Any]] = {}
        self.endpoint_infos: dict[str, EndpointInfo] = {}
        #: settings fetches under way (want_info), and when one last failed
        self._info_tasks: dict[str, asyncio.Task[Any]] = {}
        self._info_failed: dict[str, float] = {}
        #: a quiet line for the user (the app's flash line): settings that cannot be read
        self.note: Callable[[str], None] | None = None
        self._noted = False
        #: action name -> why it is not available (local dev worker)
        self.unsupported: dict[str, str] = {}
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

    def _own_key(self, endpoint_id: str | None) -> Any:
        """The endpoint's own API key (``[endpoint_keys]``), or None."""
        settings = self.settings
        if endpoint_id is None or settings is None or getattr(self.backend, "demo_env", None):
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

        backend = self.backend
        settings = self.settings
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

        settings = self.settings
        if settings is None or self.local_url:
            return None
        url = os.environ.get("RUNPOD_API_BASE_URL", "").strip() or control_url_for(settings.base_url)
        return url, bool(settings.allow_insecure_http), float(settings.request_timeout or 30.0)

    async def aclose(self) -> None:
        await self.close_info_tasks()
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
        settings = self.settings
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

    def want_info(self, endpoint_id: str) -> None:
        """Fetch the endpoint's settings in the background when they are missing or older
        than INFO_TTL (a failed fetch is tried again INFO_TTL later). Needs a running loop."""
        if endpoint_id in self._info_tasks or self.local_url:
            return
        now = time.monotonic()
        hit = self._info.get(endpoint_id)
        failed = self._info_failed.get(endpoint_id)
        if (hit is not None and now - hit[0] < INFO_TTL) or (failed is not None and now - failed < INFO_TTL):
            return
        try:
            task = asyncio.get_running_loop().create_task(self._fetch_info(endpoint_id))
        except RuntimeError:
            return  # no loop (a test calling the feed directly)
        self._info_tasks[endpoint_id] = task
        task.add_done_callback(lambda _t: self._info_tasks.pop(endpoint_id, None))

    async def _fetch_info(self, endpoint_id: str) -> None:
        try:
            info = await self.endpoint_info(endpoint_id)  # stale or missing: read again
        except RpdashError as exc:
            self._info_failed[endpoint_id] = time.monotonic()
            if self.note is not None and not self._noted:
                self._noted = True
                with contextlib.suppress(Exception):
                    self.note(f"Endpoint settings not read ({exc}): no cost estimate until they are")
            return
        except Exception:  # noqa: BLE001 - a background read never stops the app
            info = None
        if info is None:  # no control plane here (said where it matters): not a failure
            self._info_failed[endpoint_id] = time.monotonic()
            return
        self._info_failed.pop(endpoint_id, None)
        self._noted = False

    async def close_info_tasks(self) -> None:
        for task in list(self._info_tasks.values()):
            task.cancel()
        for task in list(self._info_tasks.values()):
            with contextlib.suppress(BaseException):
                await task

    def remember(self, info: EndpointInfo) -> None:
        """An endpoint as just read or changed (scale, drain, restore): the cache has it."""
        self._info[info.id] = (time.monotonic(), info)
        self.endpoint_infos[info.id] = info

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

    def account_cap(self) -> int | None:
        """The account's worker cap: learned from RunPod's refusal of a scale update (any
        client of this session), else the ``account_worker_cap`` setting, else None."""
        for cc in (self._control, *self._keyed.values()):
            learned = getattr(getattr(cc, "account_cap", None), "learned", None)
            if learned is not None:
                return learned
        return getattr(self.settings, "account_worker_cap", None)

    def name_of(self, endpoint_id: str) -> str:
        names = getattr(self.backend, "names", {}) or {}
        if endpoint_id in names:
            return names[endpoint_id]
        info = self.endpoint_infos.get(endpoint_id)
        return info.name if info is not None else endpoint_id
