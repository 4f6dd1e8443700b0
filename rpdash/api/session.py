"""The data client's session: the key rules, one pooled ``httpx.AsyncClient``, pacing, and
how one operation is sent and retried.

- the API key travels only in the ``Authorization: Bearer`` header; a key is never sent
  over plain http to a host that is not loopback unless ``allow_insecure_http=True``
  (``InsecureTransport``);
- operations that are safe to repeat (status, status-sync, stream, health) are retried with
  backoff and jitter on transient errors (5xx, timeouts, unreachable, garbage, 429 with its
  ``Retry-After``); ``run``/``runsync``/``cancel``/``retry``/``purge`` are resent only when the
  connection failed before the request went out, so a job is never submitted twice;
- every wait (backoff, pacing) goes through the injected ``Clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from rpdash.api._owner import NO_USERINFO, HttpOwner, is_loopback
from rpdash.api.answers import IDEMPOTENT, MAY_HAVE_RECEIVED, Answers
from rpdash.api.bodies import (
    ACCEPT_ENCODING,
    ERROR_BODY_BYTES,
    MAX_BODY_BYTES,
    BodyTooLarge,
    BodyUnreadable,
    read_body,
)
from rpdash.api.limits import DEFAULT_MAX_CONCURRENCY, Pacer, backoff_delay, retry_after_delay
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import (
    AuthError,
    BadResponse,
    ConfigError,
    InsecureTransport,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
from rpdash.core.redact import sanitize

__all__ = ["DEFAULT_BASE_URL", "DataSession"]

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
# httpx failures that guarantee the request never left this machine.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

M = TypeVar("M", bound=BaseModel)


class DataSession(HttpOwner):
    """Sends the operations of one RunPod base URL (see ``RunPodClient`` for the options)."""

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
        elif parts.scheme == "http" and not allow_insecure_http and not is_loopback(self.host):
            self._refusal = (
                InsecureTransport,
                f"refusing to send the API key over plain http to {sanitize(self.host)}: use "
                "https, or allow it explicitly (--allow-insecure-http / "
                "RPDASH_ALLOW_INSECURE_HTTP=1) if that host is yours",
            )
        self._auth = f"Bearer {key}" if key else ""
        self._default_timeout = httpx.Timeout(self.timeout)
        self._answers = Answers(key, self.host, base, self._clock)  # the only copy for text

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
                "Accept-Encoding": ACCEPT_ENCODING,
                "User-Agent": "rpdash",
            },
            timeout=self._default_timeout,
            follow_redirects=False,
            trust_env=False,
            **kw,
        )
        return self._http

    def _should_retry(self, op: str) -> Callable[[BaseException], bool]:
        if op in IDEMPOTENT:
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
        limit = self.timeout
        if hold_ms is not None:
            limit += hold_ms / 1000
            kw["timeout"] = httpx.Timeout(self.timeout, read=limit)
        try:
            async with self._pacer.slot(endpoint_id, op):
                code, headers, body = await self._exchange(http, method, url, kw, op, endpoint_id, limit)
            if 200 <= code < 300:
                try:
                    if isinstance(body, ValueError):
                        raise self._answers.body_error(body, op, endpoint_id)
                    return self._answers.parse(body, model, op, endpoint_id)
                except BadResponse as exc:
                    if op not in IDEMPOTENT:  # it was accepted: not resent, and we say so
                        exc.message += f" (HTTP {code}); {MAY_HAVE_RECEIVED}"
                    raise
            if isinstance(body, ValueError):
                body = b""  # an error answer in an encoding we cannot read: no server text
            raise self._answers.http_error(code, headers, body, op, endpoint_id, job_id)
        except RpdashError as exc:
            exc.endpoint_id = endpoint_id  # whose health row the failure belongs to
            raise

    async def _exchange(
        self,
        http: httpx.AsyncClient,
        method: str,
        url: str,
        kw: dict[str, Any],
        op: str,
        endpoint_id: str,
        limit: float,
    ) -> tuple[int, httpx.Headers, bytes | ValueError]:
        """Send one request and read its answer, all within ``limit`` seconds: the status,
        the headers and the body (capped; a body too large or unreadable comes back as the
        error that says so)."""
        try:
            async with asyncio.timeout(limit):
                resp = await http.send(http.build_request(method, url, **kw), stream=True)
                try:
                    ok = 200 <= resp.status_code < 300
                    cap = MAX_BODY_BYTES if ok else ERROR_BODY_BYTES
                    body: bytes | ValueError = await read_body(resp, cap, truncate=not ok)
                except (BodyTooLarge, BodyUnreadable) as exc:
                    body = exc
                finally:
                    await resp.aclose()
        except httpx.HTTPError as exc:
            raise self._answers.transport_error(exc, op, endpoint_id) from exc
        except TimeoutError as exc:
            raise self._answers.deadline_error(op, endpoint_id, limit) from exc
        return resp.status_code, resp.headers, body


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (ServerError, Timeout, Unreachable, BadResponse, RateLimited))


def _not_sent(exc: BaseException) -> bool:
    """True only when the request provably never left: the connection could not be opened."""
    return isinstance(exc, (Unreachable, Timeout)) and isinstance(exc.__cause__, _NOT_SENT)
