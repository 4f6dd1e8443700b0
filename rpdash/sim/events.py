"""The clock-driven event loop under the simulator: a heap of future happenings run in
time order, on a fake clock (tests: :meth:`EventLoop.advance`) or a real/scaled one (one
asyncio timer armed for the earliest event), and the long-poll waits they wake."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Callable
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.sim.model import TERMINAL, SimJob, _Event

log = logging.getLogger("rpdash.sim")


class EventLoop:
    """Simulated time and the event heap. Subclassed by :class:`~rpdash.sim.engine.Engine`."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self._heap: list[tuple[float, int, _Event]] = []
        self._seq = itertools.count()
        self._ncancelled = 0
        self._manual = hasattr(self.clock, "advance_sync")
        self._scale = float(getattr(self.clock, "scale", 1.0) or 1.0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None
        self._armed_at = math.inf
        self._t: float | None = None
        self._processing = False
        self._closed = False
        self.events_processed = 0
        #: exceptions raised by event callbacks (a bug if not empty; tests check it)
        self.errors: list[BaseException] = []

    def stop_timer(self) -> None:
        """Stop driving the loop from asyncio (``close``) or forget the armed timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_at = math.inf

    def drop_events(self) -> None:
        """Forget every scheduled event (a later ``cancel_event`` on one is a no-op)."""
        for _, _, ev in self._heap:
            ev.cancelled = True
        self._heap.clear()
        self._ncancelled = 0
        self.stop_timer()

    def now(self) -> float:
        """Simulated monotonic seconds (the time of the event being run, if any)."""
        return self._t if self._t is not None else self.clock.now()

    def wall(self) -> float:
        """Simulated epoch seconds matching :meth:`now`."""
        return self.clock.time() - (self.clock.now() - self.now())

    def schedule(self, delay: float, fn: Callable[..., Any], *args: Any) -> _Event:
        return self.schedule_at(self.now() + max(0.0, delay), fn, *args)

    def schedule_at(self, when: float, fn: Callable[..., Any], *args: Any) -> _Event:
        ev = _Event(when, fn, args)
        heapq.heappush(self._heap, (when, next(self._seq), ev))
        if when < self._armed_at and not self._processing:
            self._arm()
        return ev

    def cancel_event(self, ev: _Event | None) -> None:
        if ev is None or ev.cancelled or ev.fired:
            return
        ev.cancelled = True
        self._ncancelled += 1
        if self._ncancelled > 512 and self._ncancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if not e[2].cancelled]
            heapq.heapify(self._heap)
            self._ncancelled = 0

    def next_event_time(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._ncancelled -= 1
        return heap[0][0] if heap else None

    @property
    def pending_events(self) -> int:
        return len(self._heap) - self._ncancelled

    def sync(self) -> int:
        """Run every event due by the clock's now. Returns how many ran."""
        n = self._run_until(self.clock.now())
        if n:
            self._arm()
        return n

    def advance(self, seconds: float) -> None:
        """Move a fake clock forward by ``seconds``, running due events in time order."""
        if not self._manual:
            raise RuntimeError("Engine.advance needs a clock with advance_sync (FakeClock)")
        if seconds < 0:
            raise ValueError("cannot go back in time")
        clock: Any = self.clock
        target = clock.now() + seconds
        while True:
            nxt = self.next_event_time()
            if nxt is None or nxt > target:
                break
            if nxt > clock.now():
                clock.advance_sync(nxt - clock.now())
            self._run_until(nxt)
        if target > clock.now():
            clock.advance_sync(target - clock.now())
        self._run_until(clock.now())
        self._arm()

    def _run_until(self, t: float) -> int:
        if self._processing:
            return 0
        heap = self._heap
        n = 0
        self._processing = True
        try:
            while heap:
                when, _, ev = heap[0]
                if ev.cancelled:
                    heapq.heappop(heap)
                    self._ncancelled -= 1
                    continue
                if when > t:
                    break
                heapq.heappop(heap)
                ev.fired = True
                self._t = when
                try:
                    ev.fn(*ev.args)
                except Exception as exc:  # a bug: keep the engine alive, make it visible
                    log.exception("simulator event %r failed", ev.fn)
                    self.errors.append(exc)
                n += 1
        finally:
            self._t = None
            self._processing = False
        self.events_processed += n
        return n

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Drive the engine from ``loop`` (the server's loop); call from that loop's thread."""
        self._loop = loop
        self._closed = False
        self.sync()
        self._arm()

    def _arm(self) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        nxt = self.next_event_time()
        if nxt is None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._armed_at = math.inf
            return
        if self._timer is not None and self._armed_at <= nxt:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self.clock.now()
        if self._manual:
            if nxt <= now:
                self._timer = loop.call_soon(self._on_timer)
                self._armed_at = nxt
            else:
                self._armed_at = math.inf
        else:
            delay = max(0.0, (nxt - now) / self._scale)
            self._timer = loop.call_later(delay, self._on_timer)
            self._armed_at = nxt

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_at = math.inf
        self._run_until(self.clock.now())
        self._arm()

    async def wait(self, job: SimJob, cond: Callable[[], bool], timeout: float) -> bool:
        """Wait (in simulated seconds) until ``cond()`` holds; False on timeout, deletion
        or shutdown. Woken by the engine's notifications, never by polling."""
        if cond():
            return True
        if timeout <= 0 or job.deleted or self._closed:
            return False
        loop = asyncio.get_running_loop()
        box: list[Any] = [None, False]  # [future, timed_out]

        def _timeout() -> None:
            box[1] = True
            fut = box[0]
            if fut is not None and not fut.done():
                fut.set_result(None)

        tev = self.schedule(timeout, _timeout)
        try:
            while True:
                fut: asyncio.Future[None] = loop.create_future()
                box[0] = fut
                job.waiters.append(fut)
                try:
                    await fut
                finally:
                    try:
                        job.waiters.remove(fut)
                    except ValueError:
                        pass
                if cond():
                    return True
                if box[1] or job.deleted or self._closed:
                    return False
        finally:
            self.cancel_event(tev)

    async def wait_terminal(self, job: SimJob, timeout: float) -> bool:
        return await self.wait(job, lambda: job.status in TERMINAL, timeout)

    async def wait_stream(self, job: SimJob, timeout: float) -> bool:
        return await self.wait(job, lambda: bool(job.pending) or job.status in TERMINAL, timeout)

    def _notify(self, job: SimJob) -> None:
        ws = job.waiters
        if ws:
            job.waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)
