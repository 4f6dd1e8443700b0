"""RunPodClient.stream / stream_once against the simulator's draining /stream long-polls."""

from __future__ import annotations

import asyncio

import pytest

from rpdash.api.client import RunPodClient
from rpdash.api.protocol import StreamEnd
from rpdash.core.errors import NotFound
from rpdash.core.models import JobStatus, StreamChunk
from tests.unit.test_client import StepClock, client_for, req


async def collect(agen, *, limit: float = 20.0):
    """All items of a client.stream(), failing (not hanging) if it does not end."""

    async def run():
        return [item async for item in agen]

    return await asyncio.wait_for(run(), limit)


def outputs(items):
    return [i.output for i in items if isinstance(i, StreamChunk)]


async def test_stream_yields_chunks_in_order_then_stream_end(sim):
    items_in = ["a", "b", {"c": 3}, [4], "e"]
    async with client_for(sim) as c:
        ref = await c.run("mock-stream", req(mock_return=items_in, mock_delay=0.05))
        items = await collect(c.stream("mock-stream", ref.id))
    assert outputs(items) == items_in
    end = items[-1]
    assert isinstance(end, StreamEnd) and sum(isinstance(i, StreamEnd) for i in items) == 1
    assert end.job.status is JobStatus.COMPLETED
    assert end.job.output == items_in  # the aggregate, read from /status once at the end


async def test_stream_ends_on_cancelled(sim):
    """runpod-python never stops on CANCELLED; we must."""
    async with client_for(sim) as c:
        ref = await c.run(
            "mock-stream", req(mock_return=[f"t{i}" for i in range(50)], mock_delay=0.2)
        )
        got: list[object] = []
        async for item in c.stream("mock-stream", ref.id, wait_ms=5_000):
            got.append(item)
            if len(got) == 2:
                await c.cancel("mock-stream", ref.id)
            if len(got) > 50:  # pragma: no cover - would mean the stream did not stop
                break
    end = got[-1]
    assert isinstance(end, StreamEnd) and end.job.status is JobStatus.CANCELLED
    assert 2 <= len(outputs(got)) < 50


async def test_stream_end_carries_the_generators_error(sim):
    async with client_for(sim) as c:
        ref = await c.run(
            "mock-stream", req(mock_return=["a", "b", {"error": "boom at c"}, "d"], mock_delay=0.05)
        )
        items = await collect(c.stream("mock-stream", ref.id))
    assert outputs(items) == ["a", "b"]  # the error item is not a chunk (runpod-python 1.7.7+)
    end = items[-1]
    assert end.job.status is JobStatus.FAILED
    assert "boom at c" in end.job.error_text


async def test_stream_of_a_plain_handler_just_ends(sim):
    async with client_for(sim) as c:
        ref = await c.run("mock", req(mock_return="whole"))
        items = await collect(c.stream("mock", ref.id))
    assert outputs(items) == []
    assert items[-1].job.output == "whole"


async def test_stream_once_drains(sim):
    async with client_for(sim) as c:
        ref = await c.run("mock-stream", req(mock_return=["x", "y"]))
        await c.status_sync("mock-stream", ref.id, wait_ms=10_000)
        first = await c.stream_once("mock-stream", ref.id, wait_ms=1_000)
        second = await c.stream_once("mock-stream", ref.id, wait_ms=1_000)
    assert [ch.output for ch in first.stream] == ["x", "y"]
    assert first.status is JobStatus.COMPLETED
    assert second.stream == []  # nothing replayed


async def test_stream_of_unknown_job_is_not_found(sim):
    async with client_for(sim) as c:
        with pytest.raises(NotFound) as exc:
            await collect(c.stream("mock-stream", "nope-u1"))
    assert "job nope-u1 not found" in str(exc.value)


async def test_stream_survives_5xx_without_losing_chunks(sim):
    """5xx and 429 come before the server drains anything: retrying loses nothing."""
    sim.set_faults(operation="stream", error_rate=0.3, throttle_rate=0.2, retry_after=1)
    items_in = [f"w{i}" for i in range(12)]
    clock = StepClock()
    async with client_for(sim, clock=clock, max_retries=20) as c:
        ref = await c.run("mock-stream", req(mock_return=items_in, mock_delay=0.03))
        items = await collect(c.stream("mock-stream", ref.id, wait_ms=1_000))
    assert outputs(items) == items_in
    assert clock.slept  # faults did happen and were retried


class CutProxy:
    """A TCP proxy to the simulator that can cut every open connection at once, the way a
    flaky network or a restarted load balancer does."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.cuts = 0

    async def start(self) -> CutProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        pair = (writer, up_w)
        self.pairs.add(pair)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                w.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))
        finally:
            self.pairs.discard(pair)

    def cut(self) -> None:
        self.cuts += 1
        for a, b in list(self.pairs):
            a.transport.abort()
            b.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_stream_survives_dropped_connections_without_loss_or_duplicates(sim):
    """Cut the connection while a /stream long-poll is being held (after each of the first
    chunks): the server takes no chunks for a poll whose client is gone, the client re-polls,
    and every chunk arrives exactly once, in order."""
    proxy = await CutProxy(sim.port).start()
    items_in = [f"tok{i}" for i in range(6)]
    clock = StepClock()
    got: list[object] = []
    try:
        async with RunPodClient(
            sim.api_key, f"http://127.0.0.1:{proxy.port}/v2", clock=clock, max_retries=6
        ) as c:
            ref = await c.run("mock-stream", req(mock_return=items_in, mock_delay=0.4))
            cuts: list[asyncio.Task[None]] = []

            async def cut_soon() -> None:
                await asyncio.sleep(0.12)  # the next poll is being held: no chunk is due yet
                proxy.cut()

            async def read() -> None:
                async for item in c.stream("mock-stream", ref.id, wait_ms=5_000):
                    got.append(item)
                    if isinstance(item, StreamChunk) and len(got) <= 4:  # cut 4 times
                        cuts.append(asyncio.create_task(cut_soon()))

            await asyncio.wait_for(read(), 30)
            await asyncio.gather(*cuts)
    finally:
        await proxy.close()
    assert outputs(got) == items_in
    assert isinstance(got[-1], StreamEnd) and got[-1].job.status is JobStatus.COMPLETED
    assert len(clock.slept) >= 4  # each cut broke a request that was then retried
