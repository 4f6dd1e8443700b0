"""HTTP plumbing shared by the simulator's routes (data plane, control plane, admin): JSON
in and out, errors, body reading with size limits, long polls that notice a client leaving,
and the request gate (API key, faults) every route family passes through."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs

from rpdash.sim.faults import Faults

MB = 1_000_000
OTHER_MAX_BYTES = 1 * MB
DRAIN_MAX_BYTES = 100 * MB


class Gate(Protocol):
    """What every route family asks of the app: the key check and the fault injector."""

    faults: Faults
    api_key: str | None

    def _authorized(self, scope: dict[str, Any]) -> bool: ...


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


async def _until_disconnect(receive: Any) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


class RequestHelpers:
    """Query parameters, bodies and long polls, for the route mixins."""


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
