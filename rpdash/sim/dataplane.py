"""The data-plane routes ``/v2/{endpoint_id}/{operation}[/{job_id}]`` (runpod-api.md
sections 3 and 6; the table and the choices are in server.py's docstring). Mixed into
:class:`~rpdash.sim.server.SimApp`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from rpdash.sim.engine import TERMINAL, Engine, SimError
from rpdash.sim.faults import OK, Decision, Faults
from rpdash.sim.http import (
    _GONE, MB, RequestHelpers, _Disconnected, _dumps, _error_body, _HttpError, _retry_after, _send,
)  # fmt: skip

RUN_MAX_BYTES = 10 * MB
RUNSYNC_MAX_BYTES = 20 * MB
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
NOT_FOUND_NEUTRAL = "not found"


class DataPlaneRoutes(RequestHelpers):
    """The job operations over HTTP. Needs ``engine``, ``faults`` and ``_authorized``."""

    engine: Engine
    faults: Faults
    _handlers: dict[str, Callable[..., Awaitable[Any]]]
    #: one wording for every data-plane 404 (see ``_not_found``); POST /_sim/control
    neutral_404 = True

    def _authorized(self, scope: dict[str, Any]) -> bool:
        raise NotImplementedError


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
            await self._answer(send, 404, {"error": self._not_found(f"endpoint {ep_id} not found")},
                               decision)  # fmt: skip
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
            msg = self._not_found(exc.message) if exc.status == 404 else exc.message
            await self._answer(send, exc.status, {"error": msg}, decision,
                               _retry_after(exc.retry_after) if exc.status == 429 else None)  # fmt: skip
            return
        except _HttpError as exc:
            msg = self._not_found(exc.message) if exc.status == 404 else exc.message
            await self._answer(send, exc.status, {"error": msg}, decision, exc.headers)
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

    def _wait_s(self, scope: dict[str, Any], default_ms: int) -> float:
        ms = self._int_param(scope, "wait")
        if ms is None:
            ms = default_ms
        return min(WAIT_MAX_MS, max(WAIT_MIN_MS, ms)) / 1000

    def _not_found(self, message: str) -> str:
        """404 bodies are not documented (runpod-api.md 8, 16): with ``neutral_404`` every
        data-plane 404 says the same, so a client cannot tell an unknown endpoint from an
        unknown job by the wording (it must ask ``/health``)."""
        return NOT_FOUND_NEUTRAL if self.neutral_404 else message

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
