"""Domain models shared by the client, the simulator, the store and the UI.

Pure data: no I/O. Response models keep unknown fields (``extra="allow"``) so the raw
JSON a server sent can always be shown, and they tolerate missing or null fields, since
RunPod's documented shapes vary between sources (see ``shared/runpod-api.md`` section 5).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Endpoint ids are short lowercase alphanumerics ("jpnw0v75y3qoql"); REST v2 examples show
# "ep_abc123"; the simulator uses names like "mock-stream". Job ids are uuids with suffixes
# ("…-u1"), "sync-<uuid>", "test-<uuid>". Anything that could change the request path
# ("/", "..", "?", "#", spaces, "%") is refused before a request is made.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def is_safe_id(value: str) -> bool:
    """True when ``value`` can be placed in a URL path segment as it is."""
    return bool(_SAFE_ID.match(value)) and ".." not in value


class JobStatus(StrEnum):
    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"
    #: A status value this version of rpdash does not know. Never terminal, so the job
    #: keeps being tracked; the raw value stays in ``Job.raw_status``.
    UNKNOWN = "UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def retryable(self) -> bool:
        return self in (JobStatus.FAILED, JobStatus.TIMED_OUT)

    @property
    def cancellable(self) -> bool:
        return self in (JobStatus.IN_QUEUE, JobStatus.IN_PROGRESS, JobStatus.UNKNOWN)

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """Map any server value to a status: ``RUNNING`` (a doc artefact) is IN_PROGRESS,
        anything unrecognised is UNKNOWN."""
        if isinstance(value, JobStatus):
            return value
        if isinstance(value, str):
            v = value.strip().upper()
            if v == "RUNNING":
                return cls.IN_PROGRESS
            try:
                return cls(v)
            except ValueError:
                return cls.UNKNOWN
        return cls.UNKNOWN


_TERMINAL = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT}
)
TERMINAL_STATUSES = _TERMINAL


class _Loose(BaseModel):
    """Base for response models: keeps unknown keys, ignores nothing."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def raw(self) -> dict[str, Any]:
        """The JSON-able dict as the server sent it (unknown keys included)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _int_or_none(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == v and abs(v) < 1e18:  # not NaN, not absurd
        return int(v)
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None


class Job(_Loose):
    """A job as ``/status``, ``/status-sync`` and ``/runsync`` return it."""

    id: str
    status: JobStatus = JobStatus.UNKNOWN
    raw_status: str | None = Field(default=None, exclude=True)
    delayTime: int | None = None
    executionTime: int | None = None
    output: Any = None
    error: Any = None
    retries: int | None = None
    workerId: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _keep_raw_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and "status" in data and "raw_status" not in data:
            st = data.get("status")
            if JobStatus.parse(st) is JobStatus.UNKNOWN:
                data = {**data, "raw_status": None if st is None else str(st)}
        return data

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if v is None:
            raise ValueError("job object has no id")
        return str(v)

    @field_validator("delayTime", "executionTime", "retries", mode="before")
    @classmethod
    def _ints(cls, v: Any) -> int | None:
        return _int_or_none(v)

    @field_validator("workerId", mode="before")
    @classmethod
    def _worker(cls, v: Any) -> str | None:
        return None if v is None else str(v)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> JobStatus:
        return JobStatus.parse(v)

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def error_text(self) -> str | None:
        """The error as one string (RunPod sends a string; some workers a JSON string)."""
        if self.error is None:
            return None
        if isinstance(self.error, str):
            return self.error
        import json

        return json.dumps(self.error, ensure_ascii=False)


class JobRef(_Loose):
    """``{id, status}`` as ``/run``, ``/cancel`` and ``/retry`` return it."""

    id: str
    status: JobStatus = JobStatus.UNKNOWN

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v: Any) -> str:
        if v is None:
            raise ValueError("answer has no job id")
        return str(v)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> JobStatus:
        return JobStatus.parse(v)


class _Counts(_Loose):
    @field_validator("*", mode="before")
    @classmethod
    def _count(cls, v: Any) -> int:
        n = _int_or_none(v)
        return max(0, n) if n is not None else 0


class HealthJobs(_Counts):
    completed: int = 0
    failed: int = 0
    inProgress: int = 0
    inQueue: int = 0
    retried: int = 0


class HealthWorkers(_Counts):
    idle: int = 0
    initializing: int = 0
    ready: int = 0
    running: int = 0
    throttled: int = 0
    unhealthy: int = 0


class Health(_Loose):
    jobs: HealthJobs = Field(default_factory=HealthJobs)
    workers: HealthWorkers = Field(default_factory=HealthWorkers)

    @field_validator("jobs", "workers", mode="before")
    @classmethod
    def _obj(cls, v: Any) -> Any:
        return v if isinstance(v, dict | BaseModel) else {}


class StreamChunk(_Loose):
    """One element of ``/stream``'s ``stream`` list: ``{"output": value, ...}``."""

    output: Any = None


class StreamBatch(_Loose):
    status: JobStatus = JobStatus.UNKNOWN
    stream: list[StreamChunk] = Field(default_factory=list)

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, v: Any) -> JobStatus:
        return JobStatus.parse(v)

    @field_validator("stream", mode="before")
    @classmethod
    def _stream(cls, v: Any) -> list[Any]:
        if v is None:
            return []
        if not isinstance(v, list):
            raise ValueError("stream is not a list")
        return [c if isinstance(c, dict) else {"output": c} for c in v]


class PurgeResult(_Loose):
    removed: int = 0
    status: str = "completed"

    @field_validator("removed", mode="before")
    @classmethod
    def _removed(cls, v: Any) -> int:
        n = _int_or_none(v)
        return max(0, n) if n is not None else 0


# ---------------------------------------------------------------- requests

# Limits from runpod-api.md section 4 and 7.2 (milliseconds).
EXECUTION_TIMEOUT_MIN_MS = 5_000
EXECUTION_TIMEOUT_MAX_MS = 7 * 24 * 3600 * 1000
TTL_MIN_MS = 10_000
TTL_MAX_MS = 7 * 24 * 3600 * 1000
# Sizes: rpdash reads "MB" as 10^6 bytes (the docs do not say; runpodctl uses MiB for its
# local check, which is larger, so 10^6 is the safe side).
RUN_MAX_BYTES = 10_000_000
RUNSYNC_MAX_BYTES = 20_000_000
STREAM_CHUNK_MAX_BYTES = 1_000_000
RUNSYNC_WAIT_MIN_MS = 1_000
RUNSYNC_WAIT_MAX_MS = 300_000
RUNSYNC_WAIT_DEFAULT_MS = 90_000
RESULT_RETENTION_RUN_S = 30 * 60
RESULT_RETENTION_RUNSYNC_S = 60


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    executionTimeout: int | None = Field(
        default=None, ge=EXECUTION_TIMEOUT_MIN_MS, le=EXECUTION_TIMEOUT_MAX_MS
    )
    ttl: int | None = Field(default=None, ge=TTL_MIN_MS, le=TTL_MAX_MS)
    lowPriority: bool | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class S3Config(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    accessId: str
    accessSecret: str
    bucketName: str
    endpointUrl: str
    objectPath: str | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class RunRequest(BaseModel):
    """The body of ``/run`` and ``/runsync``."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    input: dict[str, Any]
    webhook: str | None = None
    policy: Policy | None = None
    s3Config: S3Config | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"input": self.input}
        if self.webhook:
            out["webhook"] = self.webhook
        if self.policy is not None and self.policy.body():
            out["policy"] = self.policy.body()
        if self.s3Config is not None:
            out["s3Config"] = self.s3Config.body()
        return out
