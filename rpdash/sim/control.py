"""The simulated control plane: REST v2 ``/v2/serverless...`` and GraphQL ``/graphql``.

RunPod serves the control plane on another host (``https://api.runpod.io``) than the data
plane (``https://api.runpod.ai/v2``); the simulator serves both on its one loopback port,
so a client pointed at the simulator uses the same origin for both:

=================================================  ======  ===================================
URL (``http://127.0.0.1:PORT`` +)                   method  answer (runpod-api.md section 10)
=================================================  ======  ===================================
``/v2/serverless``                                  GET     ``{"endpoints": [Endpoint...]}``
``/v2/serverless/{id}``                             GET     one Endpoint
``/v2/serverless/{id}/workers``                     GET     ``{workers, summary, endpointVersion}``
``/v2/serverless/{id}/releases``                    GET     ``{endpointVersion, rollout, releases}``
``/v2/serverless/{id}/workers/{workerId}/logs``     GET     Server-Sent Events, data
                                                            ``{source, line, ts}``
``/graphql``                                        POST    ``{"data": {"myself": {"endpoints":
                                                            [...]}}}``
``/v2/{endpoint_id}/...``                           (data plane, unchanged; see server.py)
=================================================  ======  ===================================

So ``serverless`` cannot be a simulated endpoint id (its data-plane routes would be
shadowed); the engine never makes one.

Choices where runpod-api.md says [unconfirmed] or says nothing
----------------------------------------------------------------
- Endpoints: every engine endpoint is a ``QUEUE`` endpoint; its REST shape is derived from
  its ``EndpointConfig`` (``workers.idleTimeout`` in whole seconds, ``timeout`` = the
  execution timeout in ms, ``gpu.pools`` chosen by handler kind) and can be overridden per
  endpoint through ``ControlPlane.meta`` (or ``POST /_sim/control {"meta": {id: {...}}}``).
  One extra ``LOAD_BALANCER`` endpoint (``lb-gateway``, not on the data plane) is listed
  too, so pickers have something to filter out; ``ControlPlane.extra`` holds it.
- Workers: ``status`` is the engine state in capitals (IDLE, INITIALIZING, RUNNING,
  THROTTLED, UNHEALTHY); ``version`` is the release the worker runs and ``isStale`` is
  true when that is older than the endpoint's (rolling release, releases.py);
  ``endpointVersion`` is the newest release (``meta["version"]`` overrides it).
  ``gpuTypeId`` (the first GPU pool), ``dataCenterId`` (picked from the endpoint's data
  centres by the worker id) and ``uptimeSeconds`` are null until the worker is placed on a
  host (a THROTTLED worker waiting for capacity is not); ``startedAt`` is null until it
  has started (became ready).
- Releases: ``/v2/serverless/{id}/releases`` gives ``endpointVersion``, ``rollout``
  ``{inProgress, workersOnLatest, workersTotal, percentOnLatest}`` and ``releases``
  (newest first, ``{version, createdAt, image, note}``).
- Scaling: ``scaling`` is the endpoint's scaler (``QUEUE_DELAY`` with ``queueDelay`` in
  seconds, or ``REQUEST_COUNT`` with ``requestCount``, and then no ``idleTimeout``).
- Logs: the event ``id`` is REST v2's documented form ``2026-06-01T12:05:04Z/000000000042``
  (time, then the engine's log sequence number, increasing over the whole simulator), or
  with the knob ``log_event_ids="seq"`` the bare sequence number. ``Last-Event-ID`` (header, or ``lastEventId`` query)
  takes either form back, or a bare RFC 3339 time (the spec types it as a date-time).
  ``ts`` is RFC 3339 (UTC, milliseconds, ``Z``). Lines about a job are ``container``
  lines in the JSON form a deployed runpod-python worker prints (``{"requestId",
  "message", "level"}``); worker lifecycle lines (pulling image, ready, throttled, idle
  stop, crash) are ``system`` lines ``"<LEVEL> <message>"``; the worker's start banner is a
  plain ``container`` line. Selection, as documented (``Last-Event-ID`` > ``since`` >
  ``tail``): with ``Last-Event-ID`` only lines after it; else with ``since`` the lines
  with ``ts >= since`` (``tail`` ignored); else the last ``tail`` lines (default 100,
  0..5000, 0 = only new lines). ``source`` filters. The stream stays open and sends new
  lines as the worker writes them; when the worker is gone (idle stop, unhealthy removal,
  endpoint removed) the stream ends after its last line. A worker id that never had a line
  on that endpoint is 404. The simulator keeps the last 200 lines per live worker and the
  last 2000 per endpoint (removed workers' lines come from the latter).
- Errors are RFC 9457 ``application/problem+json`` ``{title, status, detail}``.
- GraphQL: any query naming ``myself`` and ``endpoints`` gets every field of section 10.3
  (the selection set is not honoured); ``type`` is ``QB``/``LB``; other queries get HTTP
  200 with an ``errors`` array. A missing or wrong key is HTTP 401 with an ``errors``
  array (runpod-python treats 401 as an authentication error). The key may also come as
  ``?api_key=``.
- Test knobs (``ControlPlane`` attributes, also ``POST /_sim/control``): ``rest_status``
  makes every REST v2 control call answer that HTTP status (404 = "REST v2 not available",
  to exercise a GraphQL fallback); ``graphql_enabled=False`` makes ``/graphql`` 404;
  ``drop_logs_after=N`` ends every log stream after N events (clients must resume with
  ``Last-Event-ID``); ``log_event_ids`` ("cursor", the default, or "seq", above). Faults (faults.py) apply with operations ``serverless``,
  ``workers``, ``logs``, ``graphql``: throttle -> 429, error -> 5xx; a ``drop`` on ``logs``
  ends the stream after half of the backlog.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import zlib
from typing import Any
from urllib.parse import parse_qs

from rpdash.sim.engine import SIM_IMAGE, Engine, SimError
from rpdash.sim.control_logs import WorkerLogs, _Problem, rfc3339
from rpdash.sim.http import Gate, _dumps
from rpdash.sim.http import _send as _send_raw
from rpdash.sim.control_update import EndpointUpdates  # noqa: I001 (apart: merges stay clean)


DATA_CENTERS = ("EU-RO-1", "US-TX-3", "EU-SE-1")
_GPU_POOLS = {
    "mock": ["AMPERE_16", "ADA_24"],
    "stream": ["ADA_24"],
    "llm": ["ADA_80_PRO", "AMPERE_80"],
}
_CREATED = "2026-07-01T09:30:00.000Z"

DEFAULT_EXTRA: tuple[dict[str, Any], ...] = (
    {
        "id": "lb-gateway",
        "name": "lb-gateway",
        "type": "LOAD_BALANCER",
        "requestUrls": {"base": "https://lb-gateway.api.runpod.ai", "health": "https://lb-gateway.api.runpod.ai/ping"},
        "image": "example/fastapi-gateway:2",
        "gpu": {"pools": ["ADA_24"], "count": 1},
        "workers": {"min": 1, "max": 2, "idleTimeout": 60},
        "timeout": 600000,
        "flashboot": "FLASHBOOT",
        "dataCenterIds": ["EU-RO-1"],
        "createdAt": _CREATED,
    },
)

_PROBLEM = (b"content-type", b"application/problem+json")
_JSON = (b"content-type", b"application/json")


async def _send(send: Any, status: int, body: bytes, ctype: tuple[bytes, bytes] = _JSON,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    await _send_raw(send, status, body, headers, ctype[1])


class ControlPlane(WorkerLogs):
    """Control-plane views of one engine. Runs on the server's loop thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: per endpoint id: REST fields that replace the derived ones (name, gpu, version...)
        self.meta: dict[str, dict[str, Any]] = {}
        #: endpoints listed that the data plane does not serve (a load balancer by default)
        self.extra: list[dict[str, Any]] = [dict(e) for e in DEFAULT_EXTRA]
        #: answer every REST v2 control call with this HTTP status (tests of fallbacks)
        self.rest_status: int | None = None
        self.graphql_enabled = True
        self.updates = EndpointUpdates(self)  # PATCH and saveEndpoint (control_update.py)
        #: end each log stream after this many events (tests of Last-Event-ID resume)
        self.drop_logs_after: int | None = None
        self.log_streams_opened = 0
        #: SSE event ids: "seq" (the engine's log sequence number) or "cursor" (REST v2's
        #: documented ``<time>/<sequence>`` form; both are accepted back)
        self.log_event_ids = "cursor"

    # ------------------------------------------------------------------ shapes

    def endpoint_rest(self, endpoint_id: str) -> dict[str, Any]:
        ep = self.engine.endpoint(endpoint_id)
        cfg = ep.cfg
        host = f"https://api.runpod.ai/v2/{cfg.id}"
        d: dict[str, Any] = {
            "id": cfg.id,
            "name": cfg.id,
            "type": "QUEUE",
            "requestUrls": {
                "run": f"{host}/run", "runSync": f"{host}/runsync", "status": f"{host}/status",
                "stream": f"{host}/stream", "cancel": f"{host}/cancel", "retry": f"{host}/retry",
                "purgeQueue": f"{host}/purge-queue", "health": f"{host}/health",
            },  # fmt: skip
            "image": SIM_IMAGE,
            "gpu": {"pools": list(_GPU_POOLS.get(cfg.handler, ["AMPERE_16"])), "count": 1,
                    "allowedCudaVersions": [], "minCudaVersion": "12.1"},  # fmt: skip
            "workers": {"min": cfg.workers_min, "max": cfg.workers_max,
                        "idleTimeout": int(round(cfg.idle_timeout))},  # fmt: skip
            "scaling": ({"type": "REQUEST_COUNT", "requestCount": int(cfg.scaler_value)}
                        if cfg.scaler_type == "REQUEST_COUNT"
                        else {"type": "QUEUE_DELAY", "queueDelay": cfg.scaler_value}),
            "dataCenterIds": list(DATA_CENTERS[:2]),
            "networkVolumes": [],
            "timeout": cfg.execution_timeout_ms,
            "flashboot": "FLASHBOOT",
            "env": {},
            "version": ep.version,
            "createdAt": _CREATED,
        }
        if cfg.scaler_type == "REQUEST_COUNT":  # omitted for REQUEST_COUNT (section 10.1)
            del d["workers"]["idleTimeout"]
        d.update(self.meta.get(cfg.id, {}))
        return d

    def list_rest(self) -> list[dict[str, Any]]:
        out = [self.endpoint_rest(e) for e in self.engine.endpoint_ids()]
        return out + [dict(e) for e in self.extra]

    def workers_rest(self, endpoint_id: str) -> dict[str, Any]:
        engine = self.engine
        ep = engine.endpoint(endpoint_id)
        info = self.endpoint_rest(endpoint_id)
        version = info.get("version", ep.version)
        now, wall = engine.now(), engine.wall()
        pools = (info.get("gpu") or {}).get("pools") or ["AMPERE_16"]
        dcs = info.get("dataCenterIds") or list(DATA_CENTERS)
        workers = []
        summary = {"running": 0, "idle": 0, "initializing": 0, "throttled": 0, "unhealthy": 0}
        for w in ep.workers.values():
            summary[w.state] = summary.get(w.state, 0) + 1
            placed = w.placed_at is not None
            workers.append({
                "id": w.id,
                "status": w.state.upper(),
                "isStale": w.version < ep.version,
                "version": w.version,
                "gpuCount": (info.get("gpu") or {}).get("count", 1),
                "image": info.get("image", SIM_IMAGE),
                "uptimeSeconds": int(now - w.created_at) if placed else None,
                "gpuTypeId": pools[0] if placed else None,
                "dataCenterId": dcs[zlib.crc32(w.id.encode()) % len(dcs)] if placed else None,
                "startedAt": rfc3339(wall - (now - w.ready_at)) if w.ready_at is not None else None,
            })  # fmt: skip
        summary["total"] = len(workers)
        return {"workers": workers, "summary": summary, "endpointVersion": version}

    def releases_rest(self, endpoint_id: str) -> dict[str, Any]:
        """``/v2/serverless/{id}/releases``: newest first, with the rollout's progress."""
        engine = self.engine
        ep = engine.endpoint(endpoint_id)
        wall_of = engine.wall() - engine.now()
        releases = [{"version": r["version"], "createdAt": rfc3339(wall_of + r["at"]),
                     "image": SIM_IMAGE, "note": r.get("note", "")}  # fmt: skip
                    for r in reversed(ep.releases)]
        return {"endpointVersion": ep.version, "rollout": engine.rollout(endpoint_id),
                "releases": releases}  # fmt: skip

    def endpoints_graphql(self) -> list[dict[str, Any]]:
        out = []
        for d in self.list_rest():
            gpu = d.get("gpu") or {}
            workers = d.get("workers") or {}
            scaling = d.get("scaling") or {}
            out.append({
                "id": d["id"],
                "name": d.get("name"),
                "type": "LB" if d.get("type") == "LOAD_BALANCER" else "QB",
                "templateId": f"tpl-{d['id']}",
                "gpuIds": ",".join(gpu.get("pools") or []),
                "gpuCount": gpu.get("count", 1),
                "workersMin": workers.get("min", 0),
                "workersMax": workers.get("max", 0),
                "workersStandby": workers.get("min", 0),
                "idleTimeout": workers.get("idleTimeout", 5),
                "scalerType": scaling.get("type", "QUEUE_DELAY"),
                "scalerValue": scaling.get("queueDelay", scaling.get("requestCount", 4)),
                "networkVolumeId": None,
                "locations": ",".join(d.get("dataCenterIds") or []),
                "version": d.get("version", 1),
                "env": [{"key": k, "value": v} for k, v in (d.get("env") or {}).items()],
                "createdAt": d.get("createdAt"),
                "aiKey": None,
            })  # fmt: skip
        return out

    async def handle_rest(self, app: Gate, scope: dict[str, Any], receive: Any, send: Any,
                          path: str) -> None:  # fmt: skip
        """``/v2/serverless[/...]``."""
        parts = [p for p in path[len("/v2/serverless"):].split("/") if p]
        op = "serverless"
        if len(parts) == 2 and parts[1] in ("workers", "releases"):
            op = parts[1]
        elif len(parts) == 4 and parts[1] == "workers" and parts[3] == "logs":
            op = "logs"
        ep_key = parts[0] if parts else "*"
        try:
            decision = app.faults.decide(ep_key, op) if app.faults.active else None
            if decision is not None and decision.latency:
                await asyncio.sleep(decision.latency)
            if decision is not None and decision.kind == "throttle":
                ra = decision.retry_after
                raise _Problem(429, "Too Many Requests", "rate limit exceeded",
                               [] if ra is None else [(b"retry-after", str(int(-(-ra // 1))).encode())])  # fmt: skip
            if decision is not None and decision.kind == "error":
                raise _Problem(decision.status, "Internal Server Error", "internal server error")
            if not app._authorized(scope):
                raise _Problem(401, "Unauthorized", "missing or invalid API key")
            if self.rest_status is not None:
                raise _Problem(self.rest_status, "Unavailable", "REST v2 is not available here")
            if scope["method"] == "PATCH" and len(parts) == 1:
                return await self.updates.handle_patch(scope, receive, send, parts[0], decision)
            if scope["method"] != "GET":
                raise _Problem(405, "Method Not Allowed", f"{scope['method']} is not allowed here",
                               [(b"allow", b"GET")])  # fmt: skip
            engine = self.engine
            engine.sync()
            if not parts:
                await _send(send, 200, _dumps({"endpoints": self.list_rest()}))
                return
            ep_id = parts[0]
            extra = next((e for e in self.extra if e["id"] == ep_id), None)
            if not engine.has_endpoint(ep_id) and not (extra is not None and len(parts) == 1):
                raise _Problem(404, "Not Found", f"endpoint {ep_id} not found")
            if len(parts) == 1:
                await _send(send, 200, _dumps(extra if extra is not None else self.endpoint_rest(ep_id)))
            elif op == "workers":
                await _send(send, 200, _dumps(self.workers_rest(ep_id)))
            elif op == "releases":
                await _send(send, 200, _dumps(self.releases_rest(ep_id)))
            elif op == "logs":
                drop = decision is not None and decision.kind == "drop"
                await self._logs(scope, receive, send, ep_id, parts[2], drop)
            else:
                raise _Problem(404, "Not Found", f"no route for {path}")
        except _Problem as p:
            body = _dumps({"title": p.title, "status": p.status, "detail": p.detail})
            await _send(send, p.status, body, _PROBLEM, p.headers)
        except SimError as exc:
            body = _dumps({"title": "Error", "status": exc.status, "detail": exc.message})
            await _send(send, exc.status, body, _PROBLEM)

    async def handle_graphql(self, app: Gate, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.graphql_enabled:
            await _send(send, 404, _dumps({"error": "no route for /graphql"}))
            return
        decision = app.faults.decide("*", "graphql") if app.faults.active else None
        if decision is not None and decision.kind in ("throttle", "error"):
            status = 429 if decision.kind == "throttle" else decision.status
            await _send(send, status, _dumps({"errors": [{"message": "request failed"}]}))
            return
        q = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        key = q.get("api_key", [None])[-1]
        ok = app._authorized(scope) or (
            key is not None and app.api_key is not None and hmac.compare_digest(key.encode(), app.api_key.encode())
        )
        if not ok:
            await _send(send, 401, _dumps({"errors": [{"message": "Unauthorized: missing or invalid API key"}]}))
            return
        if scope["method"] != "POST":
            await _send(send, 405, _dumps({"errors": [{"message": "use POST"}]}), headers=[(b"allow", b"POST")])
            return
        raw = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            raw += msg.get("body", b"")
            if len(raw) > 1_000_000:
                await _send(send, 413, _dumps({"errors": [{"message": "query too large"}]}))
                return
            if not msg.get("more_body", False):
                break
        try:
            body = json.loads(raw or b"{}")
            query = body.get("query") if isinstance(body, dict) else None
        except ValueError:
            query = None
        if not isinstance(query, str):
            await _send(send, 400, _dumps({"errors": [{"message": "body must be {\"query\": \"...\"}"}]}))
            return
        self.engine.sync()
        if "saveEndpoint" in query:
            return await self.updates.handle_graphql(send, body)
        if "myself" in query and "endpoints" in query:
            await _send(send, 200, _dumps({"data": {"myself": {"endpoints": self.endpoints_graphql()}}}))
            return
        await _send(send, 200, _dumps({"errors": [{"message": "the simulator answers only myself { endpoints }"}]}))

    # ------------------------------------------------------------------ admin

    def configure(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sim/control``: change the knobs; answers the current state."""
        if "rest_status" in body:
            v = body["rest_status"]
            self.rest_status = None if v is None else int(v)
        if "graphql_enabled" in body:
            self.graphql_enabled = bool(body["graphql_enabled"])
        if "log_event_ids" in body:
            if body["log_event_ids"] not in ("seq", "cursor"):
                raise ValueError('log_event_ids must be "seq" or "cursor"')
            self.log_event_ids = body["log_event_ids"]
        if "drop_logs_after" in body:
            v = body["drop_logs_after"]
            self.drop_logs_after = None if v is None else int(v)
        for eid, fields in (body.get("meta") or {}).items():
            if not isinstance(fields, dict):
                raise ValueError("meta values must be objects")
            self.meta.setdefault(str(eid), {}).update(fields)
        if "extra" in body:
            extra = body["extra"]
            if not isinstance(extra, list) or not all(isinstance(e, dict) and "id" in e for e in extra):
                raise ValueError("extra must be a list of endpoint objects with an id")
            self.extra = [dict(e) for e in extra]
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        return {
            "rest_status": self.rest_status,
            "graphql_enabled": self.graphql_enabled,
            "drop_logs_after": self.drop_logs_after,
            "log_event_ids": self.log_event_ids,
            "meta": self.meta,
            "extra": [e["id"] for e in self.extra],
            "log_streams_opened": self.log_streams_opened,
        }

