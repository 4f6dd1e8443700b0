"""Client-side pacing, concurrency bounds, backoff and ``Retry-After`` for the RunPod client.

Why our own limiter and not ``aiolimiter``: ``aiolimiter.AsyncLimiter`` measures time with
``loop.time()`` and wakes waiters with ``loop.call_later``, so it cannot follow an injected
``Clock``; under a ``FakeClock`` it would either sleep for real or never refill. It is also a
leaky bucket that lets a full bucket plus the refill through in one window (up to twice the
rate over 10 s). The limiter here is a *sliding-window log* on the injected clock: it keeps the
grant times of the last ``limit`` requests and lets a new one go only when the oldest of them
is at least ``period`` seconds old. That is exact ("never more than N in any 10 s"), O(1) per
request, and every wait goes through ``Clock.sleep``.

The server counts a request when it *arrives*, not when we granted it: a request granted at
``t`` may wait for a global slot, a connection and the server's own queue, while one granted
10 s later goes straight through; two arrivals then fall less than ``period`` apart and the
server answers 429 (8 of 2,000 /run calls did in bench/polling_bench.py). Two things close
that gap: a grant's time is moved to when the request really leaves (after the global
bound), and the window of every limit that allows bursts (``MARGIN_FROM`` requests or
more per period) is ``period`` plus a small safety margin (``WINDOW_MARGIN``: 5 %, i.e.
10.5 s for /run's 1000 per 10 s: a 5 % lower peak rate in exchange for no 429s). Small
limits (purge: 2 per 10 s) are sent one at a time and keep their exact period.

Limits come from runpod-api.md section 7.1 (per user, per endpoint, per operation). The table
lists ``/status``, ``/status-sync`` and ``/stream`` on one row; we count them together, which
is the conservative reading. ``/health`` and ``/retry`` are not listed: we pick our own values
(health 1000/10 s, retry like cancel), a choice, not a documented fact.

**Writes keep to their share.** The requests that change something (``/run``, ``/cancel``,
``/retry``, ``/purge-queue``: ``WRITE_GROUPS``) may hold at most ``WRITE_CONCURRENCY`` of the
client's in-flight slots together, whatever the caller asks for and on however many
endpoints. Without it a burst of submissions (10,000 jobs on 20 endpoints: each endpoint's
/run window has room, so nothing paces them) fills the slots and the loop: the server
answers in arrival order, so status polls got 8 of every 72 answers and the jobs that
finished during the burst were seen a minute late (bench/README.md section 3). Every
request in flight also costs the client CPU (httpx's pool scans its connections on each
request), so fewer in flight make each one cheaper. The price: a big burst of submissions
takes longer (10,000 on 20 endpoints in the bench: 137 s instead of 115 s). Reads
(``/status``, ``/health``) and long-polls are not in this share: polling keeps the rest of
the slots and its own documented rate window (``/status`` 2000 per 10 s, separate from
``/run``'s).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from rpdash.core.clock import Clock

#: Longest we ever wait because a server said ``Retry-After`` (seconds).
RETRY_AFTER_CAP = 60.0
#: Exponential backoff: first delay, ceiling, and the random jitter added on top (seconds).
BACKOFF_INITIAL = 0.5
BACKOFF_MAX = 20.0
BACKOFF_JITTER = 0.5
#: Default bound on requests in flight through one client (long-polls included).
DEFAULT_MAX_CONCURRENCY = 100
#: Safety margin on every rate window, as a fraction of its period (see module docstring).
WINDOW_MARGIN = 0.05
#: The margin applies to limits of at least this many requests per period.
MARGIN_FROM = 20
#: Pacing groups of the requests that change something, and how many of them may be in
#: flight together across all endpoints (module docstring: "Writes keep to their share").
#: 16 is ~100 submissions/s at a 150 ms round trip: one endpoint's /run limit.
WRITE_GROUPS = frozenset({"run", "cancel", "retry", "purge-queue"})
WRITE_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class OpLimit:
    """``requests`` per ``period`` seconds and at most ``concurrent`` in flight (None: no cap)."""

    requests: int
    period: float = 10.0
    concurrent: int | None = None


#: Pacing group of each operation -> its documented limit (section 7.1).
OP_GROUP: dict[str, str] = {
    "run": "run",
    "runsync": "runsync",
    "status": "status",
    "status-sync": "status",
    "stream": "status",
    "cancel": "cancel",
    "retry": "retry",
    "purge-queue": "purge-queue",
    "health": "health",
}

DEFAULT_LIMITS: dict[str, OpLimit] = {
    "run": OpLimit(1000, 10.0, 200),
    "runsync": OpLimit(2000, 10.0, 400),
    "status": OpLimit(2000, 10.0, 400),
    "cancel": OpLimit(100, 10.0, 20),
    "purge-queue": OpLimit(2, 10.0, None),
    # not documented: our own conservative choices
    "retry": OpLimit(100, 10.0, 20),
    "health": OpLimit(1000, 10.0, 50),
}


class SlidingWindow:
    """At most ``limit`` grants in any ``period * (1 + margin)`` seconds of ``clock`` time.

    A slot is reserved before sleeping, so concurrent callers queue up in order and a caller
    cancelled while waiting only wastes its own slot (conservative, never over the limit).
    :meth:`reserve` returns the reservation's cell; :meth:`sent` moves it to the moment the
    request really leaves (never earlier), so later grants count from there.
    """

    __slots__ = ("limit", "period", "_clock", "_grants")

    def __init__(self, limit: int, period: float, clock: Clock, margin: float = 0.0) -> None:
        if limit < 1 or period <= 0 or margin < 0:
            raise ValueError("limit must be >= 1, period > 0 and margin >= 0")
        self.limit = limit
        self.period = period * (1.0 + margin)
        self._clock = clock
        self._grants: deque[list[float]] = deque()

    def reserve(self) -> float:
        """Reserve the next slot; return how long to wait before using it (0: go now)."""
        return self.reserve_cell()[0]

    def reserve_cell(self) -> tuple[float, list[float]]:
        """:meth:`reserve`, also returning the reservation (a one-item list: its time)."""
        now = self._clock.now()
        grants = self._grants
        if len(grants) < self.limit:
            at = now
        else:
            at = max(now, grants.popleft()[0] + self.period)
        if grants and grants[-1][0] > at:  # keep the log ordered (no later caller jumps ahead)
            at = grants[-1][0]
        cell = [at]
        grants.append(cell)
        return at - now, cell

    def sent(self, cell: list[float]) -> None:
        """The reserved request leaves now: count it from now if that is later."""
        now = self._clock.now()
        if now > cell[0]:
            cell[0] = now

    async def acquire(self) -> list[float]:
        delay, cell = self.reserve_cell()
        if delay > 0:
            await self._clock.sleep(delay)
        return cell


class _Slot:
    """Async context manager: operation concurrency cap, then the rate window, then the write
    share (writes only), then the global bound. The rate wait happens while holding only the
    operation's own cap, so a slow operation (purge: 2 per 10 s) never holds a global slot
    while it waits, and /run calls waiting for their window hold no write-share slot."""

    __slots__ = ("_sem", "_window", "_global", "_share")

    def __init__(
        self,
        sem: asyncio.Semaphore | None,
        window: SlidingWindow | None,
        global_sem: asyncio.Semaphore,
        share: asyncio.Semaphore | None = None,
    ) -> None:
        self._sem = sem
        self._window = window
        self._global = global_sem
        self._share = share

    async def __aenter__(self) -> None:
        sem = self._sem
        share = self._share
        if sem is not None:
            await sem.acquire()
        took_share = False
        try:
            window = self._window
            cell = await window.acquire() if window is not None else None
            if share is not None:
                await share.acquire()
                took_share = True
            await self._global.acquire()
            if cell is not None and window is not None:
                window.sent(cell)
        except BaseException:
            if took_share and share is not None:
                share.release()
            if sem is not None:
                sem.release()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._global.release()
        if self._share is not None:
            self._share.release()
        if self._sem is not None:
            self._sem.release()


class Pacer:
    """Per (endpoint, operation group) rate windows and concurrency caps, one share of the
    in-flight slots for all writes (``write_concurrency``, at most ``max_concurrency``) and
    one global bound on requests in flight. ``enabled=False`` keeps only the global bound
    and the write share."""

    def __init__(
        self,
        clock: Clock,
        *,
        enabled: bool = True,
        limits: dict[str, OpLimit] | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        write_concurrency: int = WRITE_CONCURRENCY,
    ) -> None:
        self._clock = clock
        self.enabled = enabled
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.max_concurrency = max_concurrency
        self.write_concurrency = max(1, min(int(write_concurrency), max_concurrency))
        self._global: asyncio.Semaphore | None = None
        self._writes: asyncio.Semaphore | None = None
        self._slots: dict[tuple[str, str], _Slot] = {}

    def slot(self, endpoint_id: str, op: str) -> _Slot:
        """The guard for one request of ``op`` on ``endpoint_id`` (cached: cheap to call)."""
        key = (endpoint_id, op)
        s = self._slots.get(key)
        if s is None:
            group = OP_GROUP.get(op, op)
            gkey = (endpoint_id, "#" + group)
            s = self._slots.get(gkey)
            if s is None:
                s = self._slots[gkey] = self._make(group)
            self._slots[key] = s
        return s

    def _make(self, group: str) -> _Slot:
        if self._global is None:
            self._global = asyncio.Semaphore(self.max_concurrency)
        share = None
        if group in WRITE_GROUPS:
            if self._writes is None:
                self._writes = asyncio.Semaphore(self.write_concurrency)
            share = self._writes
        lim = self.limits.get(group) if self.enabled else None
        if lim is None:
            return _Slot(None, None, self._global, share)
        sem = asyncio.Semaphore(lim.concurrent) if lim.concurrent else None
        margin = WINDOW_MARGIN if lim.requests >= MARGIN_FROM else 0.0
        window = SlidingWindow(lim.requests, lim.period, self._clock, margin)
        return _Slot(sem, window, self._global, share)


def backoff_delay(attempt: int, *, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): exponential, capped, plus jitter so
    that many clients failing together do not come back together."""
    r = (rng or random).random()
    return min(BACKOFF_MAX, BACKOFF_INITIAL * (2 ** max(0, attempt - 1))) + r * BACKOFF_JITTER


def retry_after_delay(
    retry_after: float | None, attempt: int, *, rng: random.Random | None = None
) -> float:
    """Delay after a 429: the server's ``Retry-After`` (capped at ``RETRY_AFTER_CAP``) with a
    little jitter, or exponential backoff when the server gave none."""
    if retry_after is None:
        return backoff_delay(attempt, rng=rng)
    r = (rng or random).random()
    return min(RETRY_AFTER_CAP, max(0.0, retry_after)) + r * 0.1 * BACKOFF_JITTER


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 10.2.3).
    Garbage gives None (the caller then backs off on its own); past dates give 0."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        pass
    else:
        if secs != secs or secs in (float("inf"), float("-inf")):
            return None
        return max(0.0, secs)
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if dt is None:
        return None
    try:
        return max(0.0, dt.timestamp() - now_wall)
    except (OverflowError, OSError, ValueError):
        return None
