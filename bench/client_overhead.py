"""Per-call overhead of ``RunPodClient.status`` against raw ``httpx.AsyncClient``.

Both talk to the same ``SimServer`` on 127.0.0.1 in the same process run, over keep-alive
HTTP/1.1, fetching the status of one finished job. The raw loop does the least a correct
caller must do (GET, status check, ``resp.json()``); the client adds id checks, pacing
bookkeeping, error mapping and parsing into a ``Job`` model. Rounds alternate between the
two so that drift of the machine (or the simulator) affects both alike.

Pacing is switched off for the timed rounds (2000 status calls per 10 s is the documented
limit, and the benchmark makes more than that); the bookkeeping of an enabled pacer is timed
on its own below (it is a dictionary lookup, two semaphores and a deque append).

    .venv/bin/python bench/client_overhead.py [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from rpdash.api.client import RunPodClient
from rpdash.api.limits import OpLimit, Pacer
from rpdash.core.clock import RealClock
from rpdash.core.models import RunRequest
from rpdash.sim.server import SimServer


async def _finished_job(client: RunPodClient, endpoint: str) -> str:
    """A job submitted with /run and followed to its end: its result stays for 30 min (a
    /runsync result expires after 60 s, before the rounds end on a slow machine)."""
    ref = await client.run(endpoint, RunRequest(input={"mock_return": "ok"}))
    job = await client.follow(endpoint, ref.id, timeout=60)
    assert job.terminal, job
    return job.id


async def http_get_body(sim: SimServer, endpoint: str, job_id: str) -> bytes:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {sim.api_key}"}) as http:
        r = await http.get(f"{sim.base_url}/{endpoint}/status/{job_id}")
        return r.content


async def _time_client(client: RunPodClient, endpoint: str, job_id: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await client.status(endpoint, job_id)
    return (time.perf_counter() - t0) / n * 1e6


async def _time_raw(http: httpx.AsyncClient, url: str, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        r = await http.get(url)
        if r.status_code != 200:
            raise RuntimeError(r.status_code)
        r.json()
    return (time.perf_counter() - t0) / n * 1e6


async def _time_pacer(n: int) -> float:
    pacer = Pacer(RealClock(), enabled=True)
    pacer.limits["status"] = OpLimit(10**9, 10.0, 400)
    slot = pacer.slot("ep", "status")
    t0 = time.perf_counter()
    for _ in range(n):
        async with slot:
            pass
    return (time.perf_counter() - t0) / n * 1e6


def _mock_transport(job_body: bytes) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=job_body, headers={"content-type": "application/json"})

    return httpx.MockTransport(handler)


async def _no_network(job_body: bytes, calls: int, rounds: int) -> tuple[float, float]:
    """The same comparison with an in-memory transport: only client-side CPU is left, so
    the difference is not drowned in the simulator's (same-process) noise."""
    transport = _mock_transport(job_body)
    ours, raw = [], []
    async with RunPodClient("k", "http://127.0.0.1:1/v2", rate_limits=False,
                            transport=transport) as client:
        async with httpx.AsyncClient(transport=transport,
                                     headers={"Authorization": "Bearer k"}) as http:
            url = "http://127.0.0.1:1/v2/mock/status/j1"
            await _time_client(client, "mock", "j1", 500)
            await _time_raw(http, url, 500)
            for _ in range(rounds):
                ours.append(await _time_client(client, "mock", "j1", calls))
                raw.append(await _time_raw(http, url, calls))
    return statistics.mean(ours), statistics.mean(raw)


async def main(calls: int, rounds: int) -> None:
    with SimServer(rate_limits=False) as sim:  # the bench makes more calls than 2000/10 s
        endpoint = "mock"
        async with RunPodClient(sim.api_key, sim.base_url, rate_limits=False) as client:
            job_id = await _finished_job(client, endpoint)
            url = f"{sim.base_url}/{endpoint}/status/{job_id}"
            async with httpx.AsyncClient(
                headers={"Authorization": f"Bearer {sim.api_key}"}
            ) as http:
                # warm-up: connections open, code paths hot
                await _time_client(client, endpoint, job_id, 200)
                await _time_raw(http, url, 200)
                ours: list[float] = []
                raw: list[float] = []
                for _ in range(rounds):
                    ours.append(await _time_client(client, endpoint, job_id, calls))
                    raw.append(await _time_raw(http, url, calls))
            job_body = (await http_get_body(sim, endpoint, job_id))
        pacer_us = await _time_pacer(100_000)
        nn_ours, nn_raw = await _no_network(job_body, calls * 2, rounds)

    m_ours, m_raw = statistics.mean(ours), statistics.mean(raw)
    print(f"status call, {rounds} rounds x {calls} calls, same SimServer, same run")
    print(f"  RunPodClient.status : {m_ours:8.1f} us/call  (rounds: "
          f"{', '.join(f'{x:.0f}' for x in ours)})")
    print(f"  raw httpx GET+json  : {m_raw:8.1f} us/call  (rounds: "
          f"{', '.join(f'{x:.0f}' for x in raw)})")
    print(f"  overhead            : {m_ours - m_raw:+8.1f} us/call ({(m_ours / m_raw - 1) * 100:+.1f}%)")
    print(f"  pacer slot (enabled, not limiting): {pacer_us:.2f} us/call")
    print("no network (httpx.MockTransport answering the same job JSON): client-side CPU only")
    print(f"  RunPodClient.status : {nn_ours:8.1f} us/call")
    print(f"  raw httpx GET+json  : {nn_raw:8.1f} us/call")
    print(f"  overhead            : {nn_ours - nn_raw:+8.1f} us/call")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    asyncio.run(main(a.calls, a.rounds))
