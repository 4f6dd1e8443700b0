"""The simulator over HTTP: RunPod's serverless v2 routes on a lean hand-routed ASGI app,
served by uvicorn (httptools) in a background thread (:class:`SimServer`) or in the
foreground (:func:`serve`, used by ``rpdash sim``).

Routes (``/v2/{endpoint_id}/...``; runpod-api.md sections 3 and 6)
------------------------------------------------------------------
=========================  =========  ===========================================================
``run``                    POST       ``{id, status: "IN_QUEUE"}``
``runsync``                POST       ``?wait`` ms (1000..300000, default 90000): the job
                                      object if it ends in time, else ``{id, status}``
``status/{id}``            GET, POST  job object; ``?ttl`` ms (see engine.py)
``status-sync/{id}``       GET, POST  long poll until terminal; ``?wait`` default 90000
``stream/{id}``            GET, POST  ``{status, stream: [{output}, ...]}``; draining; long
                                      poll while nothing is new, ``?wait`` default 9000
``cancel/{id}``            POST       ``{id, status}``
``retry/{id}``             POST       ``{id, status: "IN_QUEUE"}``; 400 unless FAILED/TIMED_OUT
``purge-queue``            POST       ``{removed, status: "completed"}``
``health``                 GET        ``{jobs{...}, workers{...}}``
=========================  =========  ===========================================================

Choices where runpod-api.md says [unconfirmed]
----------------------------------------------
- Error bodies are JSON ``{"error": "<one-line message>"}`` for every error status.
- Order of checks: unknown path -> 404; injected latency / 429 / 5xx faults (they model
  the gateway, so they come first); missing or wrong key -> 401 (``Authorization: Bearer
  KEY`` or bare ``Authorization: KEY``, any case for "Bearer"; ``api_key=None`` turns auth
  off); wrong method -> 405 with ``Allow``; unknown endpoint -> 404; rate limit -> 429 with
  ``Retry-After`` (limits.py); body too large -> 413; bad body or parameter -> 400; unknown
  or expired job -> 404.
- Sizes: MB = 10^6 bytes. /run bodies over 10 000 000 bytes and /runsync bodies over
  20 000 000 bytes get 413 (the body is read and discarded first, up to 100 MB, so the
  client sees the answer; beyond that the connection is closed after the 413).
- ``wait`` values outside 1000..300000 are clamped (not refused); a non-integer ``wait`` or
  ``ttl`` is a 400. Waits are in simulated time (a time scale shortens them).
- status-sync defaults to ``wait=90000`` like runsync. stream holds 9 s by default: the
  docs say "about 10 s", and runpod-python reads /stream with a 10 s read timeout, so a
  hold of 10 s or more would make it fail.
- A long poll whose client disconnects stops waiting and takes no chunks, so a reader that
  gave up does not lose chunks. Likewise a /stream answer damaged by a ``drop``, ``garbage``
  or ``wrong_shape`` fault does not consume its chunks: the next /stream hands them out.
- cancel/retry/purge ignore any body. Unknown top-level body keys are ignored.
- Admin routes (same auth) for tests and the demo, not part of RunPod's API:
  ``/_sim/faults`` (GET, POST, DELETE), ``/_sim/scenario`` (GET, POST ``{"name"}``),
  ``/_sim/endpoints`` (GET, POST config), ``/_sim/endpoints/{id}`` (GET, POST changes,
  DELETE), ``/_sim/endpoints/{id}/workers`` (GET), ``/_sim/endpoints/{id}/logs``
  (GET ``?worker=&tail=``), ``/_sim/rate-limits`` (GET, POST), ``/_sim/stats`` (GET),
  ``/_sim/control`` (GET, POST knobs of the control plane; see control.py).

Control plane on the same port (control.py): ``/v2/serverless``, ``/v2/serverless/{id}``,
``/v2/serverless/{id}/workers``, ``/v2/serverless/{id}/workers/{worker}/logs`` (SSE) and
``/graphql``; a control client uses :attr:`SimServer.url` as its base (RunPod's is
``https://api.runpod.io``). ``serverless`` is therefore not usable as an endpoint id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import inspect
import ipaddress
import json
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from rpdash.core.clock import Clock, RealClock, ScaledClock
from rpdash.core.errors import ConfigError
from rpdash.sim.control import ControlPlane
from rpdash.sim.engine import TERMINAL, EndpointConfig, Engine, SimError
from rpdash.sim.faults import OK, Decision, FaultSpec, Faults
from rpdash.sim.scenarios import Scenario, apply_scenario, get_scenario, scenario_names

log = logging.getLogger("rpdash.sim")

MB = 1_000_000
RUN_MAX_BYTES = 10 * MB
RUNSYNC_MAX_BYTES = 20 * MB
OTHER_MAX_BYTES = 1 * MB
DRAIN_MAX_BYTES = 100 * MB
WAIT_MIN_MS = 1_000
WAIT_MAX_MS = 300_000
RUNSYNC_WAIT_DEFAULT_MS = 90_000
STATUS_SYNC_WAIT_DEFAULT_MS = 90_000
STREAM_WAIT_DEFAULT_MS = 9_000

# operation -> (takes a job id, allowed methods)
ROUTES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "run": (False, ("POST",)),
    "runsync": (False, ("POST",)),
    "purge-queue": (False, ("POST",)),
    "health": (False, ("GET",)),
    "status": (True, ("GET", "POST")),
    "status-sync": (True, ("GET", "POST")),
    "stream": (True, ("GET", "POST")),
    "cancel": (True, ("POST",)),
    "retry": (True, ("POST",)),
}
_ALLOW = {op: ", ".join(m).encode() for op, (_, m) in ROUTES.items()}

_JSON_HEADERS = (b"content-type", b"application/json")
_DROP_MESSAGE = "ASGI callable returned without completing response."


class _DropFilter(logging.Filter):
    """Hide uvicorn's complaint about the responses we cut on purpose (drop faults)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROP_MESSAGE


_drop_filter_installed = False


def _install_drop_filter() -> None:
    global _drop_filter_installed
    if not _drop_filter_installed:
        logging.getLogger("uvicorn.error").addFilter(_DropFilter())
        _drop_filter_installed = True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class _Disconnected(Exception):
    pass


_GONE = object()  # handler result: the client left, send nothing


async def _send(send: Callable[[dict[str, Any]], Awaitable[None]], status: int, body: bytes,
                headers: list[tuple[bytes, bytes]] | None = None,
                ctype: bytes = b"application/json") -> None:  # fmt: skip
    h = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": body})


def _error_body(message: str) -> bytes:
    return _dumps({"error": message})


def _retry_after(seconds: float | None) -> list[tuple[bytes, bytes]]:
    if seconds is None:
        return []
    return [(b"retry-after", str(max(0, int(-(-seconds // 1)))).encode())]


class SimApp:
    """The ASGI application. Everything runs on the server's loop thread."""

    def __init__(self, engine: Engine, faults: Faults, api_key: str | None, *,
                 scenario: str = "default") -> None:  # fmt: skip
        self.engine = engine
        self.faults = faults
        self.api_key = api_key
        self._key = api_key.encode() if api_key is not None else None
        self.scenario = scenario
        self.requests = 0
        #: the control plane (REST v2 /v2/serverless..., /graphql) on the same port
        self.control = ControlPlane(engine)
        self._handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "run": self._run,
            "runsync": self._runsync,
            "status": self._status,
            "status-sync": self._status_sync,
            "stream": self._stream,
            "cancel": self._cancel,
            "retry": self._retry,
            "purge-queue": self._purge,
            "health": self._health,
        }

    # ------------------------------------------------------------------ entry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                while True:
                    msg = await receive()
                    if msg["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif msg["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            return
        self.requests += 1
        path: str = scope["path"]
        if path.startswith("/v2/"):
            if path.startswith("/v2/serverless") and (len(path) == 14 or path[14] == "/"):
                await self.control.handle_rest(self, scope, receive, send, path)
            else:
                await self._v2(scope, receive, send, path)
        elif path == "/graphql":
            await self.control.handle_graphql(self, scope, receive, send)
        elif path.startswith("/_sim/"):
            await self._admin(scope, receive, send, path)
        else:
            await _send(send, 404, _error_body(f"no route for {path}"))

    def _authorized(self, scope: dict[str, Any]) -> bool:
        key = self._key
        if key is None:
            return True
        for name, value in scope["headers"]:
            if name == b"authorization":
                v = value.strip()
                if v[:7].lower() == b"bearer ":
                    v = v[7:].strip()
                return hmac.compare_digest(v, key)
        return False

    # ------------------------------------------------------------------ /v2

    async def _v2(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        parts = path[4:].split("/")
        n = len(parts)
        route = ROUTES.get(parts[1]) if n >= 2 and parts[0] else None
        if route is None or n != (3 if route[0] else 2) or (route[0] and not parts[2]):
            await _send(send, 404, _error_body(f"no route for {path}"))
            return
        ep_id, op = parts[0], parts[1]
        job_id = parts[2] if route[0] else ""

        decision = self.faults.decide(ep_id, op) if self.faults.active else OK
        if decision is not OK:
            if decision.latency:
                await asyncio.sleep(decision.latency)
            if decision.kind == "throttle":
                await _send(send, 429, _error_body("too many requests"),
                            _retry_after(decision.retry_after))  # fmt: skip
                return
            if decision.kind == "error":
                await _send(send, decision.status, _error_body("internal server error"))
                return

        if not self._authorized(scope):
            await self._answer(send, 401, {"error": "unauthorized: missing or invalid API key"}, decision)
            return
        if scope["method"] not in route[1]:
            await self._answer(send, 405, {"error": f"method {scope['method']} not allowed for {op}"},
                               decision, [(b"allow", _ALLOW[op])])  # fmt: skip
            return
        engine = self.engine
        engine.sync()
        if not engine.has_endpoint(ep_id):
            await self._answer(send, 404, {"error": f"endpoint {ep_id} not found"}, decision)
            return
        limiter = engine.limiter
        wait = limiter.hit(ep_id, op)
        if wait is not None:
            await self._answer(send, 429, {"error": f"rate limit exceeded for {op}"}, decision,
                               _retry_after(wait))  # fmt: skip
            return
        if not limiter.enter(ep_id, op):
            await self._answer(send, 429, {"error": f"too many concurrent {op} requests"},
                               decision, _retry_after(1))  # fmt: skip
            return
        if decision.kind in ("drop", "garbage", "wrong_shape"):
            # the answer will not deliver the result: handlers that drain (stream) must not
            # consume what it carries
            scope["rpdash.undelivered"] = True
        try:
            result = await self._handlers[op](scope, receive, ep_id, job_id)
        except SimError as exc:
            await self._answer(send, exc.status, {"error": exc.message}, decision,
                               _retry_after(exc.retry_after) if exc.status == 429 else None)  # fmt: skip
            return
        except _HttpError as exc:
            await self._answer(send, exc.status, {"error": exc.message}, decision, exc.headers)
            return
        except _Disconnected:
            return
        finally:
            limiter.leave(ep_id, op)
        if result is _GONE:
            return
        mutate = self.faults.mutate
        if mutate is not None and decision.kind == "ok":
            new = mutate(ep_id, op, result)
            if isinstance(new, bytes | bytearray):
                await _send(send, 200, bytes(new))
                return
            if new is not None:
                result = new
        await self._answer(send, 200, result, decision)

    async def _answer(self, send: Any, status: int, payload: Any, decision: Decision,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
        kind = decision.kind
        if kind == "ok":
            await _send(send, status, _dumps(payload), headers)
            return
        if kind == "garbage":
            await _send(send, 200, decision.body, None, b"text/html; charset=utf-8")
        elif kind == "wrong_shape":
            await _send(send, 200, _dumps(decision.body))
        elif kind == "drop":
            body = _dumps(payload)
            h = [_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": h})
            cut = len(body) // 2
            if cut:
                await send({"type": "http.response.body", "body": body[:cut], "more_body": True})
            # returning now makes uvicorn close the connection mid-body
        else:
            await _send(send, status, _dumps(payload), headers)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _query(scope: dict[str, Any]) -> dict[str, list[str]]:
        qs = scope.get("query_string") or b""
        return parse_qs(qs.decode("latin-1")) if qs else {}

    def _int_param(self, scope: dict[str, Any], name: str) -> int | None:
        q = self._query(scope)
        if name not in q:
            return None
        raw = q[name][-1].strip()
        try:
            return int(raw)
        except ValueError:
            try:
                f = float(raw)
            except ValueError:
                f = float("nan")
            if f == f and f == int(f):
                return int(f)
            raise _HttpError(400, f'"{name}" must be an integer number of milliseconds') from None

    def _wait_s(self, scope: dict[str, Any], default_ms: int) -> float:
        ms = self._int_param(scope, "wait")
        if ms is None:
            ms = default_ms
        return min(WAIT_MAX_MS, max(WAIT_MIN_MS, ms)) / 1000

    async def _read_body(self, scope: dict[str, Any], receive: Any, limit: int) -> bytes:
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise _HttpError(400, "bad Content-Length") from None
                break
        too_large = f"request body is larger than {limit} bytes ({limit // MB} MB, MB = 10^6 bytes)"
        if declared is not None and declared > DRAIN_MAX_BYTES:
            raise _HttpError(413, too_large, [(b"connection", b"close")])
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Disconnected
            b = msg.get("body", b"")
            size += len(b)
            if size <= limit:
                chunks.append(b)
            elif size > DRAIN_MAX_BYTES:
                raise _HttpError(413, too_large, [(b"connection", b"close")])
            if not msg.get("more_body", False):
                break
        if size > limit:
            raise _HttpError(413, too_large)
        return b"".join(chunks)

    async def _json_body(self, scope: dict[str, Any], receive: Any, limit: int) -> Any:
        raw = await self._read_body(scope, receive, limit)
        if not raw.strip():
            raise _HttpError(400, 'request body is empty; send {"input": {...}}')
        try:
            return _loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _HttpError(400, "request body is not valid JSON") from None

    async def _hold(self, waiting: Awaitable[bool], receive: Any) -> bool:
        """Run a long poll; False when the client went away first."""
        wait_task = asyncio.ensure_future(waiting)
        disc_task = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait((wait_task, disc_task), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not wait_task.done():
                wait_task.cancel()
            if not disc_task.done():
                disc_task.cancel()
        if wait_task.cancelled() or not wait_task.done():
            return False
        return True

    # ------------------------------------------------------------------ operations

    async def _run(self, scope: dict[str, Any], receive: Any, ep: str, _: str) -> Any:
        body = await self._json_body(scope, receive, RUN_MAX_BYTES)
        return Engine.ref(self.engine.submit(ep, body))

    async def _runsync(self, scope: dict[str, Any], receive: Any, ep: str, _: str) -> Any:
        wait_s = self._wait_s(scope, RUNSYNC_WAIT_DEFAULT_MS)
        body = await self._json_body(scope, receive, RUNSYNC_MAX_BYTES)
        engine = self.engine
        job = engine.submit(ep, body, sync=True)
        if job.status not in TERMINAL:
            if not await self._hold(engine.wait_terminal(job, wait_s), receive):
                return _GONE
        if job.status in TERMINAL:
            return engine.view(job)
        return Engine.ref(job)

    async def _status(self, scope: dict[str, Any], receive: Any, ep: str, job_id: str) -> Any:
        engine = self.engine
        job = engine.job(ep, job_id)
        if scope["query_string"]:
            ttl = self._int_param(scope, "ttl")
            if ttl is not None:
                if ttl < 0:
                    raise _HttpError(400, '"ttl" must be >= 0')
                engine.set_job_ttl(job, ttl)
        return engine.view(job)

    async def _status_sync(self, scope: dict[str, Any], receive: Any, ep: str, job_id: str) -> Any:
        engine = self.engine
        job = engine.job(ep, job_id)
        wait_s = self._wait_s(scope, STATUS_SYNC_WAIT_DEFAULT_MS)
        if job.status not in TERMINAL:
            if not await self._hold(engine.wait_terminal(job, wait_s), receive):
                return _GONE
        if job.deleted:
            raise _HttpError(404, f"job {job_id} not found")
        return engine.view(job)

    async def _stream(self, scope: dict[str, Any], receive: Any, ep: str, job_id: str) -> Any:
        engine = self.engine
        job = engine.job(ep, job_id)
        wait_s = self._wait_s(scope, STREAM_WAIT_DEFAULT_MS)
        if not job.pending and job.status not in TERMINAL:
            if not await self._hold(engine.wait_stream(job, wait_s), receive):
                return _GONE
        if job.deleted:
            raise _HttpError(404, f"job {job_id} not found")
        # A dropped or mangled answer never delivers its chunks: keep them pending, so the
        # client's next /stream gets them (no chunk lost, none twice).
        status, chunks = engine.take_chunks(job, peek=bool(scope.get("rpdash.undelivered")))
        return {"status": status, "stream": chunks}

    async def _cancel(self, scope: dict[str, Any], receive: Any, ep: str, job_id: str) -> Any:
        return Engine.ref(self.engine.cancel(ep, job_id))

    async def _retry(self, scope: dict[str, Any], receive: Any, ep: str, job_id: str) -> Any:
        return Engine.ref(self.engine.retry(ep, job_id))

    async def _purge(self, scope: dict[str, Any], receive: Any, ep: str, _: str) -> Any:
        return {"removed": self.engine.purge(ep), "status": "completed"}

    async def _health(self, scope: dict[str, Any], receive: Any, ep: str, _: str) -> Any:
        return self.engine.health(ep)

    # ------------------------------------------------------------------ /_sim admin

    async def _admin(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        if not self._authorized(scope):
            await _send(send, 401, _error_body("unauthorized: missing or invalid API key"))
            return
        method = scope["method"]
        parts = [p for p in path[len("/_sim/"):].split("/") if p]
        self.engine.sync()
        try:
            body: Any = None
            if method in ("POST", "PUT", "PATCH"):
                raw = await self._read_body(scope, receive, OTHER_MAX_BYTES)
                try:
                    body = _loads(raw) if raw.strip() else {}
                except ValueError:
                    raise _HttpError(400, "request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise _HttpError(400, "request body must be a JSON object")
            result = self._admin_route(method, parts, body, scope)
        except (_HttpError, SimError) as exc:
            await _send(send, exc.status, _error_body(exc.message))
            return
        except (ValueError, TypeError, ConfigError) as exc:
            await _send(send, 400, _error_body(str(exc)))
            return
        except _Disconnected:
            return
        await _send(send, 200, _dumps(result))

    def _admin_route(self, method: str, parts: list[str], body: Any, scope: dict[str, Any]) -> Any:
        engine, faults = self.engine, self.faults
        head = parts[0] if parts else ""
        if head == "faults" and len(parts) == 1:
            if method == "GET":
                return {"faults": faults.snapshot()}
            if method == "DELETE":
                faults.clear()
                return {"faults": []}
            if method in ("POST", "PUT"):
                body = dict(body)
                if body.pop("reset", False):
                    faults.clear()
                ep, op = body.pop("endpoint", None), body.pop("operation", None)
                if body:
                    faults.set(FaultSpec.from_dict(body), endpoint=ep, operation=op)
                return {"faults": faults.snapshot()}
        elif head == "scenario" and len(parts) == 1:
            if method == "GET":
                return self._scenario_info()
            if method in ("POST", "PUT"):
                name = body.get("name")
                if not isinstance(name, str):
                    raise _HttpError(400, 'give {"name": "<scenario>"}')
                apply_scenario(engine, faults, name, rate_limits=body.get("rate_limits"))
                self.scenario = name
                return self._scenario_info()
        elif head == "endpoints":
            if len(parts) == 1:
                if method == "GET":
                    return {"endpoints": [self._endpoint_info(e) for e in engine.endpoint_ids()]}
                if method in ("POST", "PUT"):
                    engine.add_endpoint(EndpointConfig(**body))
                    return self._endpoint_info(body["id"])
            elif len(parts) == 2:
                eid = parts[1]
                if method == "GET":
                    return self._endpoint_info(eid)
                if method in ("POST", "PUT", "PATCH"):
                    engine.update_endpoint(eid, **body)
                    return self._endpoint_info(eid)
                if method == "DELETE":
                    engine.endpoint(eid)
                    engine.remove_endpoint(eid)
                    return {"removed": eid}
            elif len(parts) == 3 and method == "GET":
                eid = parts[1]
                if parts[2] == "workers":
                    ws = engine.workers(eid)
                    return {"workers": ws, "summary": engine.health(eid)["workers"]}
                if parts[2] == "logs":
                    q = self._query(scope)
                    tail = int(q.get("tail", ["100"])[-1])
                    worker = q.get("worker", [None])[-1]
                    return {"lines": engine.logs(eid, worker, tail)}
        elif head == "rate-limits" and len(parts) == 1:
            if method in ("POST", "PUT"):
                if "enabled" in body:
                    engine.limiter.enabled = bool(body["enabled"])
                for op, lim in (body.get("limits") or {}).items():
                    engine.limiter.set_limit(op, lim["count"], lim.get("window", 10.0),
                                             lim.get("concurrent"))  # fmt: skip
                if body.get("reset"):
                    engine.limiter.restore_defaults()
            if method in ("GET", "POST", "PUT"):
                return engine.limiter.snapshot()
        elif head == "control" and len(parts) == 1:
            if method in ("POST", "PUT"):
                return self.control.configure(body)
            if method == "GET":
                return self.control.snapshot()
        elif head == "stats" and len(parts) == 1 and method == "GET":
            return {**engine.stats(), "requests": self.requests, "faults_injected": faults.injected}
        raise _HttpError(404, f"no admin route {method} /_sim/{'/'.join(parts)}")

    def _scenario_info(self) -> dict[str, Any]:
        return {
            "name": self.scenario,
            "endpoints": self.engine.endpoint_ids(),
            "scenarios": scenario_names(),
            "rate_limits": self.engine.limiter.enabled,
        }

    def _endpoint_info(self, endpoint_id: str) -> dict[str, Any]:
        ep = self.engine.endpoint(endpoint_id)
        return {"config": dataclasses.asdict(ep.cfg), "health": self.engine.health(endpoint_id)}


async def _until_disconnect(receive: Any) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


def create_app(engine: Engine, faults: Faults, api_key: str | None, *,
               scenario: str = "default") -> SimApp:  # fmt: skip
    """The ASGI app serving ``engine`` (for tests that bring their own server)."""
    return SimApp(engine, faults, api_key, scenario=scenario)


# ---------------------------------------------------------------------------- hosting


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _make_clock(clock: Clock | None, time_scale: float) -> Clock:
    if clock is not None:
        return clock
    if time_scale <= 0:
        raise ConfigError("time scale must be > 0")
    return RealClock() if time_scale == 1.0 else ScaledClock(time_scale)


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then,
    # and without it every answer (headers and body are two writes) waits ~40 ms (Nagle).
    sock = socket.socket(family, socktype, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (optional, faster) unless RPDASH_SIM_LOOP=asyncio."""
    if os.environ.get("RPDASH_SIM_LOOP", "").lower() != "asyncio":
        try:
            import uvloop

            return uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - depends on the environment
            pass
    return asyncio.new_event_loop()


class _Host:
    """uvicorn serving one app on one pre-bound socket, with a fast, clean shutdown."""

    def __init__(self, app: SimApp, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        self.stop_event: asyncio.Event | None = None

    async def run(self, on_ready: Callable[[], None]) -> None:
        import uvicorn

        _install_drop_filter()
        config = uvicorn.Config(
            self.app, lifespan="off", http="httptools", ws="none", log_level="warning",
            access_log=False, log_config=None, server_header=False, date_header=False,
            timeout_keep_alive=30,
        )  # fmt: skip
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        self.stop_event = asyncio.Event()
        await server.startup(sockets=[self.sock])
        engine = self.app.engine
        engine.attach(asyncio.get_running_loop())
        on_ready()
        try:
            await self.stop_event.wait()
        finally:
            engine.close()  # long polls answer now
            for srv in server.servers:
                srv.close()
            for conn in list(server.server_state.connections):
                conn.shutdown()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 2.0
            while server.server_state.tasks and loop.time() < deadline:
                await asyncio.sleep(0.005)
            for t in list(server.server_state.tasks):
                t.cancel()
            for conn in list(server.server_state.connections):
                conn.transport.close()
            await asyncio.sleep(0)


class SimServer:
    """The simulator in a background thread with its own event loop. Context manager.

    ``engine`` and ``faults`` live on that loop: change them through :meth:`call` /
    :meth:`set_faults` (before :meth:`start` they may be changed directly).

    With ``clock=FakeClock()`` simulated time moves only through :meth:`advance`. Give the
    simulator a FakeClock of its own: ``advance`` moves that clock from the server's thread,
    so a FakeClock shared with code running on another event loop would wake that loop's
    sleepers from the wrong thread.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = "sim-key",
                 scenario: str = "default", clock: Clock | None = None, seed: int = 0,
                 time_scale: float = 1.0, rate_limits: bool | None = None,
                 strict_policy: bool = True, allow_remote: bool = False) -> None:  # fmt: skip
        if not allow_remote and not _is_loopback(host):
            raise ConfigError(
                f"refusing to serve the simulator on {host}: not a loopback address "
                "(pass allow_remote=True to do it anyway)"
            )
        self.host = host
        self.port = port
        self.api_key = api_key
        self.clock = _make_clock(clock, time_scale)
        self.engine = Engine(self.clock, seed, strict_policy=strict_policy)
        self.faults = Faults(seed)
        self.scenario: Scenario = apply_scenario(self.engine, self.faults, get_scenario(scenario),
                                                 rate_limits=rate_limits)  # fmt: skip
        self.app = create_app(self.engine, self.faults, api_key, scenario=self.scenario.name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._host: _Host | None = None
        self._error: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v2"

    @property
    def control_url(self) -> str:
        """Base of the control plane (REST v2 under ``/v2/serverless``, ``/graphql``): the
        same origin as the data plane here; ``https://api.runpod.io`` at RunPod."""
        return self.url

    @property
    def control(self) -> ControlPlane:
        """The control plane's knobs (change them through :meth:`call`)."""
        return self.app.control

    @property
    def endpoints(self) -> list[str]:
        """Endpoint ids served now (the scenario's, plus/minus admin changes)."""
        return list(self.call(self.engine.endpoint_ids))

    def start(self) -> SimServer:
        if self._thread is not None:
            return self
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._host = _Host(self.app, sock)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,),
                                        name=f"rpdash-sim:{self.port}", daemon=True)  # fmt: skip
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("simulator did not start within 15 s")
        if self._error is not None:
            self._thread.join(1)
            self._thread = None
            raise RuntimeError(f"simulator failed to start: {self._error}") from self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = _new_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        assert self._host is not None
        try:
            loop.run_until_complete(self._host.run(ready.set))
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            log.exception("simulator thread failed")
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                self._host.sock.close()
                loop.close()
                ready.set()

    def stop(self) -> None:
        thread, loop, host = self._thread, self._loop, self._host
        if thread is None:
            return
        if loop is not None and host is not None and host.stop_event is not None and thread.is_alive():
            try:
                loop.call_soon_threadsafe(host.stop_event.set)
            except RuntimeError:  # loop already closed
                pass
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the server's loop thread and return its result
        (awaited if it is awaitable). Before start, runs it here."""
        loop = self._loop
        if loop is None or not self.running:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                raise RuntimeError("cannot await on a simulator that is not running")
            return result
        if threading.current_thread() is self._thread:
            return fn(*args, **kwargs)

        async def runner() -> Any:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(runner(), loop).result(30)

    def set_faults(self, *, endpoint: str | None = None, operation: str | None = None,
                   reset: bool = False, **fields: Any) -> None:  # fmt: skip
        """Thread-safe. ``reset`` clears every fault first; the keyword fields (see
        :class:`~rpdash.sim.faults.FaultSpec`) then replace the spec for (endpoint,
        operation) (``None`` = any). ``set_faults(reset=True)`` turns faults off."""

        def apply() -> None:
            if reset:
                self.faults.clear()
            if fields or not reset:
                self.faults.set(FaultSpec.from_dict(fields), endpoint=endpoint, operation=operation)

        self.call(apply)

    def set_mutator(self, fn: Callable[[str, str, Any], Any] | None) -> None:
        """Thread-safe: install (or remove, with None) the ``Faults.mutate`` test hook."""

        def apply() -> None:
            self.faults.mutate = fn

        self.call(apply)

    def set_rate_limit(self, operation: str, count: int, window: float = 10.0,
                       concurrent: int | None = None) -> None:  # fmt: skip
        """Thread-safe: change one operation's limit (and turn limits on)."""

        def apply() -> None:
            self.engine.limiter.set_limit(operation, count, window, concurrent)
            self.engine.limiter.enabled = True

        self.call(apply)

    def load_scenario(self, name: str, *, rate_limits: bool | None = None) -> Scenario:
        """Thread-safe: reset the engine and faults to another scenario (jobs are lost)."""
        sc: Scenario = self.call(apply_scenario, self.engine, self.faults, name, rate_limits=rate_limits)
        self.scenario = sc
        self.app.scenario = sc.name
        return sc

    def advance(self, seconds: float) -> None:
        """With a FakeClock: move simulated time, running what falls due, and let the
        answers that were waiting go out."""

        async def run() -> None:
            self.engine.advance(seconds)
            for _ in range(3):
                await asyncio.sleep(0)

        self.call(run)


# ---------------------------------------------------------------------------- foreground


def serve(host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          scenario: str = "default", seed: int = 0, time_scale: float = 1.0, *,
          allow_remote: bool = False, rate_limits: bool | None = None,
          quiet: bool = False) -> None:  # fmt: skip
    """Serve the simulator in the foreground until Ctrl+C / SIGTERM (``rpdash sim``).

    Raises ConfigError for a non-loopback host without ``allow_remote``, an unknown
    scenario, a bad time scale or a port that cannot be bound.
    """
    import signal

    sim = SimServer(host=host, port=port, api_key=api_key, scenario=scenario, seed=seed,
                    time_scale=time_scale, rate_limits=rate_limits,
                    allow_remote=allow_remote)  # fmt: skip
    sock = _bind(host, port)
    sim.port = sock.getsockname()[1]
    hosted = _Host(sim.app, sock)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def ready() -> None:
            if quiet:
                return
            auth = "key required" if api_key else "no auth"
            scale = f", time x{time_scale:g}" if time_scale != 1 else ""
            if not _is_loopback(host):
                auth += ", REACHABLE FROM OTHER HOSTS"
            print(
                f"rpdash sim: {sim.base_url} (scenario {sim.scenario.name}: "
                f"{', '.join(sim.endpoints)}; {auth}{scale}; control plane at "
                f"{sim.control_url}/v2/serverless and /graphql). Ctrl+C stops.",
                flush=True,
            )

        run_task = asyncio.ensure_future(hosted.run(ready))
        while hosted.stop_event is None and not run_task.done():
            await asyncio.sleep(0.01)

        def stop() -> None:
            if hosted.stop_event is not None:
                hosted.stop_event.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        await run_task

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    except KeyboardInterrupt:  # pragma: no cover - signal handler normally catches it
        pass
    finally:
        sock.close()
        loop.close()


__all__ = ["SimApp", "SimServer", "create_app", "serve"]
