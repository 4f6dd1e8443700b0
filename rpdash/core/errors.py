"""Typed errors, each with a message a person can act on.

Every error rpdash shows comes from here. ``str(err)`` is one line, never contains the
API key, and says what happened and what to do. ``err.transient`` says whether waiting and
trying again can help (the pollers back off on transient errors and stop on the others).
"""

from __future__ import annotations


class RpdashError(Exception):
    """Base of every error rpdash raises on purpose."""

    transient: bool = False
    #: short state label shown in the UI ("key rejected", "unreachable", ...)
    label: str = "error"
    #: the endpoint the failed request was for, when the client knows it
    endpoint_id: str | None = None

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class ConfigError(RpdashError):
    label = "bad config"


class InvalidInput(RpdashError):
    """Refused locally, before any request: bad id, bad JSON, bad policy, too large."""

    label = "invalid input"


class InsecureTransport(RpdashError):
    """Refusal to send the API key over plain http to a host that is not loopback."""

    label = "insecure"


class ApiError(RpdashError):
    """The server answered, and the answer was an error."""


class AuthError(ApiError):
    label = "key rejected"


class NotFound(ApiError):
    label = "not found"
    #: True when the answer cannot tell what is missing: a job (expired or never there)
    #: or its endpoint (``RunPodClient.which_not_found`` asks ``/health`` to find out)
    ambiguous: bool = False


class BadRequest(ApiError):
    label = "bad request"


class PayloadTooLarge(ApiError):
    label = "too large"


class RateLimited(ApiError):
    transient = True
    label = "rate limited"

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = 429
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ServerError(ApiError):
    transient = True
    label = "server error"


class Unreachable(RpdashError):
    transient = True
    label = "unreachable"


class Timeout(RpdashError):
    transient = True
    label = "timed out"


class BadResponse(RpdashError):
    """The server answered 2xx with something that is not what the API documents."""

    transient = True
    label = "bad response"


class JobFailed(RpdashError):
    """A job ended in FAILED, CANCELLED or TIMED_OUT (used by the CLI's exit code)."""

    label = "job failed"
