"""The request budget while a submit burst is on: writes keep to their share of the
client's in-flight slots, so status polls still go out (rpdash/api/limits.py, "Writes keep
to their share"; bench/README.md section 3).

The server here answers one request at a time, 5 ms each, in arrival order (a server, or a
client loop, that is the bottleneck): what each kind of request gets is then its share of
the requests in flight.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from rpdash.api.limits import Pacer
from rpdash.core.clock import FakeClock

SERVICE_S = 0.005  # one answer every 5 ms: 200 answers/s in all


async def _burst(write_concurrency: int | None = None) -> Counter[str]:
    """64 callers submit 10,000 jobs over 20 endpoints (500 each: no /run window fills, so
    nothing paces them) while 32 pollers ask /status; 5 s of fake time."""
    clock = FakeClock()
    kw = {} if write_concurrency is None else {"write_concurrency": write_concurrency}
    pacer = Pacer(clock, **kw)
    server = asyncio.Lock()  # FIFO: answers in arrival order
    answered: Counter[str] = Counter()
    endpoints = [f"ep-{i:02d}" for i in range(20)]

    async def request(ep: str, op: str) -> None:
        async with pacer.slot(ep, op):
            async with server:
                await clock.sleep(SERVICE_S)
            answered[op] += 1

    jobs = iter(range(10_000))

    async def submitter() -> None:
        for n in jobs:
            await request(endpoints[n % 20], "run")

    async def poller(i: int) -> None:
        while True:
            await request(endpoints[i % 20], "status")

    tasks = [asyncio.create_task(submitter()) for _ in range(64)]
    tasks += [asyncio.create_task(poller(i)) for i in range(32)]
    await clock.advance(5.0, step=SERVICE_S)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return answered


async def test_status_polls_keep_their_share_while_500_a_second_of_run_calls_queue() -> None:
    answered = await _burst()
    total = answered["run"] + answered["status"]
    assert total >= 900  # the server was kept busy (200/s for 5 s)
    # 32 pollers against at most WRITE_CONCURRENCY writes in flight: about 2/3 each
    assert answered["status"] / 5.0 >= 100  # >= 100 status answers/s (was ~65/s)
    assert answered["status"] >= 0.6 * total
    assert answered["run"] / 5.0 >= 40  # and the submissions go on meanwhile


async def test_without_the_write_share_status_gets_only_a_third() -> None:
    """The same burst with the share as large as the global bound (how it was): 64 /run in
    flight against 32 status polls, so status gets ~1/3 of the answers."""
    answered = await _burst(write_concurrency=100)
    total = answered["run"] + answered["status"]
    assert answered["status"] < 0.4 * total


async def test_run_calls_waiting_on_their_window_hold_no_write_slot() -> None:
    """/run calls queued on a full rate window wait without a write-share slot, so a
    cancel still goes out at once."""
    clock = FakeClock()
    pacer = Pacer(clock)
    inside = asyncio.Event()

    async def run() -> None:
        async with pacer.slot("ep", "run"):
            pass

    # fill /run's window (1000 per 10 s), then queue 500 more behind it
    await asyncio.gather(*(run() for _ in range(1000)))
    waiting = [asyncio.create_task(run()) for _ in range(500)]
    await clock.advance(0.5, step=0.1)
    assert not any(t.done() for t in waiting)

    async def cancel() -> None:
        async with pacer.slot("ep", "cancel"):
            inside.set()

    c = asyncio.create_task(cancel())
    await clock.advance(0.01)
    assert inside.is_set() and c.done()
    for t in waiting:
        t.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
