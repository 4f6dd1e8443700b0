"""Client for RunPod's control plane: the endpoint list, workers and live worker logs.

RunPod keeps these apart from the job data plane: REST v2 at ``https://api.runpod.io/v2``
(``/serverless``, ``/serverless/{id}``, ``/serverless/{id}/workers``, and the log tail
``/serverless/{id}/workers/{workerId}/logs`` as Server-Sent Events) and GraphQL at
``https://api.runpod.io/graphql`` (``myself { endpoints }``). ``ControlClient`` takes the
*origin* (``https://api.runpod.io``, or a simulator's ``http://127.0.0.1:PORT``) and derives
both; :func:`control_url_for` gives the origin that goes with a data-plane base URL.

Why it works this way:

- **The same key rules as the data client.** The key travels only in ``Authorization:
  Bearer``; never over plain http to a host that is not loopback (``InsecureTransport``,
  unless ``allow_insecure_http``); never in a message (server text is made inert for a
  terminal and scrubbed of the key).
- **REST v2 first, GraphQL as the fallback** for the endpoint list: REST v2 is what the
  docs prefer, but some accounts/hosts may not have it (a third-party CLI still calls it
  beta). A 404, 405, 501, 5xx or an answer that is not the documented shape falls back to
  GraphQL; a 401/403 (same key there), a 429 or an unreachable host does not.
- **Reads are retried** (they change nothing) on transient errors with backoff on the
  injected clock; ``Retry-After`` is honoured.
- **Log tails are resumable.** Each event's ``id`` is remembered; when a stream drops or
  the server closes it, the tail reconnects with ``Last-Event-ID`` so nothing is lost or
  repeated (server ``retry:`` hints are honoured, failures back off up to 30 s). When the
  server closes a stream, the worker list says whether the worker is gone; a gone worker
  (not listed, or 404 on reconnect) ends its tail quietly.
- **"Tail without follow" ends on a quiet moment.** The API has no end-of-backlog marker,
  so a non-following tail stops when the server closes the stream, or when no event came
  for ``idle`` seconds (default 2 s, on the injected clock), or after ``backlog_timeout``.
- **The endpoint-wide tail is a merge** (RunPod documents no endpoint-wide stream): one
  per-worker tail for every worker the worker list shows (at most ``max_streams``); the
  backlogs (``tail`` lines each) are merged by timestamp and cut to the last ``tail``
  lines overall; then live lines pass in arrival order; the worker list is re-read every
  ``refresh`` seconds and new workers' tails are opened from their first line (cold
  starts are worth seeing).

Log levels are not part of REST v2's event (``{source, line, ts}``); :func:`parse_line`
reads them from the line: a JSON line from runpod-python (``{"requestId", "message",
"level"}``), a ``LEVEL | message`` / ``[LEVEL]`` / ``level=...`` prefix, or a traceback.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from rpdash.api._owner import HttpOwner
from rpdash.api.client import NO_USERINFO, sanitize
from rpdash.core.clock import Clock, RealClock
from rpdash.core.redact import redact
from rpdash.core.errors import (
    ApiError,
    AuthError,
    BadRequest,
    BadResponse,
    ConfigError,
    InsecureTransport,
    InvalidInput,
    NotFound,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
from rpdash.core.models import is_safe_id

__all__ = [
    "DEFAULT_CONTROL_URL",
    "ControlClient",
    "EndpointInfo",
    "LEVELS",
    "LogLine",
    "WorkerInfo",
    "WorkerList",
    "control_url_for",
    "level_at_least",
    "log_matches",
    "parse_line",
    "parse_since",
]

DEFAULT_CONTROL_URL = "https://api.runpod.io"
RUNPOD_DATA_HOST = "api.runpod.ai"
TAIL_DEFAULT = 100
TAIL_MAX = 5000
#: levels from least to most severe; a filter "warn" keeps warn and error
LEVELS = ("debug", "info", "warn", "error")

GRAPHQL_ENDPOINTS_QUERY = (
    "query Endpoints { myself { endpoints { id name type templateId gpuIds gpuCount "
    "workersMin workersMax workersStandby idleTimeout scalerType scalerValue networkVolumeId "
    "locations version createdAt } } }"
)

_FALLBACK_CODES = frozenset({404, 405, 501})
_MAX_BACKOFF_S = 30.0


# ---------------------------------------------------------------------------- URLs


def control_url_for(data_base_url: str | None) -> str:
    """The control-plane origin for a data-plane base URL.

    RunPod's data plane (``https://api.runpod.ai/v2``) goes with ``https://api.runpod.io``;
    any other base (the simulator, a proxy) serves the control plane on its own origin
    (``scheme://host:port``), which is how rpdash's simulator is laid out."""
    if not data_base_url:
        return DEFAULT_CONTROL_URL
    parts = urlsplit(data_base_url.strip())
    if not parts.scheme or not parts.netloc:
        return DEFAULT_CONTROL_URL
    if (parts.hostname or "").lower() == RUNPOD_DATA_HOST:
        return DEFAULT_CONTROL_URL
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------- models


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == v and abs(v) < 1e15:
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v.strip())
    return None


def _str(v: Any) -> str | None:
    if v is None or isinstance(v, dict | list):
        return None
    return str(v)


def _strs(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(p.strip() for p in v.split(",") if p.strip())
    if isinstance(v, list | tuple):
        return tuple(str(p) for p in v if p is not None and str(p).strip())
    return ()


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One endpoint as the picker shows it (from REST v2 or GraphQL; ``raw`` keeps all)."""

    id: str
    name: str
    #: "QUEUE" or "LOAD_BALANCER" (GraphQL's QB/LB are mapped); other values kept as sent
    type: str = "QUEUE"
    gpus: tuple[str, ...] = ()
    gpu_count: int | None = None
    cpu: bool = False
    workers_min: int | None = None
    workers_max: int | None = None
    idle_timeout_s: int | None = None
    execution_timeout_ms: int | None = None
    scaler_type: str | None = None
    scaler_value: int | None = None
    flashboot: str | None = None
    data_centers: tuple[str, ...] = ()
    version: int | None = None
    created_at: str | None = None
    #: "rest" or "graphql": which API answered
    source: str = "rest"
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def queue(self) -> bool:
        return self.type == "QUEUE"

    @property
    def gpu_text(self) -> str:
        """``"ADA_24, AMPERE_16 x1"``, ``"CPU"`` or ``"-"``."""
        if self.cpu:
            return "CPU"
        if not self.gpus:
            return "-"
        n = f" x{self.gpu_count}" if self.gpu_count else ""
        return ", ".join(self.gpus) + n

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        d["gpus"] = list(self.gpus)
        d["data_centers"] = list(self.data_centers)
        return d

    @classmethod
    def from_rest(cls, d: dict[str, Any]) -> EndpointInfo:
        gpu = d.get("gpu") if isinstance(d.get("gpu"), dict) else {}
        workers = d.get("workers") if isinstance(d.get("workers"), dict) else {}
        scaling = d.get("scaling") if isinstance(d.get("scaling"), dict) else {}
        value = None
        for k, v in scaling.items():
            if k != "type":
                value = _int(v)
                break
        typ = str(d.get("type") or "QUEUE").upper()
        return cls(
            id=str(d["id"]),
            name=_str(d.get("name")) or str(d["id"]),
            type=_TYPE.get(typ, typ),
            gpus=_strs(gpu.get("pools") or gpu.get("gpuTypeIds")),
            gpu_count=_int(gpu.get("count")),
            cpu=bool(d.get("cpu")) and not gpu,
            workers_min=_int(workers.get("min")),
            workers_max=_int(workers.get("max")),
            idle_timeout_s=_int(workers.get("idleTimeout")),
            execution_timeout_ms=_int(d.get("timeout")),
            scaler_type=_str(scaling.get("type")),
            scaler_value=value,
            flashboot=_str(d.get("flashboot")),
            data_centers=_strs(d.get("dataCenterIds")),
            version=_int(d.get("version")),
            created_at=_str(d.get("createdAt")),
            source="rest",
            raw=d,
        )

    @classmethod
    def from_graphql(cls, d: dict[str, Any]) -> EndpointInfo:
        typ = str(d.get("type") or "QB").upper()
        return cls(
            id=str(d["id"]),
            name=_str(d.get("name")) or str(d["id"]),
            type=_TYPE.get(typ, typ),
            gpus=_strs(d.get("gpuIds")),
            gpu_count=_int(d.get("gpuCount")),
            workers_min=_int(d.get("workersMin")),
            workers_max=_int(d.get("workersMax")),
            idle_timeout_s=_int(d.get("idleTimeout")),
            execution_timeout_ms=_int(d.get("executionTimeoutMs")),
            scaler_type=_str(d.get("scalerType")),
            scaler_value=_int(d.get("scalerValue")),
            data_centers=_strs(d.get("locations")),
            version=_int(d.get("version")),
            created_at=_str(d.get("createdAt")),
            source="graphql",
            raw=d,
        )


_TYPE = {"QB": "QUEUE", "QUEUE": "QUEUE", "LB": "LOAD_BALANCER", "LOAD_BALANCER": "LOAD_BALANCER"}


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One active worker of an endpoint (REST v2 worker list)."""

    id: str
    #: RUNNING | IDLE | INITIALIZING | THROTTLED | UNHEALTHY (OUTDATED...) as sent, upper case
    status: str
    is_stale: bool = False
    version: int | None = None
    gpu_count: int | None = None
    gpu_type: str | None = None
    data_center: str | None = None
    uptime_s: int | None = None
    started_at: str | None = None
    image: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def started_epoch(self) -> float | None:
        return _epoch(self.started_at)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("raw")
        return d

    @classmethod
    def from_rest(cls, d: dict[str, Any]) -> WorkerInfo:
        return cls(
            id=str(d["id"]),
            status=str(d.get("status") or "UNKNOWN").upper(),
            is_stale=bool(d.get("isStale")),
            version=_int(d.get("version")),
            gpu_count=_int(d.get("gpuCount")),
            gpu_type=_str(d.get("gpuTypeId")),
            data_center=_str(d.get("dataCenterId")),
            uptime_s=_int(d.get("uptimeSeconds")),
            started_at=_str(d.get("startedAt")),
            image=_str(d.get("image")),
            raw=d,
        )


@dataclass(frozen=True, slots=True)
class WorkerList:
    workers: list[WorkerInfo]
    #: running, idle, initializing, throttled, unhealthy, total (missing keys are 0)
    summary: dict[str, int]
    endpoint_version: int | None = None

    def count(self, status: str) -> int:
        return sum(1 for w in self.workers if w.status == status.upper())

    def to_dict(self) -> dict[str, Any]:
        return {
            "workers": [w.to_dict() for w in self.workers],
            "summary": dict(self.summary),
            "endpointVersion": self.endpoint_version,
        }


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a worker's log. ``level``/``message``/``request_id`` are read from
    ``line`` (see :func:`parse_line`); ``ts`` is epoch seconds when the server's time
    could be read."""

    worker_id: str
    source: str
    line: str
    ts: float | None
    ts_text: str
    event_id: str | None
    level: str
    message: str
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def build(cls, worker_id: str, data: dict[str, Any], event_id: str | None) -> LogLine:
        line = data.get("line")
        line = line if isinstance(line, str) else json.dumps(line) if line is not None else ""
        ts_raw = data.get("ts")
        ts_text = "" if ts_raw is None else str(ts_raw)
        ts = float(ts_raw) if isinstance(ts_raw, int | float) and not isinstance(ts_raw, bool) else _epoch(ts_text)
        level, message, request_id = parse_line(line)
        return cls(worker_id, str(data.get("source") or "container"), line, ts, ts_text,
                   event_id, level, message, request_id)  # fmt: skip


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        t = text.strip()
        if t.endswith(("Z", "z")):
            t = t[:-1] + "+00:00"
        dt = datetime.fromisoformat(t)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
    except ValueError:
        return None


# ---------------------------------------------------------------------------- log lines

_PREFIX = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[T ][\d:.,]+Z?\s*)?[\[(]?"
    r"(TRACE|DEBUG|INFO|NOTICE|TIP|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)[\])]?"
    r"(?=[\s|:\]-]|$)\s*[|:\-]?\s*",
    re.IGNORECASE,
)
_LOGFMT = re.compile(r"\blevel=\"?(\w+)", re.IGNORECASE)
_LEVEL_WORDS = {
    "trace": "debug", "debug": "debug", "info": "info", "notice": "info", "tip": "info",
    "warn": "warn", "warning": "warn", "error": "error", "err": "error",
    "critical": "error", "fatal": "error", "panic": "error",
}  # fmt: skip


def _level_word(word: Any) -> str | None:
    return _LEVEL_WORDS.get(str(word).strip().lower()) if word is not None else None


def parse_line(line: str) -> tuple[str, str, str | None]:
    """``(level, message, request_id)`` of one log line; level is one of :data:`LEVELS`
    ("info" when the line does not say)."""
    s = line.strip()
    if s.startswith("{") and s.endswith("}"):
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("message" in obj or "msg" in obj):
            msg = obj.get("message", obj.get("msg"))
            lvl = _level_word(obj.get("level", obj.get("severity"))) or "info"
            rid = obj.get("requestId") or obj.get("request_id") or obj.get("job_id")
            return lvl, msg if isinstance(msg, str) else json.dumps(msg), (str(rid) if rid else None)
    m = _PREFIX.match(s)
    if m:
        return _level_word(m.group(1)) or "info", s[m.end():], None
    m = _LOGFMT.search(s)
    if m and _level_word(m.group(1)):
        return _level_word(m.group(1)) or "info", s, None
    if s.startswith("Traceback (most recent call last)") or re.match(r"^\w*(Error|Exception): ", s):
        return "error", s, None
    return "info", s, None


def level_at_least(level: str, minimum: str | None) -> bool:
    """True when ``level`` is ``minimum`` or more severe (None keeps everything)."""
    if not minimum:
        return True
    want = _level_word(minimum) or minimum.lower()
    if want not in LEVELS:
        raise InvalidInput(f"unknown log level {sanitize(minimum, limit=20)!r}: use one of {', '.join(LEVELS)}")
    return LEVELS.index(level if level in LEVELS else "info") >= LEVELS.index(want)


def log_matches(line: LogLine, *, level: str | None = None, grep: str | None = None,
                source: str | None = None, request_id: str | None = None) -> bool:  # fmt: skip
    """The console's log filters: minimum level, text (case-insensitive, in the raw line),
    source, job id."""
    if source and line.source != source:
        return False
    if not level_at_least(line.level, level):
        return False
    if request_id and line.request_id != request_id and request_id not in line.line:
        return False
    return not grep or grep.lower() in line.line.lower()


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)


def parse_since(value: str | float | datetime, now: float) -> str:
    """``since`` for the log API as RFC 3339: a datetime, epoch seconds, RFC 3339 text, or
    a duration back from ``now`` (``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``)."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        ts = dt.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ts = float(value)
    elif isinstance(value, str):
        m = _RELATIVE.match(value)
        if m:
            n, unit = float(m.group(1)), m.group(2).lower()
            ts = now - n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        else:
            got = _epoch(value)
            if got is None:
                raise InvalidInput(
                    f"cannot read since={sanitize(value, limit=40)!r}: give a date-time like "
                    "2026-08-01T12:00:00Z or a duration like 10m, 2h"
                )
            ts = got
    else:
        raise InvalidInput("since must be a date-time, epoch seconds or a duration like 10m")
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------- SSE


@dataclass(slots=True)
class _Event:
    id: str | None = None
    data: str | None = None
    event: str | None = None
    retry: int | None = None


class _Idle:
    __repr__ = lambda self: "IDLE"  # noqa: E731


_IDLE = _Idle()


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[_Event]:
    """Parse a text/event-stream (WHATWG rules: ``field: value`` lines, blank line ends an
    event, ``:`` comments, multi-line ``data`` joined with newlines, ``id`` persists)."""
    data: list[str] = []
    ev = _Event()
    seen = False
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if seen:
                ev.data = "\n".join(data) if data else None
                yield ev
            data = []
            ev = _Event()
            seen = False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
            seen = True
        elif name == "id":
            if "\x00" not in value:
                ev.id = value
                seen = True
        elif name == "event":
            ev.event = value
            seen = True
        elif name == "retry" and value.isdigit():
            ev.retry = int(value)
            seen = True
    if seen and data:  # a last event without its blank line (stream cut)
        ev.data = "\n".join(data)
        yield ev


# ---------------------------------------------------------------------------- client


class ControlClient(HttpOwner):
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
        base = (base_url or "").strip().rstrip("/")
        if base.endswith("/v2"):  # tolerate the REST base given instead of the origin
            base = base[:-3]
        parts = urlsplit(base)
        if "@" in parts.netloc:  # httpx would send user:pw as Basic auth in place of the key
            raise ConfigError(f"invalid control-plane URL: {NO_USERINFO}")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(
                f"invalid control-plane URL {sanitize(base, limit=80)!r}: expected something "
                f"like {DEFAULT_CONTROL_URL}"
            )
        self.base_url = base
        self.rest_url = f"{base}/v2"
        self.graphql_url = (graphql_url or f"{base}/graphql").rstrip("/")
        self.host = parts.hostname
        self.timeout = float(timeout)
        self.max_retries = max(0, int(max_retries))
        self.graphql_fallback = graphql_fallback
        self.max_streams = max(1, int(max_streams))
        self._clock: Clock = clock or RealClock()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        #: which API answered the last endpoint list ("rest" or "graphql")
        self.last_source: str | None = None
        #: why REST v2 was not used for the last endpoint list (None when it was)
        self.fallback_reason: str | None = None

        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        key = (key or "").strip()
        self._key = key
        self._refusal: RpdashError | None = None
        if not key:
            self._refusal = AuthError("no API key: set RUNPOD_API_KEY or use --demo")
        elif not key.isascii() or not key.isprintable() or " " in key:
            self._refusal = AuthError(
                "the API key contains spaces, control or non-ASCII characters: check RUNPOD_API_KEY"
            )
        else:
            for url in (self.base_url, self.graphql_url):
                u = urlsplit(url)
                if u.scheme == "http" and not allow_insecure_http and not _is_loopback(u.hostname or ""):
                    self._refusal = InsecureTransport(
                        f"refusing to send the API key over plain http to "
                        f"{sanitize(u.hostname or '?')}: use https, or allow it explicitly "
                        "(--allow-insecure-http / RPDASH_ALLOW_INSECURE_HTTP=1) if that host is yours"
                    )
                    break
        self._auth = f"Bearer {key}"


    def _client(self) -> httpx.AsyncClient:
        if self._refusal is not None:
            raise type(self._refusal)(self._refusal.message)
        if self._closed:
            raise RpdashError("this ControlClient is closed")
        if self._http is None:
            kw: dict[str, Any] = {}
            if self._transport is not None:
                kw["transport"] = self._transport
            else:
                n = self.max_streams + 8
                kw["limits"] = httpx.Limits(max_connections=n, max_keepalive_connections=8)
            self._http = httpx.AsyncClient(
                headers={"Authorization": self._auth, "User-Agent": "rpdash"},
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,
                **kw,
            )
        return self._http

    # ------------------------------------------------------------------ endpoints

    async def list_endpoints(self, *, queue_only: bool = True) -> list[EndpointInfo]:
        """Every endpoint of the account (queue-based only by default), REST v2 first,
        GraphQL when REST v2 is not available (see module docstring)."""
        try:
            data = await self._get_json(f"{self.rest_url}/serverless", "the endpoint list")
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
        _check_id(endpoint_id, "endpoint")
        try:
            data = await self._get_json(f"{self.rest_url}/serverless/{endpoint_id}",
                                        f"endpoint {endpoint_id}")  # fmt: skip
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
        data = await self._request_json(
            "POST", self.graphql_url, "the endpoint list (GraphQL)", json={"query": GRAPHQL_ENDPOINTS_QUERY}
        )
        if not isinstance(data, dict):
            raise BadResponse("RunPod's GraphQL answer is not a JSON object")
        errors = data.get("errors")
        if errors:
            msg = _graphql_message(errors)
            text = self._inert(msg)
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

    # ------------------------------------------------------------------ workers

    async def workers(self, endpoint_id: str) -> WorkerList:
        """The endpoint's active workers and their summary (REST v2 only)."""
        _check_id(endpoint_id, "endpoint")
        data = await self._get_json(f"{self.rest_url}/serverless/{endpoint_id}/workers",
                                    f"the workers of endpoint {endpoint_id}")  # fmt: skip
        workers = self._parse_list(data, "workers", WorkerInfo.from_rest, "/workers")
        summary_raw = data.get("summary") if isinstance(data, dict) else None
        summary = {k: 0 for k in ("running", "idle", "initializing", "throttled", "unhealthy")}
        if isinstance(summary_raw, dict):
            for k, v in summary_raw.items():
                n = _int(v)
                if n is not None:
                    summary[str(k)] = max(0, n)
        else:
            for w in workers:
                summary[w.status.lower()] = summary.get(w.status.lower(), 0) + 1
        summary.setdefault("total", len(workers))
        version = _int(data.get("endpointVersion")) if isinstance(data, dict) else None
        return WorkerList(workers, summary, version)

    # ------------------------------------------------------------------ logs

    async def worker_logs(
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
        _check_id(endpoint_id, "endpoint")
        _check_id(worker_id, "worker")
        _check_tail(tail, source)
        deadline = None if follow else self._clock.now() + backlog_timeout
        async for item in self._tail(endpoint_id, worker_id, tail=tail, since=since, source=source,
                                     follow=follow, last_event_id=last_event_id,
                                     idle=idle, deadline=deadline):  # fmt: skip
            if item is _IDLE:
                if not follow:
                    return
                continue
            assert isinstance(item, LogLine)
            yield item

    async def endpoint_logs(
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
        """Tail every worker of an endpoint as one log (see the module docstring for the
        merge). ``worker_ids`` limits it to those workers (no discovery then)."""
        _check_id(endpoint_id, "endpoint")
        _check_tail(tail, source)
        for w in worker_ids or ():
            _check_id(w, "worker")
        if worker_ids is None:
            ids = [w.id for w in (await self.workers(endpoint_id)).workers]
        else:
            ids = list(dict.fromkeys(worker_ids))
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        tasks: dict[str, asyncio.Task[None]] = {}
        done_marker = object()

        async def pump(wid: str, wtail: int, wsince: str | None) -> None:
            try:
                async for item in self._tail(endpoint_id, wid, tail=wtail, since=wsince, source=source,
                                             follow=follow, last_event_id=None, idle=idle,
                                             deadline=None):  # fmt: skip
                    await queue.put((wid, item))
                    if item is _IDLE and not follow:
                        break
            except NotFound:
                pass  # gone between the list and the tail
            except RpdashError as exc:
                await queue.put((wid, exc))
            finally:
                await queue.put((wid, done_marker))

        def start(wid: str, wtail: int, wsince: str | None) -> None:
            running = sum(1 for t in tasks.values() if not t.done())
            if wid not in tasks and running < self.max_streams:
                tasks[wid] = asyncio.ensure_future(pump(wid, wtail, wsince))

        async def discover() -> None:
            while True:
                await self._clock.sleep(refresh)
                try:
                    current = await self.workers(endpoint_id)
                except RpdashError as exc:
                    if not exc.transient:
                        await queue.put(("", exc))
                        return
                    continue
                for w in current.workers:
                    start(w.id, TAIL_MAX, None)  # a new worker: from its first line

        for wid in ids:
            start(wid, tail, since)
        pending = set(tasks)
        settled: set[str] = set()
        ended: set[str] = set()
        backlog: list[LogLine] = []
        disco: asyncio.Task[None] | None = None
        timer: asyncio.Task[None] | None = None
        try:
            # backlog: until every stream went quiet or ended (or the timeout)
            if pending:
                timer = asyncio.ensure_future(self._clock.sleep(backlog_timeout))
            while pending - settled:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[arg-type]
                if not getter.done():
                    getter.cancel()
                    break
                wid, item = getter.result()
                if isinstance(item, RpdashError):
                    raise item
                if item is done_marker:
                    ended.add(wid)
                if item is _IDLE or item is done_marker:
                    settled.add(wid)
                elif isinstance(item, LogLine):
                    backlog.append(item)
            backlog.sort(key=_order)
            if tail and len(backlog) > tail:
                backlog = backlog[-tail:]
            for line in backlog:
                yield line
            if not follow:
                return
            if worker_ids is None:
                disco = asyncio.ensure_future(discover())
            while True:
                wid, item = await queue.get()
                if isinstance(item, RpdashError):
                    raise item
                if isinstance(item, LogLine):
                    yield item
                elif item is done_marker:
                    ended.add(wid)
                    if worker_ids is not None and ended >= set(tasks):
                        return  # every named worker is gone, and no discovery
        finally:
            for t in (timer, disco, *tasks.values()):
                if t is not None and not t.done():
                    t.cancel()
            for t in (timer, disco, *tasks.values()):
                if t is not None:
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                        pass

    async def _tail(
        self,
        endpoint_id: str,
        worker_id: str,
        *,
        tail: int,
        since: str | None,
        source: str | None,
        follow: bool,
        last_event_id: str | None,
        idle: float | None,
        deadline: float | None,
    ) -> AsyncIterator[LogLine | _Idle]:
        """One worker's SSE tail with reconnects; yields lines and one ``_IDLE`` the first
        time the stream is quiet for ``idle`` s (the backlog is then out)."""
        url = f"{self.rest_url}/serverless/{endpoint_id}/workers/{worker_id}/logs"
        last_id = last_event_id
        connected_once = False
        failures = 0
        retry_s = 1.0
        watch_idle = idle is not None
        while True:
            params: dict[str, Any] = {}
            headers: dict[str, str] = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if source:
                params["source"] = source
            if last_id:
                headers["Last-Event-ID"] = last_id
            else:
                params["tail"] = tail
                if since:
                    params["since"] = since
            try:
                resp = await self._open_stream(url, params, headers, endpoint_id, worker_id)
            except RpdashError as exc:
                if not connected_once:
                    raise
                if isinstance(exc, NotFound):
                    return  # the worker is gone
                failures += 1
                if not exc.transient or failures > max(self.max_retries, 5):
                    raise
                await self._clock.sleep(_backoff(failures, exc))
                continue
            connected_once = True
            events = _sse_events(resp.aiter_lines())
            nxt: asyncio.Future[_Event] | None = None
            dropped = False
            try:
                while True:
                    if nxt is None:
                        nxt = asyncio.ensure_future(events.__anext__())
                    if watch_idle or deadline is not None:
                        waits: set[asyncio.Future[Any]] = {nxt}
                        sleeper = None
                        if watch_idle:
                            assert idle is not None
                            sleeper = asyncio.ensure_future(self._clock.sleep(idle))
                            waits.add(sleeper)
                        if deadline is not None:
                            left = deadline - self._clock.now()
                            if left <= 0:
                                yield _IDLE
                                return
                            dl = asyncio.ensure_future(self._clock.sleep(left))
                            waits.add(dl)
                        else:
                            dl = None
                        try:
                            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            for t in (sleeper, dl):
                                if t is not None and not t.done():
                                    t.cancel()
                        if not nxt.done():
                            watch_idle = False
                            yield _IDLE
                            if dl is not None and dl.done():
                                return
                            continue
                    try:
                        ev = await nxt
                    except StopAsyncIteration:
                        break
                    finally:
                        nxt = None
                    if ev.retry is not None:
                        retry_s = max(0.0, ev.retry / 1000)
                    if ev.id:
                        last_id = ev.id
                    if ev.data is None or (ev.event not in (None, "", "message", "log")):
                        continue
                    line = self._log_line(worker_id, ev)
                    if line is not None:
                        failures = 0
                        yield line
            except httpx.HTTPError:
                dropped = True
            finally:
                if nxt is not None and not nxt.done():
                    nxt.cancel()
                    try:
                        await nxt
                    except (asyncio.CancelledError, StopAsyncIteration, Exception):  # noqa: BLE001
                        pass
                await events.aclose()
                await resp.aclose()
            if not follow and not dropped:
                if watch_idle:
                    yield _IDLE  # the server closed the stream: the backlog is complete
                return
            if not dropped and await self._worker_gone(endpoint_id, worker_id):
                return  # closed because the worker stopped: nothing more will come
            failures += 1 if dropped else 0
            await self._clock.sleep(retry_s if not dropped else _backoff(failures, None))

    async def _worker_gone(self, endpoint_id: str, worker_id: str) -> bool:
        """After the server closed a log stream: is the worker still listed? (A worker that
        stopped keeps its old lines readable, so a reconnect alone would not tell.)"""
        try:
            wl = await self.workers(endpoint_id)
        except NotFound:
            return True
        except RpdashError:
            return False  # cannot tell: keep tailing
        return all(w.id != worker_id for w in wl.workers)

    def _log_line(self, worker_id: str, ev: _Event) -> LogLine | None:
        try:
            data = json.loads(ev.data or "")
        except ValueError:
            data = {"line": ev.data, "source": "container"}
        if not isinstance(data, dict):
            data = {"line": json.dumps(data) if not isinstance(data, str) else data}
        return LogLine.build(worker_id, data, ev.id)

    async def _open_stream(self, url: str, params: dict[str, Any], headers: dict[str, str],
                           endpoint_id: str, worker_id: str) -> httpx.Response:  # fmt: skip
        http = self._client()
        req = http.build_request("GET", url, params=params, headers=headers,
                                 timeout=httpx.Timeout(self.timeout, read=None))  # fmt: skip
        try:
            resp = await http.send(req, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, f"the log of worker {worker_id}") from exc
        if resp.status_code != 200:
            try:
                content = await resp.aread()
            except httpx.HTTPError:
                content = b""
            finally:
                await resp.aclose()
            raise self._http_error(resp.status_code, resp.headers, content,
                                   f"worker {worker_id} of endpoint {endpoint_id}")  # fmt: skip
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            await resp.aclose()
            raise BadResponse(
                f"RunPod's answer for the log of worker {worker_id} is not an event stream "
                f"({sanitize(ctype or 'no content type', limit=40)})"
            )
        return resp

    # ------------------------------------------------------------------ machinery

    async def _get_json(self, url: str, what: str) -> Any:
        return await self._request_json("GET", url, what)

    async def _request_json(self, method: str, url: str, what: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await self._attempt(method, url, what, **kw)
            except RpdashError as exc:
                attempt += 1
                # reads and the GraphQL query change nothing: safe to send again
                if not exc.transient or attempt > self.max_retries:
                    raise
                await self._clock.sleep(_backoff(attempt, exc))

    async def _attempt(self, method: str, url: str, what: str, **kw: Any) -> Any:
        http = self._client()
        try:
            resp = await http.request(method, url, headers={"Accept": "application/json"}, **kw)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, what) from exc
        if not 200 <= resp.status_code < 300:
            raise self._http_error(resp.status_code, resp.headers, resp.content, what)
        try:
            return json.loads(resp.content)
        except ValueError:
            raise BadResponse(
                f"RunPod's answer for {what} is not JSON: {self._excerpt(resp.content)}"
            ) from None

    def _inert(self, text: str, limit: int = 200) -> str:
        return redact(sanitize(text, limit=limit), self._key)

    def _excerpt(self, content: bytes, limit: int = 100) -> str:
        text = content[: limit * 4].decode("utf-8", errors="replace").strip()
        return repr(self._inert(text, limit)) if text else "(empty body)"

    def _server_text(self, content: bytes) -> str | None:
        try:
            data = json.loads(content) if content else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            for k in ("detail", "title", "error", "message"):
                v = data.get(k)
                if isinstance(v, str) and v.strip():
                    return self._inert(v.strip())
            if isinstance(data.get("errors"), list):
                return self._inert(_graphql_message(data["errors"]))
            return None
        text = content[:600].decode("utf-8", errors="replace").strip()
        if not text or text.startswith("<"):
            return None
        return self._inert(text)

    def _http_error(self, code: int, headers: httpx.Headers, content: bytes, what: str) -> RpdashError:
        text = self._server_text(content)
        tail = f": {text}" if text else ""
        if code in (401, 403):
            msg = f"RunPod rejected the API key ({code}) for {what}: check RUNPOD_API_KEY"
            if code == 403:
                msg += " (the key may lack read access to serverless endpoints)"
            return AuthError(msg, status_code=code)
        if code == 404:
            return NotFound(f"{what} not found on the control plane (404){tail}", status_code=404)
        if code == 429:
            ra = _retry_after(headers.get("retry-after"), self._clock.time())
            when = f"retry in {ra:g} s" if ra is not None else "slow down and retry"
            return RateLimited(f"RunPod rate limit hit reading {what} (429): {when}", retry_after=ra)
        if code >= 500:
            return ServerError(f"RunPod server error {code} reading {what}{tail}: usually temporary",
                               status_code=code)  # fmt: skip
        if 300 <= code < 400:
            return BadResponse(f"RunPod answered {what} with a redirect ({code}): check the "
                               f"control-plane URL {self.base_url}", status_code=code)  # fmt: skip
        if code in (405, 501):
            return ApiError(f"RunPod does not offer {what} here ({code}){tail}", status_code=code)
        return BadRequest(f"RunPod refused the request for {what} ({code}){tail}", status_code=code)

    def _transport_error(self, exc: httpx.HTTPError, what: str) -> RpdashError:
        reason = self._inert(str(exc) or type(exc).__name__, 120)
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(f"cannot reach {self.host} ({reason}): check the network or the URL")
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"no answer from {self.host} for {what} within {self.timeout:g} s")
        return Unreachable(f"the connection to {self.host} dropped while reading {what} ({reason})")


# ---------------------------------------------------------------------------- helpers


def _falls_back(exc: RpdashError) -> bool:
    """REST v2 is not there (or broken) for this request: worth asking GraphQL."""
    if isinstance(exc, AuthError | RateLimited | Unreachable | Timeout | InsecureTransport):
        return False
    if isinstance(exc, NotFound | ServerError | BadResponse):
        return True
    return exc.status_code in _FALLBACK_CODES


def _graphql_message(errors: Any) -> str:
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict) and isinstance(first.get("message"), str):
            return first["message"]
        return str(first)
    return "unknown GraphQL error"


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not is_safe_id(value):
        raise InvalidInput(
            f"invalid {what} id {sanitize(str(value), limit=60)!r}: letters, digits, - _ . : only"
        )


def _check_tail(tail: int, source: str | None) -> None:
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= TAIL_MAX:
        raise InvalidInput(f"tail must be a whole number from 0 to {TAIL_MAX}")
    if source not in (None, "container", "system"):
        raise InvalidInput('source must be "container" or "system"')


def _order(line: LogLine) -> tuple[float, int, str]:
    eid = line.event_id or ""
    return (line.ts if line.ts is not None else 0.0, int(eid) if eid.isdigit() else 0, eid)


def _backoff(attempt: int, exc: BaseException | None) -> float:
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return min(_MAX_BACKOFF_S, max(0.0, exc.retry_after))
    return min(_MAX_BACKOFF_S, 0.5 * 2 ** max(0, attempt - 1))


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    v = value.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return max(0.0, dt.timestamp() - now)


def merge_sorted(lines: Iterable[LogLine]) -> list[LogLine]:
    """Log lines of several workers in time order (ties by event id)."""
    return sorted(lines, key=_order)

