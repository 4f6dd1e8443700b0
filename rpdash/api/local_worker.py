"""Client for runpod-python's local development worker (``python handler.py --rp_serve_api``).

That server (runpod-api.md section 12) is a small FastAPI app that runs the handler in
process. It is not the cloud API, and this client says so instead of pretending:

- no endpoint prefix and no auth: the endpoint id given to each method is ignored (the
  server runs one handler) and no key is ever sent;
- ``/run`` only stores the job (answer ``IN_PROGRESS``); the job *runs during* the next
  POST ``/status`` or ``/stream`` call, which then forgets it. This client remembers each
  finished job, so asking ``status`` again returns the result instead of the server's
  misleading ``FAILED "Job ID not found"``; an id it never saw finish is ``NotFound``;
- ``/status`` and ``/stream`` are POST-only and answer at once with everything (there is
  no queue, no ``delayTime``/``executionTime``, no long-poll); ``status_sync`` is the same
  call; ``stream_once`` returns every chunk and a terminal status in one batch;
- ``/cancel``, ``/retry``, ``/health``, ``/purge-queue`` do not exist: those methods raise
  :class:`Unsupported` (an ``InvalidInput``) before any request, and ``capabilities``
  lists what does exist so a UI can grey the rest out and say why;
- the server answers 422 for an input that is not a JSON object and 500 when a generator
  handler raises (runpod-python issue 306): both become one clear line.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from rpdash.api._owner import HttpOwner
from rpdash.api.bodies import loads
from rpdash.core.redact import sanitize
from rpdash.api.protocol import StreamEnd
from rpdash.core.errors import (
    BadRequest,
    BadResponse,
    ConfigError,
    InvalidInput,
    NotFound,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
from rpdash.core.models import (
    Health,
    Job,
    JobRef,
    JobStatus,
    PurgeResult,
    RunRequest,
    StreamBatch,
    StreamChunk,
    is_safe_id,
)

__all__ = ["CAPABILITIES", "DEFAULT_LOCAL_URL", "LocalWorkerClient", "Unsupported", "probe"]

DEFAULT_LOCAL_URL = "http://localhost:8000"
DEV_TITLE = "Runpod | Development Worker API"
#: the operations the local dev worker offers (names as in RunPodAPI)
CAPABILITIES = frozenset({"run", "runsync", "status", "status_sync", "stream_once", "stream"})
_NOT_FOUND = "Job ID not found"
_MISSING_ROUTE = {
    "cancel": "/cancel",
    "retry": "/retry",
    "health": "/health",
    "purge_queue": "/purge-queue",
}


class Unsupported(InvalidInput):
    """The local dev worker has no such operation (refused before any request)."""

    label = "unsupported"


class LocalWorkerClient(HttpOwner):
    """RunPodAPI-shaped client of a local dev worker at ``base_url`` (default
    ``http://localhost:8000``; ``--rp_api_host``/``--rp_api_port`` choose it)."""

    capabilities: frozenset[str] = CAPABILITIES

    def __init__(
        self,
        base_url: str = DEFAULT_LOCAL_URL,
        *,
        timeout: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        base = (base_url or "").strip().rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(
                f"invalid local worker URL {sanitize(base, limit=80)!r}: expected something like "
                f"{DEFAULT_LOCAL_URL}"
            )
        self.base_url = base
        self.host = parts.hostname
        #: jobs run by the handler may take long: the whole call is bounded by ``timeout``
        self.timeout = float(timeout)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        #: finished jobs, by id (the server forgets a job once it ran it)
        self._done: dict[str, Job] = {}
        #: ids /run gave out that have not run yet
        self._stored: set[str] = set()


    def supports(self, operation: str) -> bool:
        return operation in self.capabilities

    @staticmethod
    def why_not(operation: str) -> str:
        """The sentence a UI shows for an operation the dev worker lacks."""
        route = _MISSING_ROUTE.get(operation, f"/{operation}")
        return f"the local dev worker has no {route} (it runs one job at a time, in process)"

    # ------------------------------------------------------------------ operations

    async def run(self, endpoint_id: str, request: RunRequest) -> JobRef:
        """POST /run: the server stores the job; it runs on the next status/stream call."""
        data = await self._post("/run", self._body(request), "/run")
        ref = _model(JobRef, data, "/run")
        self._stored.add(ref.id)
        return ref

    async def runsync(
        self,
        endpoint_id: str,
        request: RunRequest,
        *,
        wait_ms: int | None = None,
        timeout: float | None = None,
        on_job_id: Callable[[str], None] | None = None,
    ) -> Job:
        """POST /runsync: runs the handler now and answers the finished job (a generator's
        items come back as a list in ``output``). ``wait_ms`` does not exist there."""
        data = await self._post("/runsync", self._body(request), "/runsync", timeout=timeout)
        job = _model(Job, data, "/runsync")
        if on_job_id is not None:
            on_job_id(job.id)
        self._done[job.id] = job
        return job

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job:
        """POST /status/{id}: runs a stored job now and returns it finished; a job this
        client already saw finish is answered from memory."""
        _check_job(job_id)
        if job_id in self._done:
            return self._done[job_id]
        data = await self._post(f"/status/{job_id}", None, "/status")
        job = _model(Job, data, "/status")
        self._remember(job_id, job)
        return job

    async def status_sync(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None) -> Job:
        """Same as :meth:`status`: the dev server always answers a finished job."""
        return await self.status(endpoint_id, job_id)

    async def stream_once(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None) -> StreamBatch:
        """POST /stream/{id}: runs the generator to the end and returns every chunk with a
        terminal status in one batch. A non-generator handler gives FAILED and no chunks
        (the error is in the job :meth:`status` then returns)."""
        _check_job(job_id)
        if job_id in self._done:
            return StreamBatch(status=self._done[job_id].status, stream=[])
        data = await self._post(f"/stream/{job_id}", None, "/stream")
        if not isinstance(data, dict):
            raise BadResponse("the local dev worker's answer to /stream is not a JSON object")
        status = JobStatus.parse(data.get("status"))
        if status is JobStatus.FAILED:
            job = _model(Job, {"id": job_id, "status": "FAILED", "error": data.get("error")}, "/stream")
            self._remember(job_id, job)
            return StreamBatch(status=JobStatus.FAILED, stream=[])
        batch = _model(StreamBatch, {"status": data.get("status"), "stream": data.get("stream") or []}, "/stream")
        outputs = [c.output for c in batch.stream]
        self._remember(job_id, Job(id=job_id, status=batch.status, output=outputs))
        return batch

    async def stream(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
                     ) -> AsyncIterator[StreamChunk | StreamEnd]:  # fmt: skip
        """Every chunk of the job, then ``StreamEnd`` with the job as it ended (its
        ``output`` is the list of streamed items, or its ``error``)."""
        batch = await self.stream_once(endpoint_id, job_id)
        for chunk in batch.stream:
            yield chunk
        yield StreamEnd(await self.status(endpoint_id, job_id))

    async def cancel(self, endpoint_id: str, job_id: str) -> JobRef:
        raise Unsupported(self.why_not("cancel"))

    async def retry(self, endpoint_id: str, job_id: str) -> JobRef:
        raise Unsupported(self.why_not("retry"))

    async def health(self, endpoint_id: str) -> Health:
        raise Unsupported(self.why_not("health"))

    async def purge_queue(self, endpoint_id: str) -> PurgeResult:
        raise Unsupported(self.why_not("purge_queue"))

    # ------------------------------------------------------------------ machinery

    def _remember(self, job_id: str, job: Job) -> None:
        if job.status is JobStatus.FAILED and job.error_text == _NOT_FOUND:
            raise NotFound(
                f"job {job_id} not found on the local dev worker: it forgets a job once "
                "/status or /stream ran it (or it was started by another process)",
                status_code=404,
            )
        self._stored.discard(job_id)
        if job.terminal:
            self._done[job_id] = job

    @staticmethod
    def _body(request: RunRequest) -> bytes:
        if not isinstance(request, RunRequest):
            raise InvalidInput("the request must be a RunRequest")
        body: dict[str, Any] = {"input": request.input}
        if request.webhook:
            body["webhook"] = request.webhook  # policy and s3Config: the dev server ignores them
        try:
            return json.dumps(body, ensure_ascii=False, allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"the input cannot be sent as JSON: {exc}") from None

    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise RpdashError("this LocalWorkerClient is closed")
        if self._http is None:
            kw: dict[str, Any] = {"transport": self._transport} if self._transport else {}
            self._http = httpx.AsyncClient(
                headers={"Accept": "application/json", "User-Agent": "rpdash"},
                timeout=httpx.Timeout(self.timeout, connect=10.0),
                follow_redirects=False,
                trust_env=False,
                **kw,
            )
        return self._http

    async def _post(self, path: str, body: bytes | None, op: str, *, timeout: float | None = None) -> Any:
        kw: dict[str, Any] = {}
        if body is not None:
            kw["content"] = body
            kw["headers"] = {"Content-Type": "application/json"}
        if timeout is not None:
            kw["timeout"] = httpx.Timeout(timeout, connect=10.0)
        try:
            resp = await self._client().post(self.base_url + path, **kw)
        except httpx.ConnectError as exc:
            raise Unreachable(
                f"cannot reach the local dev worker at {self.base_url}: is `python handler.py "
                f"--rp_serve_api` running? ({sanitize(str(exc) or type(exc).__name__, limit=80)})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise Timeout(f"the local dev worker did not answer {op} within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"the connection to the local dev worker dropped during {op} "
                f"({sanitize(str(exc) or type(exc).__name__, limit=80)})"
            ) from exc
        code = resp.status_code
        if code == 200:
            try:
                return loads(resp.content)
            except ValueError:
                raise BadResponse(f"the local dev worker's answer to {op} is not JSON") from None
        detail = _detail(resp.content)
        if code == 422:
            raise BadRequest(f"the local dev worker refused the request to {op} (422){detail}", status_code=422)
        if code in (404, 405):
            raise NotFound(
                f"the local dev worker has no route for {op} ({code}): is {self.base_url} a "
                "`--rp_serve_api` server?",
                status_code=code,
            )
        if code >= 500:
            raise ServerError(
                f"the handler failed inside the local dev worker during {op} ({code}); a "
                "generator handler that raises does this (runpod-python issue 306): see the "
                "worker's console",
                status_code=code,
            )
        raise BadRequest(f"the local dev worker answered {op} with HTTP {code}{detail}", status_code=code)


def _detail(content: bytes) -> str:
    try:
        data = loads(content)
    except ValueError:
        return ""
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = ".".join(str(p) for p in detail[0].get("loc", []) if p != "body")
        msg = str(detail[0].get("msg", ""))
        return f": {sanitize((loc + ': ' if loc else '') + msg, limit=160)}"
    if isinstance(detail, str):
        return f": {sanitize(detail, limit=160)}"
    return ""


def _model(cls: Any, data: Any, op: str) -> Any:
    from pydantic import ValidationError

    try:
        return cls.model_validate(data)
    except ValidationError:
        raise BadResponse(f"the local dev worker's answer to {op} has an unexpected shape") from None


def _check_job(job_id: str) -> None:
    if not isinstance(job_id, str) or not is_safe_id(job_id):
        raise InvalidInput(f"invalid job id {sanitize(str(job_id), limit=60)!r}")


async def probe(base_url: str, *, timeout: float = 3.0,
                transport: httpx.AsyncBaseTransport | None = None) -> bool:  # fmt: skip
    """True when ``base_url`` serves runpod-python's development worker API (its OpenAPI
    title says so), so a UI can switch to local mode by itself."""
    kw: dict[str, Any] = {"transport": transport} if transport else {}
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False, **kw) as http:
            r = await http.get(base_url.rstrip("/") + "/openapi.json")
    except httpx.HTTPError:
        return False
    if r.status_code != 200:
        return False
    try:
        return (r.json().get("info") or {}).get("title") == DEV_TITLE
    except (ValueError, AttributeError):
        return False
