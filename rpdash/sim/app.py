"""The simulator's ASGI application: one lean hand-routed app serving the data plane
(dataplane.py), the control plane (control.py) and the admin routes (admin.py) on one port."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from rpdash.sim.admin import AdminRoutes
from rpdash.sim.control import ControlPlane
from rpdash.sim.dataplane import DataPlaneRoutes
from rpdash.sim.engine import Engine
from rpdash.sim.faults import Faults
from rpdash.sim.http import _error_body, _send


class SimApp(DataPlaneRoutes, AdminRoutes):
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


def create_app(engine: Engine, faults: Faults, api_key: str | None, *,
               scenario: str = "default") -> SimApp:  # fmt: skip
    """The ASGI app serving ``engine`` (for tests that bring their own server)."""
    return SimApp(engine, faults, api_key, scenario=scenario)
