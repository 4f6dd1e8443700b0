"""Health poller: one endpoint's ``/health``, fetched, shown, rescheduled.

The loop is *fetch → emit → sleep → fetch*, so two fetches never overlap however slow the
server is (the dolphie pattern). Between fetches:

- the normal wait is ``interval`` (floored at ``min_interval``) with a little jitter, so that
  several endpoints started together do not stay in lock-step;
- a transient failure (5xx, timeout, garbage, dropped connection) backs off exponentially
  (``interval``, 2×, 4×… capped at ``max_backoff``) and says so: state ``RETRYING`` or
  ``UNREACHABLE`` with ``retry_in``;
- a 429 waits what ``Retry-After`` says (state ``RATE_LIMITED``), or backs off without it;
- a rejected key (401/403) is ``KEY_REJECTED`` and an unknown endpoint ``NOT_FOUND``: no
  amount of quick retrying helps, but the poller keeps trying every ``slow_retry`` seconds so
  a fixed key or a newly created endpoint recovers without a restart.

The last good ``Health`` stays in every event (with ``last_ok_at``), so the UI keeps showing
numbers marked stale rather than nothing. ``refresh_now()`` wakes the sleep at once (but
never sooner than ``min_interval`` after the previous fetch began, and never through a
``Retry-After``), ``pause()`` stops fetching until ``resume()``.

``offer(health)`` lets another service that fetched the same endpoint's health (the job
tracker samples it while it has work there) hand the answer over: it is shown, and the
poller's own next fetch is pushed back, so nothing is fetched twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import (
    AuthError,
    NotFound,
    RateLimited,
    RpdashError,
    Unreachable,
)
from rpdash.core.models import Health
from rpdash.services.events import ConnState, HealthEvent, Sink

log = logging.getLogger("rpdash.services.health")

#: How often a poller retries after a non-transient failure (rejected key, unknown endpoint).
SLOW_RETRY_S = 30.0
#: Ceiling of the exponential backoff after transient failures.
MAX_BACKOFF_S = 60.0


class Waker:
    """A flag a sleeping loop can be woken by (like ``asyncio.Event``, but waiting on it is
    a plain future, so a wake costs no extra task hop: fake-clock tests stay exact)."""

    __slots__ = ("_set", "_fut")

    def __init__(self) -> None:
        self._set = False
        self._fut: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    def future(self) -> asyncio.Future[None]:
        fut = self._fut
        if fut is None or fut.done():
            fut = self._fut = asyncio.get_running_loop().create_future()
            if self._set:
                fut.set_result(None)
        return fut


async def sleep_or_wake(clock: Clock, delay: float | None, wake: Waker) -> bool:
    """Wait ``delay`` seconds of ``clock`` time (forever when None), or until ``wake`` is set.

    Returns True when woken. The sleeper is cancelled when the wake comes first, so a
    cancelled caller never leaves a sleeping task behind.
    """
    if wake.is_set():
        return True
    fut = wake.future()
    if delay is None:
        await asyncio.shield(fut)
        return True
    if delay <= 0:
        await asyncio.sleep(0)
        return wake.is_set()
    sleeper = asyncio.ensure_future(clock.sleep(delay))
    try:
        await asyncio.wait((fut, sleeper), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not sleeper.done():
            sleeper.cancel()
    return wake.is_set()


def safe_emit(sink: Sink, event: object) -> None:
    """Call the sink; a failing sink (the UI's problem) never stops a background service."""
    try:
        sink(event)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001
        log.exception("event sink failed on %s", type(event).__name__)


class HealthPoller:
    """Polls one endpoint's ``/health`` and emits a ``HealthEvent`` after every attempt."""

    def __init__(
        self,
        client: RunPodAPI,
        endpoint_id: str,
        sink: Sink,
        clock: Clock | None = None,
        interval: float = 5.0,
        min_interval: float = 1.0,
        *,
        jitter: float = 0.1,
        max_backoff: float = MAX_BACKOFF_S,
        slow_retry: float = SLOW_RETRY_S,
        rng: random.Random | None = None,
        on_health: Callable[[str, Health], None] | None = None,
    ) -> None:
        self.client = client
        self.endpoint_id = endpoint_id
        self.sink = sink
        self.clock: Clock = clock or RealClock()
        self.min_interval = max(0.0, float(min_interval))
        self.interval = max(self.min_interval, float(interval))
        self.jitter = max(0.0, min(0.5, jitter))
        self.max_backoff = max(self.interval, max_backoff)
        self.slow_retry = slow_retry
        self.rng = rng or random.Random()
        #: called with every good answer (the session feeds the job tracker with it)
        self.on_health = on_health

        self.health: Health | None = None
        self.last_ok_at: float | None = None  # Clock.time() of the last good answer
        self.last: HealthEvent | None = None
        self.fetches = 0
        self.failures = 0  # consecutive
        self._state = ConnState.CONNECTING
        self._last_start: float | None = None  # Clock.now() when the last fetch began
        self._not_before = 0.0  # Clock.now(): Retry-After floor that refresh_now respects
        self._next_at: float | None = None
        self._wake = Waker()
        self._running = asyncio.Event()
        self._running.set()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"health:{self.endpoint_id}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        if self.paused:
            return
        self._running.clear()
        self._wake.set()  # leave the sleep so the loop parks on _running
        self._emit(ConnState.PAUSED, message="paused")

    def resume(self) -> None:
        if not self.paused:
            return
        self._running.set()
        self._wake.set()

    def refresh_now(self) -> None:
        """Fetch as soon as allowed: at once, unless the previous fetch began less than
        ``min_interval`` ago or a ``Retry-After`` is still running."""
        self._wake.set()

    def offer(self, health: Health) -> None:
        """Accept an answer fetched by someone else; the own next fetch moves back."""
        self._good(health, notify=False)
        self._next_at = self.clock.now() + self._jittered(self.interval)
        if not self.paused:
            self._emit(ConnState.OK)

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        self._emit(ConnState.CONNECTING)
        while True:
            if self.paused:
                await self._running.wait()
                self._wake.clear()
                # resumed: the numbers are stale, fetch now (a Retry-After still counts)
                self._next_at = self._not_before or None
            now = self.clock.now()
            if self._next_at is not None and now < self._next_at:
                if await sleep_or_wake(self.clock, self._next_at - now, self._wake):
                    self._wake.clear()
                    if not self.paused:
                        # refresh_now: go early, but respect the floor and Retry-After
                        earliest = max(
                            self._not_before, (self._last_start or -1e18) + self.min_interval
                        )
                        self._next_at = earliest if self.clock.now() < earliest else None
                continue  # re-check: woken, paused, or the deadline moved (offer)
            self._wake.clear()
            delay = await self._fetch_once()
            self._next_at = self.clock.now() + delay

    async def _fetch_once(self) -> float:
        """One fetch; emits the event and returns how long to wait before the next."""
        self._last_start = self.clock.now()
        self.fetches += 1
        try:
            health = await self.client.health(self.endpoint_id)
        except asyncio.CancelledError:
            raise
        except RateLimited as e:
            self.failures += 1
            wait = e.retry_after if e.retry_after is not None else self._backoff()
            wait = max(self.min_interval, min(wait, self.max_backoff * 5))
            self._not_before = self.clock.now() + wait
            self._emit(ConnState.RATE_LIMITED, retry_in=wait, message=str(e))
            return wait
        except AuthError as e:
            self.failures += 1
            self._emit(ConnState.KEY_REJECTED, retry_in=self.slow_retry, message=str(e))
            return self.slow_retry
        except NotFound as e:
            self.failures += 1
            self._emit(ConnState.NOT_FOUND, retry_in=self.slow_retry, message=str(e))
            return self.slow_retry
        except RpdashError as e:
            self.failures += 1
            if not e.transient:  # bad id, insecure transport...: retrying fast cannot help
                self._emit(ConnState.RETRYING, retry_in=self.slow_retry, message=str(e))
                return self.slow_retry
            wait = self._backoff()
            state = ConnState.UNREACHABLE if isinstance(e, Unreachable) else ConnState.RETRYING
            self._emit(state, retry_in=wait, message=str(e))
            return wait
        except Exception as e:  # noqa: BLE001 - a bug must not kill the poller
            log.exception("health fetch failed for %s", self.endpoint_id)
            self.failures += 1
            wait = self._backoff()
            self._emit(
                ConnState.RETRYING, retry_in=wait, message=f"unexpected error: {type(e).__name__}"
            )
            return wait
        self._good(health)
        self._emit(ConnState.OK)
        return self._jittered(self.interval)

    # ------------------------------------------------------------------ helpers

    def _good(self, health: Health, *, notify: bool = True) -> None:
        self.health = health
        self.last_ok_at = self.clock.time()
        self.failures = 0
        self._not_before = 0.0
        if notify and self.on_health is not None:
            try:
                self.on_health(self.endpoint_id, health)
            except Exception:  # noqa: BLE001
                log.exception("on_health hook failed")

    def _backoff(self) -> float:
        base = self.interval * (2 ** max(0, self.failures - 1))
        return self._jittered(min(self.max_backoff, base))

    def _jittered(self, seconds: float) -> float:
        if self.jitter <= 0:
            return seconds
        return max(self.min_interval, seconds * (1 + self.jitter * (2 * self.rng.random() - 1)))

    def _emit(
        self, state: ConnState, *, retry_in: float | None = None, message: str | None = None
    ) -> None:
        if state is not ConnState.PAUSED:
            self._state = state
            if self.paused:  # an answer that arrived after pause(): keep showing "paused"
                state = ConnState.PAUSED
        ev = HealthEvent(
            endpoint_id=self.endpoint_id,
            state=state,
            health=self.health,
            last_ok_at=self.last_ok_at,
            retry_in=retry_in,
            message=message,
        )
        self.last = ev
        safe_emit(self.sink, ev)
