"""Changing an endpoint's scaling: min/max workers, idle timeout, scaler (runpod-api.md 10.4).

REST v2 ``PATCH /v2/serverless/{id}`` first. It is sparse: only what is asked is sent,
explicit zeros included (runpodctl's ``omitempty`` drops ``--workers-min 0``; we do not).
``scaling`` needs its type, so a new scaler value alone means reading the endpoint first to
learn the type (as RunPod's MCP server does). The 200 answer is the whole endpoint: its
values are returned, so the caller shows what the server now has.

When REST v2 answers 404, 405 or 501 for the route, GraphQL ``saveEndpoint`` with ``id``.
It is *not* sparse (omitted scaling fields are reset to defaults), so the endpoint is read
first through GraphQL and every field read is echoed back, with only the asked ones changed.

Checked before anything is sent (``InvalidInput``, nothing sent): whole numbers >= 0, idle
timeout 1-3600 s, scaler value >= 1, min <= max (RunPod's own answer to min > max is
undocumented; when only one of them is given, the endpoint is read to compare), no idle
timeout with the REQUEST_COUNT scaler (REST v2 refuses it).

An update is never sent twice blindly. A 429 (refused before anything changed) is waited
out and sent again, like a read. A connection dropped after the request left, a timeout, a
5xx or an unreadable 2xx answer may have been applied: the endpoint is read once more and
:class:`UpdateUncertain` says "may have been applied" with the values read.

A refusal whose text names the account's worker cap ("Your worker concurrency cannot go
beyond the maximum limit of (20)...", REST or GraphQL alike) becomes
:class:`~rpdash.api.control.account_cap.WorkerCapRefused` carrying the number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from rpdash.api.control.account_cap import WorkerCapRefused, cap_in
from rpdash.api.control.connection import ControlConnection, backoff, check_id, graphql_message
from rpdash.api.control.models import EndpointInfo
from rpdash.core.errors import (
    ApiError,
    AuthError,
    BadResponse,
    InvalidInput,
    NotFound,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)

__all__ = ["SCALER_TYPES", "EndpointUpdater", "ScaleChange", "UpdateUncertain", "scale_text",
           "scaler_value_of"]

SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
IDLE_TIMEOUT_RANGE = (1, 3600)

#: every endpoint field saveEndpoint takes that the endpoint list gives back (echoed)
GRAPHQL_FULL_QUERY = (
    "query Endpoints { myself { endpoints { id name type templateId gpuIds gpuCount "
    "workersMin workersMax idleTimeout scalerType scalerValue executionTimeoutMs "
    "flashBootType locations networkVolumeId networkVolumeIds { networkVolumeId } "
    "minCudaVersion } } }"
)
_INPUT_FIELDS = ("id", "name", "type", "templateId", "gpuIds", "gpuCount", "workersMin",
                 "workersMax", "idleTimeout", "scalerType", "scalerValue", "executionTimeoutMs",
                 "flashBootType", "locations", "networkVolumeId", "networkVolumeIds",
                 "minCudaVersion")  # fmt: skip
SAVE_MUTATION = (
    "mutation SaveEndpoint($input: EndpointInput!) { saveEndpoint(input: $input) { id name "
    "type templateId gpuIds gpuCount workersMin workersMax idleTimeout scalerType scalerValue "
    "executionTimeoutMs locations version } }"
)
_FALLBACK_CODES = frozenset({404, 405, 501})


class UpdateUncertain(ApiError):
    """The update may or may not have been applied (the answer was lost). ``endpoint`` is
    what a read just after says (None when that read failed too)."""

    label = "unknown outcome"

    def __init__(self, message: str, endpoint: EndpointInfo | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint


@dataclass(frozen=True, slots=True)
class ScaleChange:
    """What to change; None = leave as it is."""

    workers_min: int | None = None
    workers_max: int | None = None
    idle_timeout: int | None = None
    scaler_type: str | None = None
    scaler_value: int | float | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.workers_min, self.workers_max, self.idle_timeout,
                                       self.scaler_type, self.scaler_value))  # fmt: skip

    def checked(self) -> ScaleChange:
        """This change with the scaler type in capitals; InvalidInput if out of range."""
        for name, v in (("min workers", self.workers_min), ("max workers", self.workers_max),
                        ("idle timeout", self.idle_timeout), ("scaler value", self.scaler_value)):
            if v is None:
                continue
            ok = isinstance(v, int) and not isinstance(v, bool)
            if name == "scaler value" and isinstance(v, float) and math.isfinite(v):
                ok = True  # a queue delay may be a fraction of a second (>= 0.5)
            if not ok or v < 0:
                raise InvalidInput(f"{name} must be a whole number >= 0, not {v!r}")
        if self.empty:
            raise InvalidInput("nothing to change: give min or max workers, idle timeout or scaler")
        lo, hi = IDLE_TIMEOUT_RANGE
        if self.idle_timeout is not None and not lo <= self.idle_timeout <= hi:
            raise InvalidInput(f"idle timeout must be {lo} to {hi} seconds, not {self.idle_timeout}")
        if self.scaler_value is not None and self.scaler_value < (0.5 if isinstance(self.scaler_value, float) else 1):
            raise InvalidInput("scaler value must be at least 1")
        kind = self.scaler_type
        if kind is not None:
            kind = str(kind).strip().upper().replace("-", "_")
            if kind not in SCALER_TYPES:
                raise InvalidInput(f"scaler must be QUEUE_DELAY or REQUEST_COUNT, not {self.scaler_type!r}")
        if kind == "REQUEST_COUNT" and self.idle_timeout is not None:
            raise InvalidInput("an endpoint scaling on REQUEST_COUNT has no idle timeout: leave it out")
        if self.workers_min is not None and self.workers_max is not None:
            _check_order(self.workers_min, self.workers_max)
        return ScaleChange(self.workers_min, self.workers_max, self.idle_timeout, kind, self.scaler_value)

    def matches(self, ep: EndpointInfo) -> bool:
        """Whether ``ep`` shows every value this change asks for."""
        pairs = ((self.workers_min, ep.workers_min), (self.workers_max, ep.workers_max),
                 (self.idle_timeout, ep.idle_timeout_s), (self.scaler_type, ep.scaler_type),
                 (self.scaler_value, scaler_value_of(ep)))  # fmt: skip
        return all(want is None or want == got for want, got in pairs)


def scaler_value_of(ep: EndpointInfo) -> int | float | None:
    """The scaler's value as sent: REST v2's ``queueDelay`` may be a fraction (>= 0.5 s),
    which ``EndpointInfo.scaler_value`` (a whole number) cuts."""
    scaling = ep.raw.get("scaling") if isinstance(ep.raw, dict) else None
    if isinstance(scaling, dict):
        v = scaling.get("requestCount" if scaling.get("type") == "REQUEST_COUNT" else "queueDelay")
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v:
            return int(v) if float(v).is_integer() else v
    return ep.scaler_value


def scale_text(ep: EndpointInfo) -> str:
    """``workers 0-3, idle 5 s, QUEUE_DELAY 4``: an endpoint's scaling in one line."""

    def n(v: int | float | None) -> str:
        return "?" if v is None else f"{v:g}"

    parts = [f"workers {n(ep.workers_min)}-{n(ep.workers_max)}"]
    if ep.idle_timeout_s is not None:
        parts.append(f"idle {ep.idle_timeout_s} s")
    if ep.scaler_type:
        parts.append(f"{ep.scaler_type} {n(scaler_value_of(ep))}")
    return ", ".join(parts)


def _check_order(lo: int, hi: int) -> None:
    if lo > hi:
        raise InvalidInput(f"min workers ({lo}) must not be more than max workers ({hi})")


class EndpointUpdater:
    """Sends scaling updates over ``conn``; ``read`` is the endpoint reader (REST v2 with its
    GraphQL fallback). Remembers which API applied the last update."""

    def __init__(self, conn: ControlConnection, read: Any, *, graphql_fallback: bool = True) -> None:
        self._conn = conn
        self._read = read
        self.graphql_fallback = graphql_fallback
        #: "rest" or "graphql": which API took the last update
        self.last_source: str | None = None
        #: why REST v2 was not used for the last update (None when it was)
        self.fallback_reason: str | None = None

    async def update(self, endpoint_id: str, change: ScaleChange) -> EndpointInfo:
        """Apply ``change`` and return the endpoint as the server now has it. A refusal
        that names the account's worker cap is a :class:`WorkerCapRefused` (its ``cap``)."""
        try:
            return await self._update(endpoint_id, change)
        except ApiError as exc:
            cap = cap_in(exc.message) if not isinstance(exc, UpdateUncertain | WorkerCapRefused) else None
            if cap is None:
                raise
            raise WorkerCapRefused(f"{exc.message} (the account's worker cap is {cap}: lower "
                                   "another endpoint's max workers first)", cap,
                                   status_code=exc.status_code) from exc  # fmt: skip

    async def _update(self, endpoint_id: str, change: ScaleChange) -> EndpointInfo:
        check_id(endpoint_id, "endpoint")
        change = change.checked()
        one_side = (change.workers_min is None) != (change.workers_max is None)
        if (change.scaler_value is None) != (change.scaler_type is None) or one_side:
            change = _completed(change, await self._read(endpoint_id))
        what = f"the update of endpoint {endpoint_id}"
        try:
            data = await self._send("PATCH", f"{self._conn.rest_url}/serverless/{endpoint_id}",
                                    endpoint_id, change, what, json=_rest_body(change))  # fmt: skip
        except RpdashError as exc:
            if not (self.graphql_fallback and _route_missing(exc)):
                raise
            info = await self._graphql_update(endpoint_id, change, what)
            self.last_source, self.fallback_reason = "graphql", exc.message
            return info
        self.last_source, self.fallback_reason = "rest", None
        if isinstance(data, dict) and data.get("id") is not None:
            return EndpointInfo.from_rest(data)
        return await self._read(endpoint_id)  # a 2xx without the endpoint: ask again

    async def _send(self, method: str, url: str, endpoint_id: str, change: ScaleChange, what: str,
                    **kw: Any) -> Any:  # fmt: skip
        """One update request: sent again only after a 429; a lost answer is re-read once."""
        attempt = 0
        while True:
            try:
                return await self._conn._attempt(method, url, what, **kw)
            except RateLimited as exc:  # refused before anything changed: safe to send again
                attempt += 1
                if attempt > self._conn.max_retries:
                    raise
                await self._conn.clock.sleep(backoff(attempt, exc))
            except (Unreachable, Timeout, ServerError, BadResponse) as exc:
                if isinstance(exc.__cause__, httpx.ConnectError | httpx.ConnectTimeout):
                    raise  # never connected: nothing was sent
                raise await self._uncertain(endpoint_id, change, exc) from exc

    async def _uncertain(self, endpoint_id: str, change: ScaleChange, exc: RpdashError) -> UpdateUncertain:
        head = (f"no clear answer to the update of endpoint {endpoint_id} ({exc.message}): "
                "it may have been applied; re-read the endpoint")  # fmt: skip
        try:
            now = await self._read(endpoint_id)
        except RpdashError as again:
            return UpdateUncertain(f"{head}; reading it again failed too ({again.message})")
        asked = "what was asked" if change.matches(now) else "not all that was asked"
        return UpdateUncertain(f"{head}; read again, it now has {scale_text(now)} ({asked})", now)

    async def _graphql_update(self, endpoint_id: str, change: ScaleChange, what: str) -> EndpointInfo:
        """Read the endpoint through GraphQL, echo every field back with the asked changes."""
        raw = await self._graphql_read(endpoint_id)
        current = EndpointInfo.from_graphql(raw)
        change = _completed(change, current)
        inp = {k: raw[k] for k in _INPUT_FIELDS if raw.get(k) is not None}
        for key, v in (("workersMin", change.workers_min), ("workersMax", change.workers_max),
                       ("idleTimeout", change.idle_timeout), ("scalerType", change.scaler_type),
                       ("scalerValue", change.scaler_value)):  # fmt: skip
            if v is not None:
                inp[key] = v
        data = await self._send("POST", self._conn.graphql_url, endpoint_id, change, f"{what} (GraphQL)",
                                json={"query": SAVE_MUTATION, "variables": {"input": inp}})  # fmt: skip
        saved = self._graphql_data(data, "saveEndpoint")
        if not isinstance(saved, dict) or saved.get("id") is None:
            return EndpointInfo.from_graphql(await self._graphql_read(endpoint_id))
        return EndpointInfo.from_graphql({**raw, **saved})

    async def _graphql_read(self, endpoint_id: str) -> dict[str, Any]:
        data = await self._conn.request_json("POST", self._conn.graphql_url,
                                             f"endpoint {endpoint_id} (GraphQL)",
                                             json={"query": GRAPHQL_FULL_QUERY})  # fmt: skip
        myself = self._graphql_data(data, "myself")
        eps = myself.get("endpoints") if isinstance(myself, dict) else None
        if not isinstance(eps, list):
            raise BadResponse("RunPod's GraphQL answer has no data.myself.endpoints")
        for ep in eps:
            if isinstance(ep, dict) and ep.get("id") == endpoint_id:
                return ep
        raise NotFound(f"endpoint {endpoint_id} is not in this account's endpoints", status_code=404)

    def _graphql_data(self, data: Any, key: str) -> Any:
        if not isinstance(data, dict):
            raise BadResponse("RunPod's GraphQL answer is not a JSON object")
        if data.get("errors"):
            msg = graphql_message(data["errors"])
            text = self._conn.inert(msg)
            if any(w in msg.lower() for w in ("unauth", "api key", "authenticat", "forbidden", "permission")):
                raise AuthError(f"RunPod rejected the API key (GraphQL): {text}: check RUNPOD_API_KEY")
            raise ApiError(f"RunPod's GraphQL API refused the change: {text}")
        inner = data.get("data")
        return inner.get(key) if isinstance(inner, dict) else None


def _completed(change: ScaleChange, current: EndpointInfo) -> ScaleChange:
    """``change`` with the scaler type filled in from ``current`` when only the value is
    given; min <= max checked against the current values."""
    kind, value = change.scaler_type, change.scaler_value
    if value is not None and kind is None:
        kind = current.scaler_type
        if kind not in SCALER_TYPES:
            raise InvalidInput(f"endpoint {current.id} reports no known scaler type "
                               f"({current.scaler_type!r}): give the scaler type too")  # fmt: skip
    if kind is not None and value is None:
        value = scaler_value_of(current)
        if kind != current.scaler_type or value is None:
            raise InvalidInput(f"a new scaler ({kind}) needs its value too")
    lo = change.workers_min if change.workers_min is not None else current.workers_min
    hi = change.workers_max if change.workers_max is not None else current.workers_max
    if lo is not None and hi is not None:
        _check_order(lo, hi)
    if kind == "REQUEST_COUNT" and change.idle_timeout is not None:
        raise InvalidInput("an endpoint scaling on REQUEST_COUNT has no idle timeout: leave it out")
    return ScaleChange(change.workers_min, change.workers_max, change.idle_timeout, kind, value)


def _rest_body(change: ScaleChange) -> dict[str, Any]:
    """The sparse PATCH body: only the asked fields, explicit zeros kept."""
    body: dict[str, Any] = {}
    workers = {k: v for k, v in (("min", change.workers_min), ("max", change.workers_max),
                                 ("idleTimeout", change.idle_timeout)) if v is not None}  # fmt: skip
    if workers:
        body["workers"] = workers
    if change.scaler_type is not None:
        key = "requestCount" if change.scaler_type == "REQUEST_COUNT" else "queueDelay"
        scaling: dict[str, Any] = {"type": change.scaler_type}
        if change.scaler_value is not None:
            scaling[key] = change.scaler_value
        body["scaling"] = scaling
    return body


def _route_missing(exc: RpdashError) -> bool:
    """REST v2 does not offer the update here (the route, not the endpoint, is missing)."""
    return isinstance(exc, ApiError) and not isinstance(exc, AuthError | RateLimited) and \
        exc.status_code in _FALLBACK_CODES  # fmt: skip
