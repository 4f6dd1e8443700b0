"""What rpdash knows about a job it tracks: the row of the history store and of the job list.

``JobRecord`` is plain data shared by the store, the services and the UI. Times are wall
clock epoch seconds (``Clock.time()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from rpdash.core.models import JobStatus


@dataclass(slots=True)
class JobRecord:
    job_id: str
    endpoint_id: str
    status: JobStatus = JobStatus.IN_QUEUE
    mode: str = "run"  # run | runsync | stream
    input: dict[str, Any] | None = None
    submitted_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    delay_ms: int | None = None
    execution_ms: int | None = None
    retries: int = 0
    progress: Any = None  # the latest IN_PROGRESS output
    output: Any = None  # final output
    error: str | None = None
    worker_id: str | None = None
    #: True when RunPod no longer has the job (404 after retention or ttl)
    expired: bool = False
    #: True when RunPod kept saying IN_PROGRESS after the job had finished (its
    #: ``executionTime`` and final ``output`` were set and did not change): rpdash treats it
    #: as COMPLETED (runpod-python's progress thread racing the completion)
    stuck_progress: bool = False
    #: number of stream chunks stored for this job
    chunk_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status.terminal or self.expired

    def copy(self, **changes: Any) -> JobRecord:
        return replace(self, **changes)
