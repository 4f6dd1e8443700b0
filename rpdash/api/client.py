"""The typed async RunPod serverless (queue-based, v2 data plane) client.

``RunPodClient`` implements ``rpdash.api.protocol.RunPodAPI`` over one ``httpx.AsyncClient``
(keep-alive, HTTP/1.1) per client, i.e. per base URL. Everything it raises is an
``rpdash.core.errors`` type with a one-line message a person can act on; raw httpx or pydantic
exceptions never escape (they stay reachable as ``__cause__`` for debugging).

Guarantees worth knowing (they are what the tests check):

- ids are checked with ``is_safe_id`` and payload sizes against 10 MB (/run) and 20 MB
  (/runsync) before any request is made (``InvalidInput``);
- the API key travels only in the ``Authorization: Bearer`` header; it is never logged, never
  in a ``repr`` and never in an error message (server text echoed back is scrubbed of it); a
  key is never sent over plain http to a host that is not loopback unless
  ``allow_insecure_http=True`` (``InsecureTransport``);
- operations that are safe to repeat (status, status-sync, stream, health) are retried with
  backoff and jitter on transient errors (5xx, timeouts, unreachable, garbage, 429 with its
  ``Retry-After``); ``run``/``runsync``/``cancel``/``retry``/``purge`` are resent only when the
  connection failed before the request went out, so a job is never submitted twice;
- every wait (backoff, pacing) goes through the injected ``Clock``.

The hot path (one status call) is kept short: URLs are plain string joins, the body is parsed
once by pydantic-core straight from bytes, retries and pacing cost nothing until they are
needed. ``bench/client_overhead.py`` measures it against raw httpx.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from rpdash.api._owner import HttpOwner
from rpdash.api.limits import DEFAULT_MAX_CONCURRENCY, Pacer, backoff_delay, parse_retry_after
from rpdash.api.limits import retry_after_delay
from rpdash.api.protocol import StreamEnd
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
    PayloadTooLarge,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
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

__all__ = ["DEFAULT_BASE_URL", "RunPodClient", "STATUS_SYNC_WAIT_MAX_MS", "sanitize"]

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
#: ``/status-sync`` holds: the official SDKs clamp ``wait`` to 1000–90000 ms; the server's own
#: maximum is unconfirmed, so we stay inside what is known to work.
STATUS_SYNC_WAIT_MAX_MS = 90_000
#: ``/stream`` holds ``wait`` ms, 1000–300000 (runpod-api.md 6.5).
STREAM_WAIT_MAX_MS = 300_000

# Operations safe to send again after any transient failure (they change nothing).
_IDEMPOTENT = frozenset({"status", "status-sync", "stream", "health"})
#: what rpdash says when a call that is never repeated may or may not have reached RunPod
_MAY_HAVE_RECEIVED = (
    "RunPod may have received it (not sent again): check the endpoint's jobs before "
    "repeating it"
)
_JOB_OPS = frozenset({"status", "status-sync", "stream", "cancel", "retry"})
# httpx failures that guarantee the request never left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# C0 controls except \t \n, DEL, C1 controls (\x9b is a one-byte CSI), bidi overrides.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_CHARS_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

M = TypeVar("M", bound=BaseModel)


def sanitize(text: str, *, one_line: bool = True, limit: int | None = None) -> str:
    """Neutralise what a terminal would act on: control characters and escape sequences are
    shown as ``\\xNN`` / ``\\uNNNN`` escapes (so ``\\x1b[2J`` prints as text, harmless).
    With ``one_line`` newlines and tabs are escaped too. ``limit`` truncates with an ellipsis."""
    pattern = _UNSAFE_CHARS_ONE_LINE if one_line else _UNSAFE_CHARS
    out = pattern.sub(_escape_char, text)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: user:pw@ in a base URL: httpx would send Basic credentials in place of the key
NO_USERINFO = "no user name or password (user:pw@host) in it: rpdash signs in with the API key"


class RunPodClient(HttpOwner):
    """Async client for one RunPod base URL (``https://api.runpod.ai/v2`` or a simulator).

    ``timeout`` is the per-request timeout in seconds (long-polls get their hold added).
    ``rate_limits`` turns the documented per-endpoint pacing on or off (the global concurrency
    bound ``max_concurrency`` always applies). ``max_retries`` is the number of extra tries
    for a retryable failure. ``transport`` replaces the network (tests only).
    ``on_retry(error, delay_s, retry_number, max_retries)`` is called before each wait for
    a retry, so a caller can say what is going on ("rate limited, retrying in 4 s").
    """

    def __init__(
        self,
        api_key: str | SecretStr | None,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        allow_insecure_http: bool = False,
        clock: Clock | None = None,
        rate_limits: bool = True,
        max_retries: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_retry: Callable[[RpdashError, float, int, int], None] | None = None,
    ) -> None:
        self.on_retry = on_retry
        base = (base_url or "").strip().rstrip("/")
        parts = urlsplit(base)
        if "@" in parts.netloc:  # httpx would send user:pw as Basic auth in place of the key
            raise ConfigError(f"invalid base URL: {NO_USERINFO}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"invalid base URL {sanitize(base, limit=80)!r}: expected something like "
                f"{DEFAULT_BASE_URL}"
            )
        if parts.query or parts.fragment:
            raise ConfigError(f"invalid base URL {sanitize(base, limit=80)!r}: no ?query or #")
        self.base_url = base
        self.host = parts.hostname
        self.timeout = float(timeout)
        self.allow_insecure_http = allow_insecure_http
        self.max_retries = max(0, int(max_retries))
        self._clock: Clock = clock or RealClock()
        self._pacer = Pacer(self._clock, enabled=rate_limits, max_concurrency=max_concurrency)
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False

        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        key = (key or "").strip()
        self._key = key  # only for scrubbing server text; never shown
        # The reason no request may go out, checked at the first call (cheap afterwards).
        self._refusal: tuple[type[RpdashError], str] | None = None
        if not key:
            self._refusal = (AuthError, "no API key: set RUNPOD_API_KEY or use --demo")
        elif not key.isascii() or not key.isprintable() or " " in key:
            self._refusal = (
                AuthError,
                "the API key contains spaces, control or non-ASCII characters: check "
                "RUNPOD_API_KEY (copy it again from the RunPod console)",
            )
        elif parts.scheme == "http" and not allow_insecure_http and not _is_loopback(self.host):
            self._refusal = (
                InsecureTransport,
                f"refusing to send the API key over plain http to {sanitize(self.host)}: use "
                "https, or allow it explicitly (--allow-insecure-http / "
                "RPDASH_ALLOW_INSECURE_HTTP=1) if that host is yours",
            )
        self._auth = f"Bearer {key}" if key else ""
        self._default_timeout = httpx.Timeout(self.timeout)

    # ------------------------------------------------------------------ lifecycle


    def _client(self) -> httpx.AsyncClient:
        if self._closed:
            raise RpdashError("this RunPodClient is closed")
        kw: dict[str, Any] = {}
        if self._transport is not None:
            kw["transport"] = self._transport
        else:
            n = self._pacer.max_concurrency
            kw["limits"] = httpx.Limits(
                max_connections=n, max_keepalive_connections=min(n, 32), keepalive_expiry=30.0
            )
        self._http = httpx.AsyncClient(
            headers={
                "Authorization": self._auth,
                "Accept": "application/json",
                "User-Agent": "rpdash",
            },
            timeout=self._default_timeout,
            follow_redirects=False,
            trust_env=False,
            **kw,
        )
        return self._http

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
                f"{sanitize(job.id, limit=60)!r}"
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

    async def purge_queue(self, endpoint_id: str) -> PurgeResult:
        """POST /purge-queue: drop every IN_QUEUE job (2 calls per 10 s allowed)."""
        self._check_ids(endpoint_id)
        url = f"{self.base_url}/{endpoint_id}/purge-queue"
        return await self._call("purge-queue", endpoint_id, None, "POST", url, PurgeResult)

    # ------------------------------------------------------------------ machinery

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

    def _should_retry(self, op: str) -> Callable[[BaseException], bool]:
        if op in _IDEMPOTENT:
            return _is_transient
        return _not_sent

    async def _call(
        self,
        op: str,
        endpoint_id: str,
        job_id: str | None,
        method: str,
        url: str,
        model: type[M],
        *,
        content: bytes | None = None,
        hold_ms: int | None = None,
    ) -> M:
        """One operation: a first try on the fast path; on a retryable failure, tenacity
        drives the remaining tries with our backoff, sleeping on the injected clock."""
        try:
            return await self._attempt(
                op, endpoint_id, job_id, method, url, model, content, hold_ms
            )
        except RpdashError as exc:
            should = self._should_retry(op)
            if self.max_retries == 0 or not should(exc):
                raise
            first = exc
        delay = self._wait_for(first, 1)
        self._notify_retry(first, delay, 1)
        await self._clock.sleep(delay)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_retries),
            retry=retry_if_exception(should),
            wait=lambda rs: self._wait_for(rs.outcome.exception(), rs.attempt_number + 1),
            sleep=self._clock.sleep,
            before_sleep=lambda rs: self._notify_retry(
                rs.outcome.exception(), rs.next_action.sleep if rs.next_action else 0.0,
                rs.attempt_number + 1,
            ),
            reraise=True,
        )
        return await retrying(
            self._attempt, op, endpoint_id, job_id, method, url, model, content, hold_ms
        )

    def _notify_retry(self, exc: BaseException | None, delay: float, number: int) -> None:
        hook = self.on_retry
        if hook is None or not isinstance(exc, RpdashError):
            return
        try:
            hook(exc, float(delay), number, self.max_retries)
        except Exception:  # noqa: BLE001 - a display hook must not break the request
            pass

    @staticmethod
    def _wait_for(exc: BaseException | None, attempt: int) -> float:
        if isinstance(exc, RateLimited):
            return retry_after_delay(exc.retry_after, attempt)
        return backoff_delay(attempt)

    async def _attempt(
        self,
        op: str,
        endpoint_id: str,
        job_id: str | None,
        method: str,
        url: str,
        model: type[M],
        content: bytes | None,
        hold_ms: int | None,
    ) -> M:
        if self._refusal is not None:
            cls, msg = self._refusal
            raise cls(msg)
        http = self._http or self._client()
        kw: dict[str, Any] = {}
        if content is not None:
            kw["content"] = content
            kw["headers"] = {"Content-Type": "application/json"}
        if hold_ms is not None:
            kw["timeout"] = httpx.Timeout(self.timeout, read=self.timeout + hold_ms / 1000)
        try:
            async with self._pacer.slot(endpoint_id, op):
                try:
                    resp = await http.request(method, url, **kw)
                except httpx.HTTPError as exc:
                    raise self._transport_error(exc, op, endpoint_id) from exc
            code = resp.status_code
            if 200 <= code < 300:
                try:
                    return self._parse(resp.content, model, op, endpoint_id)
                except BadResponse as exc:
                    if op not in _IDEMPOTENT:  # it was accepted: not resent, and we say so
                        exc.message += f" (HTTP {code}); {_MAY_HAVE_RECEIVED}"
                    raise
            raise self._http_error(resp, op, endpoint_id, job_id)
        except RpdashError as exc:
            exc.endpoint_id = endpoint_id  # whose health row the failure belongs to
            raise

    def _parse(self, content: bytes, model: type[M], op: str, endpoint_id: str) -> M:
        try:
            obj = model.model_validate_json(content)
        except ValidationError as exc:
            errs = exc.errors(include_url=False, include_input=False)
            kind = errs[0]["type"] if errs else ""
            if kind == "json_invalid":
                try:
                    content.decode("utf-8")
                    what = "not JSON"
                except UnicodeDecodeError:
                    what = "not valid UTF-8"
            else:
                loc = ".".join(str(p) for p in errs[0]["loc"]) if errs and errs[0]["loc"] else ""
                why = errs[0]["msg"] if errs else kind
                what = f"unexpected shape ({loc + ': ' if loc else ''}{why})"
            raise BadResponse(
                f"RunPod's answer to /{op} on endpoint {endpoint_id} is {what}: "
                f"{self._excerpt(content)}"
            ) from None
        # The response models tolerate missing fields; an answer with none of the fields
        # that define it is garbage all the same (an error object sent with 200, say).
        fields = obj.model_fields_set
        if (
            (model is Health and not self._health_shaped(content))
            or (model is StreamBatch and "status" not in fields)
            or (model is PurgeResult and "removed" not in fields)
        ):
            raise BadResponse(
                f"RunPod's answer to /{op} on endpoint {endpoint_id} lacks the expected "
                f"fields: {self._excerpt(content)}"
            )
        return obj

    @staticmethod
    def _health_shaped(content: bytes) -> bool:
        """``jobs`` or ``workers`` is an object (the model alone would read ``"jobs": "many"``
        as all zeros). Health is polled every few seconds, so a second parse is cheap."""
        try:
            data = json.loads(content)
        except ValueError:
            return False
        return isinstance(data, dict) and (
            isinstance(data.get("jobs"), dict) or isinstance(data.get("workers"), dict)
        )

    def _excerpt(self, content: bytes, limit: int = 120) -> str:
        text = content[: limit * 4].decode("utf-8", errors="replace").strip()
        if not text:
            return "(empty body)"
        return repr(self._scrub(sanitize(text, limit=limit)))

    def _scrub(self, text: str) -> str:
        return redact(text, self._key)

    def _server_text(self, content: bytes) -> str | None:
        """The error text a server put in its body (``{"error": ...}`` and friends)."""
        if not content:
            return None
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for k in ("error", "message", "detail", "title"):
                v = data.get(k)
                if isinstance(v, str) and v.strip():
                    return self._scrub(sanitize(v.strip(), limit=200))
            return None
        text = content[:800].decode("utf-8", errors="replace").strip()
        if not text or text.lstrip().startswith("<"):  # an HTML error page says nothing useful
            return None
        return self._scrub(sanitize(text, limit=200))

    def _http_error(
        self, resp: httpx.Response, op: str, endpoint_id: str, job_id: str | None
    ) -> RpdashError:
        code = resp.status_code
        text = self._server_text(resp.content)
        tail = f": {text}" if text else ""
        where = f"/{op} on endpoint {endpoint_id}"
        if code in (401, 403):
            msg = f"RunPod rejected the API key ({code}): check RUNPOD_API_KEY"
            if code == 403:
                msg += f" (the key may lack access to endpoint {endpoint_id})"
            return AuthError(msg, status_code=code)
        if code == 404:
            is_endpoint = job_id is None or (
                text is not None and "endpoint" in text.lower() and "job" not in text.lower()
            )
            if is_endpoint:
                err = NotFound(
                    f"endpoint {endpoint_id} not found (404): check the endpoint id",
                    status_code=404,
                )
            else:
                err = NotFound(
                    f"job {job_id} not found on endpoint {endpoint_id} (404): wrong id, or "
                    "RunPod no longer keeps it (results expire 30 min after /run, 1 min "
                    "after /runsync)",
                    status_code=404,
                )
            err.endpoint_id = endpoint_id  # type: ignore[attr-defined]
            err.job_id = None if is_endpoint else job_id  # type: ignore[attr-defined]
            return err
        if code == 413:
            return PayloadTooLarge(
                f"RunPod refused the request to {where} as too large (413): /run takes at "
                f"most 10 MB, /runsync 20 MB{tail}",
                status_code=413,
            )
        if code == 429:
            ra = parse_retry_after(resp.headers.get("retry-after"), self._clock.time())
            when = f"retry in {ra:g} s" if ra is not None else "slow down and retry"
            return RateLimited(
                f"RunPod rate limit hit on {where} (429): {when}{tail}", retry_after=ra
            )
        if code >= 500:
            return ServerError(
                f"RunPod server error {code} on {where}{tail}: usually temporary, try again "
                "shortly",
                status_code=code,
            )
        if 300 <= code < 400:
            return BadResponse(
                f"RunPod answered {where} with a redirect ({code}): check the base URL "
                f"{self.base_url}",
                status_code=code,
            )
        if 400 <= code < 500:  # 400, and 405/409/422... the server refused what we sent
            return BadRequest(
                f"RunPod refused the request to {where} ({code}){tail}", status_code=code
            )
        return ApiError(f"RunPod answered {where} with HTTP {code}{tail}", status_code=code)

    def _transport_error(self, exc: httpx.HTTPError, op: str, endpoint_id: str) -> RpdashError:
        host = self.host
        reason = self._scrub(sanitize(str(exc) or type(exc).__name__, limit=120))
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return Unreachable(
                f"cannot reach {host} ({reason}): check the network or the base URL"
            )
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(
                f"no answer from {host} to /{op} on endpoint {endpoint_id} within the time "
                f"limit ({type(exc).__name__}); raise RPDASH_REQUEST_TIMEOUT if this persists"
            )
        if isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
            # not resent: say what may have happened
            may = "" if op in _IDEMPOTENT else f"; {_MAY_HAVE_RECEIVED}"
            return Unreachable(
                f"the connection to {host} dropped during /{op} on endpoint {endpoint_id} "
                f"({reason}){may}"
            )
        return Unreachable(f"request to {host} failed during /{op} ({reason})")


def _clamp(value: int | float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, int(value))))


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (ServerError, Timeout, Unreachable, BadResponse, RateLimited))


def _not_sent(exc: BaseException) -> bool:
    """True only when the request provably never left: the connection could not be opened."""
    return isinstance(exc, (Unreachable, Timeout)) and isinstance(exc.__cause__, _NOT_SENT)
