"""Clocks. Everything that waits or timestamps takes a ``Clock`` so tests can inject a fake.

``now()`` is monotonic seconds (for intervals and deadlines), ``time()`` wall-clock epoch
seconds (for what is stored and shown), ``sleep()`` an awaitable wait.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Real time sped up by ``scale`` (the demo uses it so that minutes pass in seconds)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self._t0 = _time.monotonic()
        self._w0 = _time.time()

    def now(self) -> float:
        return (_time.monotonic() - self._t0) * self.scale + self._t0

    def time(self) -> float:
        return self._w0 + (_time.monotonic() - self._t0) * self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)


class FakeClock:
    """A manual clock. ``sleep`` waits until ``advance`` moves time past its deadline.

    ``advance`` is async: it wakes sleepers in deadline order and lets the event loop run
    their continuations, so a test reads as "advance 5 s, then assert".
    """

    def __init__(self, start: float = 1_000.0, wall: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        await fut

    def advance_sync(self, seconds: float) -> None:
        """Move time forward and resolve due sleepers without yielding (sync callers)."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            when, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, when)
            if not fut.done():
                fut.set_result(None)
        self._now = target

    async def advance(self, seconds: float, *, step: float | None = None) -> None:
        """Move time forward by ``seconds``, waking sleepers in order.

        With ``step``, time moves in increments of at most ``step`` seconds with the loop
        run between them, so chains of sleeps that start during the advance are honoured.
        """
        target = self._now + seconds
        while True:
            await _settle()
            nxt = self._sleepers[0][0] if self._sleepers else None
            limit = target if step is None else min(target, self._now + step)
            if nxt is not None and nxt <= limit:
                when, _, fut = heapq.heappop(self._sleepers)
                self._now = max(self._now, when)
                if not fut.done():
                    fut.set_result(None)
                continue
            if self._now >= target:
                break
            self._now = limit
        await _settle()

    @property
    def pending(self) -> int:
        return sum(1 for *_, f in self._sleepers if not f.done())


async def _settle(rounds: int = 5) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
