"""The client interface the services and the UI depend on.

``rpdash.api.client.RunPodClient`` implements it over HTTP; tests of the services may pass
any object of this shape. Every method raises only ``rpdash.core.errors`` types.
Endpoint and job ids are checked with ``rpdash.core.models.is_safe_id`` before any request
(``InvalidInput`` otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Protocol

from rpdash.core.models import Health, Job, JobRef, PurgeResult, RunRequest, StreamBatch, StreamChunk


class StreamEnd:
    """Last item of ``RunPodClient.stream``: the job as ``/status`` reported it at the end
    (the final output or the error, which a generator's failure puts only there)."""

    __slots__ = ("job",)

    def __init__(self, job: Job) -> None:
        self.job = job

    def __repr__(self) -> str:
        return f"StreamEnd({self.job.id!r}, {self.job.status})"


class RunPodAPI(Protocol):
    base_url: str

    async def run(self, endpoint_id: str, request: RunRequest) -> JobRef: ...

    async def runsync(
        self,
        endpoint_id: str,
        request: RunRequest,
        *,
        wait_ms: int | None = None,
        timeout: float | None = None,
        on_job_id: Callable[[str], None] | None = None,
    ) -> Job:
        """POST /runsync; if the answer is not terminal, follow the job (status-sync long
        polls) until it ends or ``timeout`` seconds pass. ``on_job_id`` is called as soon as
        the id is known, so the caller never loses it. On timeout, raises ``Timeout`` whose
        message carries the job id."""
        ...

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job: ...

    async def status_sync(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None) -> Job: ...

    async def stream_once(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> StreamBatch: ...

    def stream(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> AsyncIterator[StreamChunk | StreamEnd]:
        """Drain ``/stream`` long-polls: yield each chunk in order, stop on any terminal
        status (CANCELLED included), then read ``/status`` once and yield ``StreamEnd``."""
        ...

    async def cancel(self, endpoint_id: str, job_id: str) -> JobRef: ...

    async def retry(self, endpoint_id: str, job_id: str) -> JobRef: ...

    async def health(self, endpoint_id: str) -> Health: ...

    async def purge_queue(self, endpoint_id: str) -> PurgeResult: ...

    async def aclose(self) -> None: ...
