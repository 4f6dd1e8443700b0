"""What the control plane lists: endpoints (REST v2 or GraphQL) and an endpoint's workers.

The builders read RunPod's answers leniently: a field of the wrong type is left out (None),
never an error; ``raw`` keeps the whole object.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["EndpointInfo", "WorkerInfo", "WorkerList", "as_int", "epoch_of"]


def as_int(v: Any) -> int | None:
    """A whole number from an int, a finite float or digits; None for anything else."""
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
                value = as_int(v)
                break
        typ = str(d.get("type") or "QUEUE").upper()
        return cls(
            id=str(d["id"]),
            name=_str(d.get("name")) or str(d["id"]),
            type=_TYPE.get(typ, typ),
            gpus=_strs(gpu.get("pools") or gpu.get("gpuTypeIds")),
            gpu_count=as_int(gpu.get("count")),
            cpu=bool(d.get("cpu")) and not gpu,
            workers_min=as_int(workers.get("min")),
            workers_max=as_int(workers.get("max")),
            idle_timeout_s=as_int(workers.get("idleTimeout")),
            execution_timeout_ms=as_int(d.get("timeout")),
            scaler_type=_str(scaling.get("type")),
            scaler_value=value,
            flashboot=_str(d.get("flashboot")),
            data_centers=_strs(d.get("dataCenterIds")),
            version=as_int(d.get("version")),
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
            gpu_count=as_int(d.get("gpuCount")),
            workers_min=as_int(d.get("workersMin")),
            workers_max=as_int(d.get("workersMax")),
            idle_timeout_s=as_int(d.get("idleTimeout")),
            execution_timeout_ms=as_int(d.get("executionTimeoutMs")),
            scaler_type=_str(d.get("scalerType")),
            scaler_value=as_int(d.get("scalerValue")),
            data_centers=_strs(d.get("locations")),
            version=as_int(d.get("version")),
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
        return epoch_of(self.started_at)

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
            version=as_int(d.get("version")),
            gpu_count=as_int(d.get("gpuCount")),
            gpu_type=_str(d.get("gpuTypeId")),
            data_center=_str(d.get("dataCenterId")),
            uptime_s=as_int(d.get("uptimeSeconds")),
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


def epoch_of(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 / RFC 3339 time (UTC when it names no zone), or None."""
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
