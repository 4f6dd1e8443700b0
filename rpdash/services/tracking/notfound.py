"""What a 404 to a job request is about: the job, or its endpoint.

RunPod's 404 bodies are undocumented (runpod-api.md 8), so the client never reads them and
marks the error ``NotFound.ambiguous``: the job expired (or never existed), or the endpoint
is unknown (deleted, mistyped, another account's). ``NotFoundCheck.which`` finds out by
asking ``/health`` of the endpoint (``which_not_found`` of the client): ``"job"`` when the
endpoint answers, ``"endpoint"`` when it is 404 too, ``"unknown"`` when ``/health`` fails
otherwise. The answer is kept ``ttl`` seconds per endpoint and callers asking at the same
time share one request, so 500 jobs answering 404 together cost one ``/health``.

One check is shared by everything that uses the same client (the tracker, the selected-job
long-poll, the stream followers): ``NotFoundCheck.shared(client, clock)``.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Literal

from rpdash.core.clock import Clock
from rpdash.core.errors import NotFound, RpdashError

Which = Literal["job", "endpoint", "unknown"]

#: how long an answer about an endpoint is reused (seconds)
CHECK_TTL_S = 30.0

_SHARED: weakref.WeakKeyDictionary[Any, NotFoundCheck] = weakref.WeakKeyDictionary()


def is_ambiguous(e: BaseException) -> bool:
    """A 404 that cannot tell a missing job from a missing endpoint."""
    return isinstance(e, NotFound) and bool(getattr(e, "ambiguous", False))


def endpoint_gone_message(endpoint_id: str) -> str:
    return (
        f"endpoint {endpoint_id} not found: /status and /health both answered 404 (deleted, "
        "mistyped, or another account's); its jobs are no longer checked and are not marked "
        "expired"
    )


class NotFoundCheck:
    """Asks ``/health`` at most once per endpoint per ``ttl`` seconds."""

    def __init__(self, client: Any, clock: Clock, ttl: float = CHECK_TTL_S) -> None:
        self.client = client
        self.clock = clock
        self.ttl = ttl
        #: /health requests made to tell job from endpoint (for tests and stats)
        self.asked = 0
        self._answers: dict[str, tuple[float, Which]] = {}
        self._pending: dict[str, asyncio.Future[Which]] = {}

    @classmethod
    def shared(cls, client: Any, clock: Clock) -> NotFoundCheck:
        """The check every user of ``client`` shares (a fresh one if it cannot be shared)."""
        try:
            check = _SHARED.get(client)
        except TypeError:  # not weak-referenceable
            return cls(client, clock)
        if check is None:
            check = _SHARED[client] = cls(client, clock)
        return check

    def known(self, endpoint_id: str) -> Which | None:
        """The answer still fresh for ``endpoint_id``, if any (no request)."""
        hit = self._answers.get(endpoint_id)
        if hit is not None and self.clock.now() - hit[0] < self.ttl:
            return hit[1]
        return None

    async def which(self, endpoint_id: str) -> Which:
        hit = self.known(endpoint_id)
        if hit is not None:
            return hit
        fut = self._pending.get(endpoint_id)
        if fut is None:
            fut = self._pending[endpoint_id] = asyncio.ensure_future(self._ask(endpoint_id))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this caller was cancelled
            return "unknown"  # the shared request was cancelled under us

    async def _ask(self, endpoint_id: str) -> Which:
        self.asked += 1
        try:
            ask = getattr(self.client, "which_not_found", None)
            if ask is not None:
                answer: Which = await ask(endpoint_id)
            else:
                answer = await self._by_health(endpoint_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - we could not find out
            answer = "unknown"
        finally:
            self._pending.pop(endpoint_id, None)
        self._answers[endpoint_id] = (self.clock.now(), answer)
        return answer

    async def _by_health(self, endpoint_id: str) -> Which:
        """``which_not_found`` for a client without it."""
        try:
            await self.client.health(endpoint_id)
        except NotFound:
            return "endpoint"
        except (RpdashError, NotImplementedError):
            return "unknown"
        return "job"
