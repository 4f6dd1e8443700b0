"""The control plane's connection: the key rules, JSON requests with retries, and what an
error answer means.

The same key rules as the data client: the key travels only in ``Authorization: Bearer``;
never over plain http to a host that is not loopback (``InsecureTransport``, unless
``allow_insecure_http``); never in a message (server text is made inert for a terminal and
scrubbed of the key). Reads are retried (they change nothing) on transient errors with
backoff on the injected clock; ``Retry-After`` is honoured.
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from rpdash.api._owner import NO_USERINFO, HttpOwner, is_loopback
from rpdash.api.bodies import (
    ACCEPT_ENCODING,
    ERROR_BODY_BYTES,
    MAX_BODY_BYTES,
    BodyTooLarge,
    BodyUnreadable,
    loads,
    read_body,
)
from rpdash.core.clock import Clock, RealClock
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
from rpdash.core.redact import inert, inert_excerpt, sanitize

__all__ = ["DEFAULT_CONTROL_URL", "ControlConnection", "backoff", "check_id", "control_url_for",
           "graphql_message"]  # fmt: skip

DEFAULT_CONTROL_URL = "https://api.runpod.io"
RUNPOD_DATA_HOST = "api.runpod.ai"
_MAX_BACKOFF_S = 30.0


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


class ControlConnection(HttpOwner):
    """One pooled connection to the control plane at ``base_url`` (an origin, no path):
    REST v2 under ``{base_url}/v2``, GraphQL at ``graphql_url``."""

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
        self.max_streams = max(1, int(max_streams))
        self._clock: Clock = clock or RealClock()
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._closed = False

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
                if u.scheme == "http" and not allow_insecure_http and not is_loopback(u.hostname or ""):
                    self._refusal = InsecureTransport(
                        f"refusing to send the API key over plain http to "
                        f"{sanitize(u.hostname or '?')}: use https, or allow it explicitly "
                        "(--allow-insecure-http / RPDASH_ALLOW_INSECURE_HTTP=1) if that host is yours"
                    )
                    break
        self._auth = f"Bearer {key}"

    @property
    def clock(self) -> Clock:
        return self._clock

    def client(self) -> httpx.AsyncClient:
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
                headers={"Authorization": self._auth, "User-Agent": "rpdash",
                         "Accept-Encoding": ACCEPT_ENCODING},
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=False,
                trust_env=False,
                **kw,
            )
        return self._http

    async def get_json(self, url: str, what: str) -> Any:
        return await self.request_json("GET", url, what)

    async def request_json(self, method: str, url: str, what: str, **kw: Any) -> Any:
        attempt = 0
        while True:
            try:
                return await self._attempt(method, url, what, **kw)
            except RpdashError as exc:
                attempt += 1
                # reads and the GraphQL query change nothing: safe to send again
                if not exc.transient or attempt > self.max_retries:
                    raise
                await self._clock.sleep(backoff(attempt, exc))

    async def _attempt(self, method: str, url: str, what: str, **kw: Any) -> Any:
        http = self.client()
        req = http.build_request(method, url, headers={"Accept": "application/json"}, **kw)
        resp, content = await self.exchange(req, what)
        if not 200 <= resp.status_code < 300:
            raise self.http_error(resp.status_code, resp.headers, content, what)
        try:
            return loads(content)
        except ValueError:
            raise BadResponse(
                f"RunPod's answer for {what} is not JSON: {self._excerpt(content)}"
            ) from None

    async def exchange(self, req: httpx.Request, what: str, *,
                       keep_open: bool = False) -> tuple[httpx.Response, bytes]:  # fmt: skip
        """Send ``req`` and read its answer within the request timeout, all of it: the
        body is capped (24 MiB for a 2xx, the start of an error answer). With ``keep_open``
        a 2xx answer's body is left unread and the response open (a stream)."""
        http = self.client()
        try:
            async with asyncio.timeout(self.timeout):
                resp = await http.send(req, stream=True)
                ok = 200 <= resp.status_code < 300
                if ok and keep_open:
                    return resp, b""
                try:
                    content = await read_body(resp, MAX_BODY_BYTES if ok else ERROR_BODY_BYTES,
                                              truncate=not ok)  # fmt: skip
                except httpx.HTTPError:
                    if ok or not keep_open:
                        raise
                    content = b""  # a stream refused: its status says enough
                finally:
                    await resp.aclose()
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, what) from exc
        except TimeoutError as exc:
            raise Timeout(f"no complete answer from {self.host} for {what} within "
                          f"{self.timeout:g} s") from exc  # fmt: skip
        except BodyTooLarge:
            raise BadResponse(f"RunPod's answer for {what} is too large (over "
                              f"{MAX_BODY_BYTES // 2**20} MiB): not read") from None  # fmt: skip
        except BodyUnreadable as exc:
            if ok:
                raise BadResponse(f"RunPod's answer for {what} cannot be read: {exc}") from None
            content = b""  # an error answer we cannot decode: no server text
        return resp, content

    def inert(self, text: str, limit: int = 200) -> str:
        """Server text safe to quote: the key masked, then controls escaped and cut."""
        return inert(text, self._key, limit=limit)

    def _excerpt(self, content: bytes, limit: int = 100) -> str:
        text = inert_excerpt(content, self._key, limit)
        return repr(text) if text else "(empty body)"

    def _server_text(self, content: bytes) -> str | None:
        try:
            data = loads(content) if content else None
        except ValueError:
            data = None
        if isinstance(data, dict):
            for k in ("detail", "title", "error", "message"):
                v = data.get(k)
                if isinstance(v, str) and v.strip():
                    return self.inert(v.strip())
            if isinstance(data.get("errors"), list):
                return self.inert(graphql_message(data["errors"]))
            return None
        text = inert_excerpt(content, self._key, 200)
        if not text or text.startswith("<"):
            return None
        return text

    def http_error(self, code: int, headers: httpx.Headers, content: bytes, what: str) -> RpdashError:
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

    def transport_error(self, exc: httpx.HTTPError, what: str) -> RpdashError:
        reason = self.inert(str(exc) or type(exc).__name__, 120)
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(f"cannot reach {self.host} ({reason}): check the network or the URL")
        if isinstance(exc, httpx.TimeoutException):
            return Timeout(f"no answer from {self.host} for {what} within {self.timeout:g} s")
        return Unreachable(f"the connection to {self.host} dropped while reading {what} ({reason})")


def graphql_message(errors: Any) -> str:
    """The first message of a GraphQL ``errors`` list."""
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict) and isinstance(first.get("message"), str):
            return first["message"]
        return str(first)
    return "unknown GraphQL error"


def check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not is_safe_id(value):
        raise InvalidInput(
            f"invalid {what} id {sanitize(str(value), limit=60)!r}: letters, digits, - _ . : only"
        )


def backoff(attempt: int, exc: BaseException | None) -> float:
    """Seconds to wait before try ``attempt + 1``: a 429's ``Retry-After``, else doubling
    from 0.5 s, at most 30 s."""
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

