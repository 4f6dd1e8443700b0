"""``ControlClient``: the one object callers use for the control plane (see the package
docstring). It is the connection, with the endpoint listing and the log tails on top."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import httpx
from pydantic import SecretStr

from rpdash.api.control.account_cap import AccountCap, WorkerCapRefused
from rpdash.api.control.connection import DEFAULT_CONTROL_URL, ControlConnection
from rpdash.api.control.listing import EndpointListing
from rpdash.api.control.loglines import LogLine
from rpdash.api.control.models import EndpointInfo, WorkerList
from rpdash.api.control.scaling import EndpointUpdater, ScaleChange
from rpdash.api.control.tail import TAIL_DEFAULT, LogTailer
from rpdash.core.clock import Clock

__all__ = ["ControlClient"]


class ControlClient(ControlConnection):
    """Async client of RunPod's control plane at ``base_url`` (an origin, no path).

    ``graphql_url`` overrides ``{base_url}/graphql``; ``graphql_fallback=False`` turns the
    fallback off. ``transport`` replaces the network (tests)."""

    def __init__(
        self,
        api_key: str | SecretStr | None,
        base_url: str = DEFAULT_CONTROL_URL,
        *,
        graphql_url: str | None = None,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        clock: Clock | None = None,
        max_retries: int = 2,
        graphql_fallback: bool = True,
        max_streams: int = 32,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_key, base_url, graphql_url=graphql_url, timeout=timeout,
                         allow_insecure_http=allow_insecure_http, clock=clock,
                         max_retries=max_retries, max_streams=max_streams,
                         transport=transport)  # fmt: skip
        self._listing = EndpointListing(self, graphql_fallback=graphql_fallback)
        self._tailer = LogTailer(self, self._listing.workers, max_streams=self.max_streams)
        self._updater = EndpointUpdater(self, self._listing.get_endpoint, graphql_fallback=graphql_fallback)
        #: the account's worker cap: set ``configured`` from the settings; a refused
        #: update that names the cap teaches ``learned`` (kept for this client's life)
        self.account_cap = AccountCap()

    @property
    def graphql_fallback(self) -> bool:
        return self._listing.graphql_fallback

    @property
    def last_source(self) -> str | None:
        """Which API answered the last endpoint list ("rest" or "graphql")."""
        return self._listing.last_source

    @property
    def fallback_reason(self) -> str | None:
        """Why REST v2 was not used for the last endpoint list (None when it was)."""
        return self._listing.fallback_reason

    async def list_endpoints(self, *, queue_only: bool = True) -> list[EndpointInfo]:
        """Every endpoint of the account (queue-based only by default), REST v2 first,
        GraphQL when REST v2 is not available."""
        return await self._listing.list_endpoints(queue_only=queue_only)

    async def get_endpoint(self, endpoint_id: str) -> EndpointInfo:
        """One endpoint by id (REST v2; the GraphQL list when REST v2 is not available)."""
        return await self._listing.get_endpoint(endpoint_id)

    async def update_endpoint(self, endpoint_id: str, *, workers_min: int | None = None,
                              workers_max: int | None = None, idle_timeout: int | None = None,
                              scaler_type: str | None = None,
                              scaler_value: int | None = None) -> EndpointInfo:  # fmt: skip
        """Change the endpoint's scaling (None = leave as is) and return it as the server now
        has it: REST v2 PATCH (sparse), GraphQL saveEndpoint when REST v2 lacks the route.
        InvalidInput (nothing sent) for bad values; UpdateUncertain when the answer was lost
        (see rpdash.api.control.scaling); WorkerCapRefused when it goes beyond the account's
        worker cap (then ``account_cap`` knows it). ``update_source`` says which API applied it."""
        change = ScaleChange(workers_min, workers_max, idle_timeout, scaler_type, scaler_value)
        try:
            return await self._updater.update(endpoint_id, change)
        except WorkerCapRefused as exc:
            self.account_cap.learn(exc.cap)
            raise

    @property
    def update_source(self) -> str | None:
        """Which API applied the last update ("rest" or "graphql")."""
        return self._updater.last_source

    async def workers(self, endpoint_id: str) -> WorkerList:
        """The endpoint's active workers and their summary (REST v2 only)."""
        return await self._listing.workers(endpoint_id)

    def worker_logs(
        self,
        endpoint_id: str,
        worker_id: str,
        *,
        tail: int = TAIL_DEFAULT,
        since: str | None = None,
        source: str | None = None,
        follow: bool = True,
        last_event_id: str | None = None,
        idle: float = 2.0,
        backlog_timeout: float = 15.0,
    ) -> AsyncIterator[LogLine]:
        """Tail one worker's log: the last ``tail`` lines (or those since ``since``, RFC
        3339; or those after ``last_event_id``), then, with ``follow``, new lines as they
        come, resuming with ``Last-Event-ID`` across drops. Ends when the worker is gone.
        Errors of the first connection are raised (NotFound for an unknown worker)."""
        return self._tailer.worker_logs(
            endpoint_id, worker_id, tail=tail, since=since, source=source, follow=follow,
            last_event_id=last_event_id, idle=idle, backlog_timeout=backlog_timeout,
        )  # fmt: skip

    def endpoint_logs(
        self,
        endpoint_id: str,
        *,
        tail: int = TAIL_DEFAULT,
        since: str | None = None,
        source: str | None = None,
        follow: bool = True,
        idle: float = 2.0,
        refresh: float = 15.0,
        backlog_timeout: float = 15.0,
        worker_ids: Sequence[str] | None = None,
    ) -> AsyncIterator[LogLine]:
        """Tail every worker of an endpoint as one log (merged by time, then live lines
        as they come). ``worker_ids`` limits it to those workers (no discovery then)."""
        return self._tailer.endpoint_logs(
            endpoint_id, tail=tail, since=since, source=source, follow=follow, idle=idle,
            refresh=refresh, backlog_timeout=backlog_timeout, worker_ids=worker_ids,
        )  # fmt: skip
