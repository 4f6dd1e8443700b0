"""The typed async RunPod serverless (queue-based, v2 data plane) client.

``RunPodClient`` implements ``rpdash.api.protocol.RunPodAPI`` over one ``httpx.AsyncClient``
(keep-alive, HTTP/1.1) per client, i.e. per base URL. Everything it raises is an
``rpdash.core.errors`` type with a one-line message a person can act on; raw httpx or pydantic
exceptions never escape (they stay reachable as ``__cause__`` for debugging).

Guarantees worth knowing (they are what the tests check):

- ids are checked with ``is_safe_id`` and payload sizes against 10 MB (/run) and 20 MB
  (/runsync) before any request is made (``InvalidInput``);
- the API key travels only in the ``Authorization: Bearer`` header; it is never logged, never
  in a ``repr`` and never in an error message (server text echoed back is scrubbed of it);
  the key rules, retries and pacing are in :mod:`rpdash.api.session`, what answers mean in
  :mod:`rpdash.api.answers`;
- operations that are safe to repeat (status, status-sync, stream, health) are retried on
  transient errors; ``run``/``runsync``/``cancel``/``retry``/``purge`` are resent only when the
  connection failed before the request went out, so a job is never submitted twice;
- every wait (backoff, pacing) goes through the injected ``Clock``.

The hot path (one status call) is kept short: URLs are plain string joins, the body is parsed
once by pydantic-core straight from bytes, retries and pacing cost nothing until they are
needed. ``bench/client_overhead.py`` measures it against raw httpx.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Literal

from rpdash.api.protocol import StreamEnd
from rpdash.api.session import DEFAULT_BASE_URL, DataSession
from rpdash.core.errors import BadResponse, InvalidInput, NotFound, RpdashError, Timeout
from rpdash.core.models import (
    RUN_MAX_BYTES,
    RUNSYNC_MAX_BYTES,
    RUNSYNC_WAIT_DEFAULT_MS,
    RUNSYNC_WAIT_MAX_MS,
    RUNSYNC_WAIT_MIN_MS,
    Health,
    Job,
    JobRef,
    PurgeResult,
    RunRequest,
    StreamBatch,
    StreamChunk,
    is_safe_id,
)
from rpdash.core.redact import sanitize

__all__ = ["DEFAULT_BASE_URL", "RunPodClient", "STATUS_SYNC_WAIT_MAX_MS"]

#: ``/status-sync`` holds: the official SDKs clamp ``wait`` to 1000–90000 ms; the server's own
#: maximum is unconfirmed, so we stay inside what is known to work.
STATUS_SYNC_WAIT_MAX_MS = 90_000
#: ``/stream`` holds ``wait`` ms, 1000–300000 (runpod-api.md 6.5).
STREAM_WAIT_MAX_MS = 300_000


class RunPodClient(DataSession):
    """Async client for one RunPod base URL (``https://api.runpod.ai/v2`` or a simulator).

    ``timeout`` is the per-request timeout in seconds (long-polls get their hold added).
    ``rate_limits`` turns the documented per-endpoint pacing on or off (the global concurrency
    bound ``max_concurrency`` always applies). ``max_retries`` is the number of extra tries
    for a retryable failure. ``transport`` replaces the network (tests only).
    ``on_retry(error, delay_s, retry_number, max_retries)`` is called before each wait for
    a retry, so a caller can say what is going on ("rate limited, retrying in 4 s").
    """

    # ------------------------------------------------------------------ operations

    async def run(self, endpoint_id: str, request: RunRequest) -> JobRef:
        """POST /run. Returns ``{id, status}``; never sent twice (see module docstring)."""
        self._check_ids(endpoint_id)
        body = self._body(request, RUN_MAX_BYTES, "/run")
        url = f"{self.base_url}/{endpoint_id}/run"
        return await self._call("run", endpoint_id, None, "POST", url, JobRef, content=body)

    async def runsync(
        self,
        endpoint_id: str,
        request: RunRequest,
        *,
        wait_ms: int | None = None,
        timeout: float | None = None,
        on_job_id: Callable[[str], None] | None = None,
    ) -> Job:
        """POST /runsync?wait=..., then follow the job with /status-sync long-polls until it
        ends or ``timeout`` seconds (of the client's clock) pass.

        ``wait_ms`` defaults to 90 s, or to ``timeout`` when that is shorter; it is clamped to
        1000–300000. ``on_job_id`` is called as soon as the id is known. When the job is still
        running at the deadline, ``Timeout`` is raised with the job id in its message (and as
        ``err.job_id``); errors while following also carry the id."""
        self._check_ids(endpoint_id)
        body = self._body(request, RUNSYNC_MAX_BYTES, "/runsync")
        start = self._clock.now()
        deadline = None if timeout is None else start + max(0.0, timeout)
        if wait_ms is None:
            wait_ms = RUNSYNC_WAIT_DEFAULT_MS
            if timeout is not None:
                wait_ms = min(wait_ms, int(timeout * 1000))
        wait = _clamp(wait_ms, RUNSYNC_WAIT_MIN_MS, RUNSYNC_WAIT_MAX_MS)
        url = f"{self.base_url}/{endpoint_id}/runsync?wait={wait}"
        job = await self._call(
            "runsync", endpoint_id, None, "POST", url, Job, content=body, hold_ms=wait
        )
        if on_job_id is not None:
            on_job_id(job.id)
        if job.terminal:
            return job
        if not is_safe_id(job.id):
            raise BadResponse(
                f"RunPod answered /runsync on endpoint {endpoint_id} with an unusable job id "
                f"{self._answers.inert(job.id, 60)!r}"
            )
        return await self._follow(
            endpoint_id, job.id, job, deadline, timeout, STATUS_SYNC_WAIT_MAX_MS
        )

    async def follow(
        self,
        endpoint_id: str,
        job_id: str,
        *,
        timeout: float | None = None,
        wait_ms: int | None = None,
    ) -> Job:
        """Follow a job with /status-sync long-polls until it is terminal (returned) or
        ``timeout`` seconds of the client's clock pass (``Timeout`` naming the job id).

        ``wait_ms`` caps each hold (default 90 s). Any error raised while following carries
        the job id (``err.job_id`` and in the message), so a caller never loses it."""
        self._check_ids(endpoint_id, job_id)
        cap = _clamp(
            wait_ms or STATUS_SYNC_WAIT_MAX_MS, RUNSYNC_WAIT_MIN_MS, STATUS_SYNC_WAIT_MAX_MS
        )
        deadline = None if timeout is None else self._clock.now() + max(0.0, timeout)
        return await self._follow(endpoint_id, job_id, None, deadline, timeout, cap)

    async def _follow(
        self,
        endpoint_id: str,
        job_id: str,
        last: Job | None,
        deadline: float | None,
        budget: float | None,
        cap: int,
    ) -> Job:
        job = last
        try:
            if job is None:
                job = await self.status(endpoint_id, job_id)
            while not job.terminal:
                if deadline is None:
                    job = await self.status_sync(endpoint_id, job_id, wait_ms=cap)
                    continue
                left = deadline - self._clock.now()
                if left <= 0:
                    raise self._follow_timeout(endpoint_id, job, budget)
                if left * 1000 >= RUNSYNC_WAIT_MIN_MS:
                    hold = min(cap, int(left * 1000))
                    job = await self.status_sync(endpoint_id, job_id, wait_ms=hold)
                    continue
                # Less than the shortest hold the server accepts is left: ask for that,
                # but stop waiting at the deadline (abandoning a status long-poll is safe:
                # it drains nothing).
                try:
                    job = await asyncio.wait_for(
                        self.status_sync(endpoint_id, job_id, wait_ms=RUNSYNC_WAIT_MIN_MS), left
                    )
                except asyncio.TimeoutError:
                    raise self._follow_timeout(endpoint_id, job, budget) from None
        except RpdashError as exc:
            if job_id not in exc.message:
                exc.message = f"{exc.message} (job {job_id})"
                exc.args = (exc.message,)
            if not hasattr(exc, "job_id"):
                exc.job_id = job_id  # type: ignore[attr-defined]
            raise
        return job

    @staticmethod
    def _follow_timeout(endpoint_id: str, job: Job, timeout: float | None) -> Timeout:
        err = Timeout(
            f"job {job.id} on endpoint {endpoint_id} did not finish within {timeout or 0:g} s "
            f"(last status {job.status.value}); it may still be running: "
            f"rpdash status {job.id} --endpoint {endpoint_id}"
        )
        err.job_id = job.id  # type: ignore[attr-defined]
        err.still_running = True  # type: ignore[attr-defined]  # the job, not a request, timed out
        return err

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job:
        """GET /status/{job_id}[?ttl=ms] (``ttl`` shortens the job's retention)."""
        self._check_ids(endpoint_id, job_id)
        url = f"{self.base_url}/{endpoint_id}/status/{job_id}"
        if ttl_ms is not None:
            url = f"{url}?ttl={int(ttl_ms)}"
        return await self._call("status", endpoint_id, job_id, "GET", url, Job)

    async def status_sync(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> Job:
        """GET /status-sync/{job_id}?wait=ms: holds until the job is terminal or ``wait``
        passes (clamped to 1000–90000 ms, what the official SDKs use)."""
        self._check_ids(endpoint_id, job_id)
        url = f"{self.base_url}/{endpoint_id}/status-sync/{job_id}"
        hold = None
        if wait_ms is not None:
            hold = _clamp(wait_ms, RUNSYNC_WAIT_MIN_MS, STATUS_SYNC_WAIT_MAX_MS)
            url = f"{url}?wait={hold}"
        return await self._call(
            "status-sync", endpoint_id, job_id, "GET", url, Job, hold_ms=hold or 90_000
        )

    async def stream_once(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> StreamBatch:
        """One GET /stream/{job_id}[?wait=ms]: the chunks not handed out yet, and the status.
        The server drains what it returns, so keep one reader per job."""
        self._check_ids(endpoint_id, job_id)
        url = f"{self.base_url}/{endpoint_id}/stream/{job_id}"
        hold = None
        if wait_ms is not None:
            hold = _clamp(wait_ms, RUNSYNC_WAIT_MIN_MS, STREAM_WAIT_MAX_MS)
            url = f"{url}?wait={hold}"
        # without ?wait the server holds about 10 s: the default timeout covers it
        return await self._call(
            "stream", endpoint_id, job_id, "GET", url, StreamBatch, hold_ms=hold
        )

    async def stream(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> AsyncIterator[StreamChunk | StreamEnd]:
        """Yield the job's chunks in order, then ``StreamEnd(job)`` from one final /status.

        Stops on any terminal status (CANCELLED included, which runpod-python misses). A
        dropped connection or a transient error is retried with backoff (re-polling is safe:
        /stream drains only what it returned). A generator's error is only in the final job."""
        self._check_ids(endpoint_id, job_id)
        while True:
            batch = await self.stream_once(endpoint_id, job_id, wait_ms=wait_ms)
            for chunk in batch.stream:
                yield chunk
            if batch.status.terminal:
                break
        yield StreamEnd(await self.status(endpoint_id, job_id))

    async def cancel(self, endpoint_id: str, job_id: str) -> JobRef:
        """POST /cancel/{job_id} (no body)."""
        self._check_ids(endpoint_id, job_id)
        url = f"{self.base_url}/{endpoint_id}/cancel/{job_id}"
        return await self._call("cancel", endpoint_id, job_id, "POST", url, JobRef)

    async def retry(self, endpoint_id: str, job_id: str) -> JobRef:
        """POST /retry/{job_id}: requeue a FAILED or TIMED_OUT job under the same id."""
        self._check_ids(endpoint_id, job_id)
        url = f"{self.base_url}/{endpoint_id}/retry/{job_id}"
        return await self._call("retry", endpoint_id, job_id, "POST", url, JobRef)

    async def health(self, endpoint_id: str) -> Health:
        """GET /health: job counters and worker states (missing keys are 0)."""
        self._check_ids(endpoint_id)
        url = f"{self.base_url}/{endpoint_id}/health"
        return await self._call("health", endpoint_id, None, "GET", url, Health)

    async def which_not_found(self, endpoint_id: str) -> Literal["job", "endpoint", "unknown"]:
        """After a 404 to a job request (``NotFound.ambiguous``): which thing is missing.

        RunPod's 404 does not say, so this asks ``/health`` of the endpoint once (the way
        runpod-api.md section 8 suggests; not documented behaviour): ``"job"`` when the
        endpoint answers (the job expired or never existed), ``"endpoint"`` when ``/health``
        is 404 too, ``"unknown"`` when ``/health`` fails otherwise (the 404 stays open)."""
        try:
            await self.health(endpoint_id)
        except NotFound:
            return "endpoint"
        except RpdashError:
            return "unknown"
        return "job"

    async def purge_queue(self, endpoint_id: str) -> PurgeResult:
        """POST /purge-queue: drop every IN_QUEUE job (2 calls per 10 s allowed)."""
        self._check_ids(endpoint_id)
        url = f"{self.base_url}/{endpoint_id}/purge-queue"
        return await self._call("purge-queue", endpoint_id, None, "POST", url, PurgeResult)

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _check_ids(endpoint_id: str, job_id: str | None = None) -> None:
        if not isinstance(endpoint_id, str) or not is_safe_id(endpoint_id):
            raise InvalidInput(
                f"invalid endpoint id {sanitize(str(endpoint_id), limit=60)!r}: use the id "
                "shown in the RunPod console (letters, digits, - _ . :)"
            )
        if job_id is not None and (not isinstance(job_id, str) or not is_safe_id(job_id)):
            raise InvalidInput(
                f"invalid job id {sanitize(str(job_id), limit=60)!r}: letters, digits, - _ . : "
                "only"
            )

    @staticmethod
    def _body(request: RunRequest, max_bytes: int, path: str) -> bytes:
        if not isinstance(request, RunRequest):
            raise InvalidInput(
                "the request must be a RunRequest (input, webhook, policy, s3Config)"
            )
        try:
            data = json.dumps(
                request.body(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the input cannot be sent as JSON: {exc}") from None
        if len(data) > max_bytes:
            raise InvalidInput(
                f"request body is {len(data) / 1e6:.1f} MB; {path} accepts at most "
                f"{max_bytes / 1e6:g} MB: send large data by URL (e.g. S3) instead"
            )
        return data


def _clamp(value: int | float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, int(value))))

