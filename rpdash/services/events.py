"""Events the background services emit. The TUI wraps each in a Textual message; the CLI
prints them. Services never touch widgets: they call ``sink(event)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from rpdash.core.models import Health
from rpdash.core.records import JobRecord


class ConnState(StrEnum):
    CONNECTING = "connecting"
    OK = "ok"
    RETRYING = "retrying"  # transient error; ``retry_in`` seconds until the next try
    RATE_LIMITED = "rate limited"
    KEY_REJECTED = "key rejected"
    NOT_FOUND = "not found"  # unknown endpoint
    UNREACHABLE = "unreachable"
    PAUSED = "paused"


@dataclass(slots=True)
class HealthEvent:
    endpoint_id: str
    state: ConnState
    health: Health | None = None  # the last good answer (kept while stale)
    last_ok_at: float | None = None  # Clock.time() of the last good answer
    retry_in: float | None = None
    message: str | None = None  # what went wrong, for a person


@dataclass(slots=True)
class JobsEvent:
    """Jobs whose record changed (new, new status, progress, output). Only the changed."""

    jobs: list[JobRecord]


@dataclass(slots=True)
class JobFinished:
    """A tracked job reached a terminal state (for a toast)."""

    job: JobRecord


@dataclass(slots=True)
class StreamEvent:
    """Coalesced stream chunks for one job, in order; ``seq`` is the index of the first."""

    job_id: str
    seq: int
    outputs: list[Any]
    done: bool = False
    message: str | None = None  # e.g. "stream dropped, resuming"


@dataclass(slots=True)
class ProblemEvent:
    """Something a person should read (status bar / notification)."""

    message: str
    severity: str = "warning"  # information | warning | error
    endpoint_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Event = HealthEvent | JobsEvent | JobFinished | StreamEvent | ProblemEvent
Sink = Callable[[Event], None]
