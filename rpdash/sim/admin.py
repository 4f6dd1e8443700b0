"""The simulator's own admin routes ``/_sim/...`` (tests and the demo; not RunPod's API).
Mixed into :class:`~rpdash.sim.server.SimApp`."""

from __future__ import annotations

import dataclasses
from typing import Any

from rpdash.core.errors import ConfigError
from rpdash.sim.control import ControlPlane
from rpdash.sim.engine import EndpointConfig, Engine, SimError
from rpdash.sim.faults import FaultSpec, Faults
from rpdash.sim.http import (
    OTHER_MAX_BYTES, RequestHelpers, _Disconnected, _dumps, _error_body, _HttpError, _loads, _send,
)  # fmt: skip
from rpdash.sim.scenarios import apply_scenario, scenario_names


class AdminRoutes(RequestHelpers):
    """``/_sim/faults``, ``/_sim/scenario``, ``/_sim/endpoints...``, ``/_sim/rate-limits``,
    ``/_sim/control``, ``/_sim/stats``; POST ``/_sim/endpoints/{id}/release``
    ``{"bad", "note"}`` publishes a release, POST ``/_sim/endpoints/{id}/capacity``
    ``{"short_for": s | null}`` starts or ends a GPU shortage. An endpoint's info carries its config, health,
    release version and the platform's notices (crash-loop and idle cut-backs)."""

    engine: Engine
    faults: Faults
    control: ControlPlane
    scenario: str
    requests: int
    neutral_404: bool


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
                apply_scenario(engine, faults, name, rate_limits=body.get("rate_limits"),
                               pickup=body.get("pickup"))  # fmt: skip
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
            elif len(parts) == 3 and method == "POST" and parts[2] in ("release", "capacity"):
                eid = parts[1]
                if parts[2] == "release":
                    engine.release(eid, bad=bool(body.get("bad")), note=str(body.get("note", "")))
                else:
                    short = body.get("short_for")
                    engine.set_capacity(eid, None if short is None else float(short))
                return self._endpoint_info(eid)
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
                body = dict(body)
                if "neutral_404" in body:
                    self.neutral_404 = bool(body.pop("neutral_404"))
                return {**self.control.configure(body), "neutral_404": self.neutral_404}
            if method == "GET":
                return {**self.control.snapshot(), "neutral_404": self.neutral_404}
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
        return {"config": dataclasses.asdict(ep.cfg), "health": self.engine.health(endpoint_id),
                "version": ep.version, "notices": list(ep.notices)}  # fmt: skip
