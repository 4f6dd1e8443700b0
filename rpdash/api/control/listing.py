"""The endpoint list and an endpoint's workers.

REST v2 first, GraphQL as the fallback for the endpoint list: REST v2 is what the docs
prefer, but some accounts/hosts may not have it (a third-party CLI still calls it beta).
A 404, 405, 501, 5xx or an answer that is not the documented shape falls back to GraphQL;
a 401/403 (same key there), a 429 or an unreachable host does not. Workers are REST v2 only.
"""

from __future__ import annotations

import re
from typing import Any

from rpdash.api.control.connection import ControlConnection, check_id, graphql_message
from rpdash.api.control.models import EndpointInfo, WorkerInfo, WorkerList, as_int
from rpdash.core.errors import (
    ApiError,
    AuthError,
    BadResponse,
    InsecureTransport,
    NotFound,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)

__all__ = ["EndpointListing"]

GRAPHQL_ENDPOINTS_QUERY = (
    "query Endpoints { myself { endpoints { id name type templateId gpuIds gpuCount "
    "workersMin workersMax workersStandby idleTimeout scalerType scalerValue networkVolumeId "
    "locations version createdAt } } }"
)

_FALLBACK_CODES = frozenset({404, 405, 501})


class EndpointListing:
    """Lists endpoints and workers over ``conn``; remembers which API answered the last
    endpoint list (``last_source``) and why REST v2 was not used (``fallback_reason``)."""

    def __init__(self, conn: ControlConnection, *, graphql_fallback: bool = True) -> None:
        self._conn = conn
        self.graphql_fallback = graphql_fallback
        #: which API answered the last endpoint list ("rest" or "graphql")
        self.last_source: str | None = None
        #: why REST v2 was not used for the last endpoint list (None when it was)
        self.fallback_reason: str | None = None

    async def list_endpoints(self, *, queue_only: bool = True) -> list[EndpointInfo]:
        """Every endpoint of the account (queue-based only by default), REST v2 first,
        GraphQL when REST v2 is not available (see module docstring)."""
        try:
            url = f"{self._conn.rest_url}/serverless"
            data = await self._conn.get_json(url, "the endpoint list")
            eps = self._parse_list(data, "endpoints", EndpointInfo.from_rest, "/serverless")
            self.last_source, self.fallback_reason = "rest", None
        except RpdashError as rest_err:
            if not (self.graphql_fallback and _falls_back(rest_err)):
                raise
            try:
                eps = await self._graphql_endpoints()
            except RpdashError as gql_err:
                gql_err.message = f"{gql_err.message} (REST v2 before it: {rest_err.message})"
                gql_err.args = (gql_err.message,)
                raise
            self.last_source, self.fallback_reason = "graphql", rest_err.message
        return [e for e in eps if e.queue] if queue_only else eps

    async def get_endpoint(self, endpoint_id: str) -> EndpointInfo:
        """One endpoint by id (REST v2; the GraphQL list when REST v2 is not available)."""
        check_id(endpoint_id, "endpoint")
        try:
            url = f"{self._conn.rest_url}/serverless/{endpoint_id}"
            data = await self._conn.get_json(url, f"endpoint {endpoint_id}")
            if not isinstance(data, dict) or "id" not in data:
                raise BadResponse(f"RunPod's answer for endpoint {endpoint_id} is not an endpoint object")
            return EndpointInfo.from_rest(data)
        except RpdashError as rest_err:
            if not (self.graphql_fallback and _falls_back(rest_err)):
                raise
            for ep in await self._graphql_endpoints():
                if ep.id == endpoint_id:
                    return ep
            raise NotFound(f"endpoint {endpoint_id} is not in this account's endpoints", status_code=404) from None

    async def _graphql_endpoints(self) -> list[EndpointInfo]:
        data = await self._conn.request_json("POST", self._conn.graphql_url,
                                             "the endpoint list (GraphQL)",
                                             json={"query": GRAPHQL_ENDPOINTS_QUERY})  # fmt: skip
        if not isinstance(data, dict):
            raise BadResponse("RunPod's GraphQL answer is not a JSON object")
        errors = data.get("errors")
        if errors:
            msg = graphql_message(errors)
            text = self._conn.inert(msg)
            if re.search(r"unauth|api key|authenticat|forbidden|permission", msg, re.IGNORECASE):
                raise AuthError(f"RunPod rejected the API key (GraphQL): {text}: check RUNPOD_API_KEY")
            raise ApiError(f"RunPod's GraphQL API refused the endpoint list: {text}")
        myself = (data.get("data") or {}).get("myself") if isinstance(data.get("data"), dict) else None
        if not isinstance(myself, dict):
            raise BadResponse("RunPod's GraphQL answer has no data.myself")
        return self._parse_list(myself, "endpoints", EndpointInfo.from_graphql, "GraphQL myself.endpoints")

    def _parse_list(self, data: Any, key: str, build: Any, what: str) -> list[Any]:
        items = data.get(key) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise BadResponse(f"RunPod's answer to {what} has no {key} list")
        out = []
        for item in items:
            if isinstance(item, dict) and item.get("id") is not None:
                out.append(build(item))
        return out

    async def workers(self, endpoint_id: str) -> WorkerList:
        """The endpoint's active workers and their summary (REST v2 only)."""
        check_id(endpoint_id, "endpoint")
        url = f"{self._conn.rest_url}/serverless/{endpoint_id}/workers"
        data = await self._conn.get_json(url, f"the workers of endpoint {endpoint_id}")
        workers = self._parse_list(data, "workers", WorkerInfo.from_rest, "/workers")
        summary_raw = data.get("summary") if isinstance(data, dict) else None
        summary = {k: 0 for k in ("running", "idle", "initializing", "throttled", "unhealthy")}
        if isinstance(summary_raw, dict):
            for k, v in summary_raw.items():
                n = as_int(v)
                if n is not None:
                    summary[str(k)] = max(0, n)
        else:
            for w in workers:
                summary[w.status.lower()] = summary.get(w.status.lower(), 0) + 1
        summary.setdefault("total", len(workers))
        version = as_int(data.get("endpointVersion")) if isinstance(data, dict) else None
        return WorkerList(workers, summary, version)


def _falls_back(exc: RpdashError) -> bool:
    """REST v2 is not there (or broken) for this request: worth asking GraphQL."""
    if isinstance(exc, AuthError | RateLimited | Unreachable | Timeout | InsecureTransport):
        return False
    if isinstance(exc, NotFound | ServerError | BadResponse):
        return True
    return exc.status_code in _FALLBACK_CODES
