"""The simulated control plane's updates of an endpoint's scaling (runpod-api.md 10.4):
REST v2 ``PATCH /v2/serverless/{id}`` (sparse) and GraphQL ``saveEndpoint`` with ``id``
(not sparse). :class:`EndpointUpdates` is held by :class:`~rpdash.sim.control.ControlPlane`,
which routes both requests here.

REST v2 PATCH, as documented:
- Sparse: only the fields in the body change. ``workers`` ``{min, max, idleTimeout}``
  (ints, ``min``/``max`` >= 0, ``idleTimeout`` 1-3600); ``scaling`` ``{"type":
  "QUEUE_DELAY", "queueDelay": >= 0.5}`` or ``{"type": "REQUEST_COUNT", "requestCount":
  int >= 1}`` (the type is required); ``name``, ``timeout`` (ms), ``flashboot``, and the
  other documented fields (kept as sent, shown by later reads, no effect on the engine).
- Unknown keys (also ``type``) and schema violations: **422** ``{"title", "status",
  "detail": "Request validation failed.", "errors": ["$.workers.min: ..."]}``.
- Rule conflicts: **400** (``idleTimeout`` for an endpoint that will scale on
  REQUEST_COUNT).
- **200** with the whole updated Endpoint.

Our choices where the docs say nothing:
- ``min > max`` (after merging the body with the current values) is a 400 rule conflict.
- ``max`` above the account's worker cap (the engine's ``account_max_workers``) is refused
  with RunPod's text, seen through GraphQL in 2024 (runpodctl issue 117): "Your worker
  concurrency cannot go beyond the maximum limit of (5). Please contact support if you wish
  to scale past this number." [unconfirmed]: REST v2's status for it (we answer 400, the
  text as ``detail``), and whether RunPod compares the one endpoint's max or the sum of
  every endpoint's max with the cap (we compare the one endpoint's max: the worker-cap
  scenario's endpoints sum above the cap from the start). Nothing changes when refused.
- The change reaches the engine at once: ``max`` 0 stops new workers; lowering ``max``
  stops, at once, the live workers beyond it that hold no job (not yet ready ones first,
  then idle ones); workers beyond it running a job finish that job, take no other one
  from the queue and then stop (a backlog must not keep them alive forever: what RunPod
  does with them is [unconfirmed]); raising ``max`` lets the scaler start workers for the
  waiting jobs now. The freed slots of the account's cap go to endpoints held back by it.
- A ``drop`` fault (operation ``serverless``) on a PATCH applies the change, then cuts the
  answer mid-body: a client cannot know whether its change was applied.
- Knob ``patch_status``: answer every PATCH with that status (405 = "this route is not
  offered", to exercise a client's GraphQL fallback); reads are unaffected.
- The one extra load-balancer endpoint (``lb-gateway``) cannot be changed here (400).

GraphQL ``saveEndpoint(input: $input)``: the input is read from ``variables.input`` (an
inline input object in the query text is not parsed). With ``id``: **not sparse**, as
RunPod's MCP server measured: ``workersMin``, ``workersMax``, ``idleTimeout``,
``scalerType`` and ``scalerValue`` left out are reset to the defaults runpod-python's
``create_endpoint`` uses (0, 3, 5, QUEUE_DELAY, 4); other fields left out (name, GPUs,
execution timeout) stay (our choice). Without ``id`` (a new endpoint) the simulator
answers an error. Errors come as HTTP 200 with ``errors[]``. The answer is
``{"data": {"saveEndpoint": {...}}}`` with every field of the endpoint list (the
selection set is not honoured).
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any

from rpdash.sim.http import _dumps, _loads, _send
from rpdash.sim.model import EndpointConfig

__all__ = ["EndpointUpdates", "UpdateRefused", "cap_refusal"]

_PROBLEM = b"application/problem+json"
_WORKER_KEYS = ("min", "max", "idleTimeout")
#: documented PATCH fields other than workers/scaling: kept as sent, no engine effect
_OTHER_KEYS = frozenset({"name", "gpu", "cpu", "dataCenterIds", "networkVolumes", "timeout",
                         "flashboot", "image", "args", "disk", "ports", "env", "registry",
                         "templateId"})  # fmt: skip
#: runpod-python create_endpoint's defaults: what a non-sparse saveEndpoint resets to
GRAPHQL_DEFAULTS: dict[str, Any] = {"workersMin": 0, "workersMax": 3, "idleTimeout": 5,
                                    "scalerType": "QUEUE_DELAY", "scalerValue": 4}  # fmt: skip
_ENGINE_SCALER = {"scaler_type", "scaler_value"} <= {f.name for f in fields(EndpointConfig)}


class UpdateRefused(Exception):
    """An update the platform refuses: HTTP ``status``, ``detail``, schema ``errors``."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, int | float) and not isinstance(v, bool)) and math.isfinite(v)


class EndpointUpdates:
    """Validates and applies scaling updates for ``control`` (a ControlPlane)."""

    def __init__(self, control: Any) -> None:
        self.control = control
        #: answer every PATCH with this HTTP status (tests of a client's fallback)
        self.patch_status: int | None = None
        #: PATCH requests that reached the route, and saveEndpoint mutations
        self.patches = 0
        self.saves = 0

    # ------------------------------------------------------------------ REST v2

    async def handle_patch(self, scope: dict[str, Any], receive: Any, send: Any,
                           endpoint_id: str, decision: Any = None) -> None:  # fmt: skip
        """``PATCH /v2/serverless/{id}``: the whole answer (200, 400, 404, 405, 422)."""
        self.patches += 1
        try:
            if self.patch_status is not None:
                raise UpdateRefused(self.patch_status, "PATCH is not offered here")
            body = await _read_json(receive)
            self.control.engine.sync()
            self.apply_rest(endpoint_id, body)
        except UpdateRefused as exc:
            problem = {"title": _TITLES.get(exc.status, "Error"), "status": exc.status,
                       "detail": exc.detail}  # fmt: skip
            if exc.errors:
                problem["errors"] = exc.errors
            await _send(send, exc.status, _dumps(problem), None, _PROBLEM)
            return
        payload = _dumps(self.control.endpoint_rest(endpoint_id))
        if decision is not None and getattr(decision, "kind", "ok") == "drop":
            h = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": h})
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            return  # uvicorn closes the connection mid-body: applied, but the client cannot tell
        await _send(send, 200, payload)

    def apply_rest(self, endpoint_id: str, body: Any) -> None:
        """Validate a PATCH body against the endpoint and apply it (UpdateRefused if not)."""
        self._known(endpoint_id)
        if not isinstance(body, dict):
            raise UpdateRefused(422, "Request validation failed.", ["$: expected object"])
        errors = [f"$: additional properties '{k}' not allowed" for k in body
                  if k not in _OTHER_KEYS and k not in ("workers", "scaling")]  # fmt: skip
        workers = body.get("workers", {})
        if not isinstance(workers, dict):
            errors.append("$.workers: expected object")
            workers = {}
        errors += [f"$.workers: additional properties '{k}' not allowed" for k in workers
                   if k not in _WORKER_KEYS]  # fmt: skip
        for k in ("min", "max"):
            if k in workers and not (_is_int(workers[k]) and workers[k] >= 0):
                errors.append(f"$.workers.{k}: must be an integer >= 0")
        if "idleTimeout" in workers and not (_is_int(workers["idleTimeout"]) and 1 <= workers["idleTimeout"] <= 3600):
            errors.append("$.workers.idleTimeout: must be an integer from 1 to 3600")
        scaling = body.get("scaling")
        if scaling is not None:
            errors += _scaling_errors(scaling)
        if "timeout" in body and not (_is_int(body["timeout"]) and body["timeout"] > 0):
            errors.append("$.timeout: must be a positive integer (ms)")
        if "name" in body and not (isinstance(body["name"], str) and body["name"].strip()):
            errors.append("$.name: must be a non-empty string")
        if errors:
            raise UpdateRefused(422, "Request validation failed.", errors)
        current = self.control.endpoint_rest(endpoint_id)
        cur_w = current.get("workers") or {}
        new_type = scaling["type"] if scaling else (current.get("scaling") or {}).get("type")
        if "idleTimeout" in workers and new_type == "REQUEST_COUNT":
            raise UpdateRefused(400, "workers.idleTimeout cannot be set for a queue endpoint "
                                     "scaling on REQUEST_COUNT")  # fmt: skip
        lo = workers.get("min", cur_w.get("min", 0))
        hi = workers.get("max", cur_w.get("max", 0))
        if lo > hi:
            raise UpdateRefused(400, f"workers.min ({lo}) must not be greater than workers.max ({hi})")
        scaler = None
        if scaling:
            scaler = (scaling["type"], scaling.get("queueDelay", scaling.get("requestCount")))
        self.apply(endpoint_id, workers_min=workers.get("min"), workers_max=workers.get("max"),
                   idle_timeout=workers.get("idleTimeout"), scaler=scaler,
                   timeout_ms=body.get("timeout"))  # fmt: skip
        meta = {k: v for k, v in body.items() if k in _OTHER_KEYS and k != "timeout"}
        if meta:
            self.control.meta.setdefault(endpoint_id, {}).update(meta)

    # ------------------------------------------------------------------ GraphQL

    async def handle_graphql(self, send: Any, body: dict[str, Any]) -> None:
        """``saveEndpoint``: HTTP 200 with ``data.saveEndpoint`` or ``errors``."""
        self.saves += 1
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        inp = variables.get("input")
        try:
            if not isinstance(inp, dict):
                raise UpdateRefused(200, "saveEndpoint needs variables.input (an EndpointInput object)")
            endpoint_id = inp.get("id")
            if not endpoint_id:
                raise UpdateRefused(200, "the simulator does not create endpoints: give the id of one")
            self.control.engine.sync()
            self.apply_graphql(str(endpoint_id), inp)
        except UpdateRefused as exc:
            await _send(send, 200, _dumps({"errors": [{"message": exc.detail}]}))
            return
        ep = next(e for e in self.control.endpoints_graphql() if e["id"] == endpoint_id)
        await _send(send, 200, _dumps({"data": {"saveEndpoint": ep}}))

    def apply_graphql(self, endpoint_id: str, inp: dict[str, Any]) -> None:
        """A full replace of the scaling fields: what is left out gets the default."""
        self._known(endpoint_id)
        v = {k: inp.get(k, d) if inp.get(k) is not None else d for k, d in GRAPHQL_DEFAULTS.items()}
        for k in ("workersMin", "workersMax"):
            if not _is_int(v[k]) or v[k] < 0:
                raise UpdateRefused(200, f"{k} must be an integer >= 0")
        if not _is_number(v["scalerValue"]) or v["scalerValue"] < (1 if v["scalerType"] == "REQUEST_COUNT" else 0):
            raise UpdateRefused(200, "scalerValue must be a number >= 0 (>= 1 for REQUEST_COUNT)")
        if not _is_int(v["idleTimeout"]) or not 1 <= v["idleTimeout"] <= 3600:
            raise UpdateRefused(200, "idleTimeout must be an integer from 1 to 3600")
        if v["scalerType"] not in ("QUEUE_DELAY", "REQUEST_COUNT"):
            raise UpdateRefused(200, 'scalerType must be "QUEUE_DELAY" or "REQUEST_COUNT"')
        if v["workersMin"] > v["workersMax"]:
            raise UpdateRefused(200, f"workersMin ({v['workersMin']}) must not be greater than "
                                     f"workersMax ({v['workersMax']})")  # fmt: skip
        timeout = inp.get("executionTimeoutMs")
        self.apply(endpoint_id, workers_min=v["workersMin"], workers_max=v["workersMax"],
                   idle_timeout=v["idleTimeout"], scaler=(v["scalerType"], v["scalerValue"]),
                   timeout_ms=timeout if _is_int(timeout) and timeout > 0 else None)  # fmt: skip
        if isinstance(inp.get("name"), str) and inp["name"].strip():
            self.control.meta.setdefault(endpoint_id, {})["name"] = inp["name"]

    # ------------------------------------------------------------------ the engine

    def apply(self, endpoint_id: str, *, workers_min: int | None = None,
              workers_max: int | None = None, idle_timeout: int | None = None,
              scaler: tuple[str, Any] | None = None, timeout_ms: int | None = None) -> None:  # fmt: skip
        """Change the engine's endpoint at once; stop surplus workers that hold no job."""
        engine = self.control.engine
        changes: dict[str, Any] = {}
        if workers_min is not None:
            changes["workers_min"] = workers_min
        if workers_max is not None:
            changes["workers_max"] = workers_max
        if idle_timeout is not None:
            changes["idle_timeout"] = float(idle_timeout)
        if timeout_ms is not None:
            changes["execution_timeout_ms"] = timeout_ms
        if scaler is not None:
            kind, value = scaler
            if _ENGINE_SCALER:  # the engine scales by type and value itself
                changes["scaler_type"], changes["scaler_value"] = kind, value
            else:  # only shown: the engine's scaler has no types
                key = "requestCount" if kind == "REQUEST_COUNT" else "queueDelay"
                self.control.meta.setdefault(endpoint_id, {})["scaling"] = {"type": kind, key: value}
        ep = engine.endpoint(endpoint_id)
        cap = getattr(engine, "account_max_workers", None)
        if workers_max is not None and cap is not None and workers_max > cap:
            raise UpdateRefused(400, cap_refusal(cap))
        try:
            replace(ep.cfg, **changes)  # the engine's own checks, before anything changes
        except ValueError as exc:
            raise UpdateRefused(400, str(exc)) from None
        engine.update_endpoint(endpoint_id, **changes)  # workers above a lowered max stop there

    def _known(self, endpoint_id: str) -> None:
        if any(e.get("id") == endpoint_id for e in self.control.extra):
            raise UpdateRefused(400, "the simulator does not change load-balancer endpoints")
        if not self.control.engine.has_endpoint(endpoint_id):
            raise UpdateRefused(404, f"endpoint {endpoint_id} not found")


def cap_refusal(cap: int) -> str:
    """RunPod's text for a max workers above the account's cap (runpodctl issue 117)."""
    return (f"Your worker concurrency cannot go beyond the maximum limit of ({cap}). "
            "Please contact support if you wish to scale past this number.")


_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           422: "Unprocessable Entity"}  # fmt: skip


def _scaling_errors(scaling: Any) -> list[str]:
    if not isinstance(scaling, dict):
        return ["$.scaling: expected object"]
    kind = scaling.get("type")
    if kind == "QUEUE_DELAY":
        key, ok = "queueDelay", lambda v: _is_number(v) and v >= 0.5
        want = "a number >= 0.5"
    elif kind == "REQUEST_COUNT":
        key, ok = "requestCount", lambda v: _is_int(v) and v >= 1
        want = "an integer >= 1"
    else:
        return ['$.scaling.type: must be "QUEUE_DELAY" or "REQUEST_COUNT"']
    errors = [f"$.scaling: additional properties '{k}' not allowed" for k in scaling if k not in ("type", key)]
    if key not in scaling:
        errors.append(f"$.scaling: missing property '{key}'")
    elif not ok(scaling[key]):
        errors.append(f"$.scaling.{key}: must be {want}")
    return errors


async def _read_json(receive: Any) -> Any:
    raw = b""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise UpdateRefused(400, "the client left before sending the body")
        raw += msg.get("body", b"")
        if len(raw) > 1_000_000:
            raise UpdateRefused(413, "body too large")
        if not msg.get("more_body", False):
            break
    try:
        return _loads(raw or b"null")
    except ValueError:
        raise UpdateRefused(400, "the body is not JSON") from None
