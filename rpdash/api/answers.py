"""What the data plane's answers mean: a 2xx body read into its model, or an error answer
(or a failed connection) mapped to an ``rpdash.core.errors`` type with a one-line message.

Server text quoted in a message is made inert for a terminal and scrubbed of the API key.
"""

from __future__ import annotations

from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from rpdash.api.limits import parse_retry_after
from rpdash.core.clock import Clock
from rpdash.core.errors import (
    ApiError,
    AuthError,
    BadRequest,
    BadResponse,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RpdashError,
    ServerError,
    Timeout,
    Unreachable,
)
from rpdash.core.models import Health, PurgeResult, StreamBatch
from rpdash.api.bodies import MAX_BODY_BYTES, BodyTooLarge, loads
from rpdash.core.redact import inert, inert_excerpt

__all__ = ["IDEMPOTENT", "MAY_HAVE_RECEIVED", "Answers"]

# Operations safe to send again after any transient failure (they change nothing).
IDEMPOTENT = frozenset({"status", "status-sync", "stream", "health"})
#: what rpdash says when a call that is never repeated may or may not have reached RunPod
MAY_HAVE_RECEIVED = (
    "RunPod may have received it (not sent again): check the endpoint's jobs before "
    "repeating it"
)

M = TypeVar("M", bound=BaseModel)


class Answers:
    """Reads answers for one client: ``key`` is only used to scrub server text, ``host`` and
    ``base_url`` name the server in messages, ``clock`` dates ``Retry-After``."""

    __slots__ = ("_key", "host", "base_url", "_clock")

    def __init__(self, key: str, host: str, base_url: str, clock: Clock) -> None:
        self._key = key
        self.host = host
        self.base_url = base_url
        self._clock = clock

    def __repr__(self) -> str:  # never the key
        return f"Answers(host={self.host!r})"

    def parse(self, content: bytes, model: type[M], op: str, endpoint_id: str) -> M:
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
            data = loads(content)
        except ValueError:
            return False
        return isinstance(data, dict) and (
            isinstance(data.get("jobs"), dict) or isinstance(data.get("workers"), dict)
        )

    def _excerpt(self, content: bytes, limit: int = 120) -> str:
        text = inert_excerpt(content, self._key, limit)
        return repr(text) if text else "(empty body)"

    def inert(self, text: str, limit: int) -> str:
        """Server text safe to quote: the key masked, then controls escaped and cut."""
        return inert(text, self._key, limit=limit)

    def _server_text(self, content: bytes) -> str | None:
        """The error text a server put in its body (``{"error": ...}`` and friends)."""
        if not content:
            return None
        try:
            data = loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for k in ("error", "message", "detail", "title"):
                v = data.get(k)
                if isinstance(v, str) and v.strip():
                    return self.inert(v.strip(), 200)
            return None
        text = inert_excerpt(content, self._key, 200)
        if not text or text.startswith("<"):  # an HTML error page says nothing useful
            return None
        return text

    def http_error(
        self,
        code: int,
        headers: httpx.Headers,
        content: bytes,
        op: str,
        endpoint_id: str,
        job_id: str | None,
    ) -> RpdashError:
        """The error for a non-2xx answer (``content`` is its body, or the start of it)."""
        text = self._server_text(content)
        tail = f": {text}" if text else ""
        where = f"/{op} on endpoint {endpoint_id}"
        if code in (401, 403):
            msg = f"RunPod rejected the API key ({code}): check RUNPOD_API_KEY"
            if code == 403:
                msg += f" (the key may lack access to endpoint {endpoint_id})"
            return AuthError(msg, status_code=code)
        if code == 404:
            return self._not_found(endpoint_id, job_id)
        if code == 413:
            return PayloadTooLarge(
                f"RunPod refused the request to {where} as too large (413): /run takes at "
                f"most 10 MB, /runsync 20 MB{tail}",
                status_code=413,
            )
        if code == 429:
            ra = parse_retry_after(headers.get("retry-after"), self._clock.time())
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

    @staticmethod
    def _not_found(endpoint_id: str, job_id: str | None) -> NotFound:
        """RunPod's 404 bodies are undocumented (runpod-api.md section 8), so the body is
        never read for which thing is missing. Without a job in the request only the
        endpoint can be; with one, the answer cannot tell an expired (or unknown) job from
        an unknown endpoint, and the error says so: ``RunPodClient.which_not_found`` asks
        ``/health`` once to find out."""
        if job_id is None:
            err = NotFound(f"endpoint {endpoint_id} not found (404): check the endpoint id",
                           status_code=404)  # fmt: skip
        else:
            err = NotFound(
                f"job {job_id} not found on endpoint {endpoint_id} (404): the job expired or "
                "never existed, or the endpoint is unknown; RunPod's answer does not say "
                "which (results expire 30 min after /run, 1 min after /runsync)",
                status_code=404,
            )
            err.ambiguous = True
        err.endpoint_id = endpoint_id
        err.job_id = job_id  # type: ignore[attr-defined]
        return err

    def deadline_error(self, op: str, endpoint_id: str, limit: float) -> Timeout:
        """The whole request (sending, waiting, reading the answer) took longer than
        ``limit`` seconds."""
        may = "" if op in IDEMPOTENT else f"; {MAY_HAVE_RECEIVED}"
        return Timeout(
            f"no answer from {self.host} to /{op} on endpoint {endpoint_id} within {limit:g} s "
            f"(the limit for the whole request, answer included: raise RPDASH_REQUEST_TIMEOUT "
            f"if this persists){may}"
        )

    def body_error(self, exc: ValueError, op: str, endpoint_id: str) -> BadResponse:
        """A 2xx answer whose body is too large or cannot be decompressed."""
        if isinstance(exc, BodyTooLarge):
            return BadResponse(
                f"RunPod's answer to /{op} on endpoint {endpoint_id} is too large (over "
                f"{MAX_BODY_BYTES // 2**20} MiB): not read"
            )
        return BadResponse(f"RunPod's answer to /{op} on endpoint {endpoint_id} cannot be read: {exc}")

    def transport_error(self, exc: httpx.HTTPError, op: str, endpoint_id: str) -> RpdashError:
        host = self.host
        reason = self.inert(str(exc) or type(exc).__name__, 120)
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
            may = "" if op in IDEMPOTENT else f"; {MAY_HAVE_RECEIVED}"
            return Unreachable(
                f"the connection to {host} dropped during /{op} on endpoint {endpoint_id} "
                f"({reason}){may}"
            )
        return Unreachable(f"request to {host} failed during /{op} ({reason})")

