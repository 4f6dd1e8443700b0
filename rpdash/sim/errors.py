"""Errors the simulated data plane refuses requests with; ``status`` is the HTTP code."""

from __future__ import annotations


class SimError(Exception):
    """A request the engine refuses; ``status`` is the HTTP code the server answers."""

    status = 400

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class NotFoundError(SimError):
    status = 404


class BadRequestError(SimError):
    status = 400


class QueueFullError(SimError):
    status = 429
