"""A fake of the RunPodAPI protocol for the services' scheduling tests (no HTTP).

It models one FIFO queue per endpoint with ``workers`` workers on the injected FakeClock, so
scheduling logic (who is polled when, how many requests, how late a finish is noticed) can be
tested in simulated time, fast and deterministic. Network behaviour is tested against the
real simulator and client in test_services_integration.py; this is only for the logic.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from rpdash.api.protocol import StreamEnd
from rpdash.core.errors import NotFound, RateLimited
from rpdash.core.models import Health, Job, JobRef, JobStatus, PurgeResult, RunRequest, StreamChunk


@dataclass(eq=False)
class FJob:
    id: str
    ep: str
    input: dict[str, Any]
    submitted: float
    exec_s: float
    seq: int
    low: bool = False
    status: JobStatus = JobStatus.IN_QUEUE
    started: float | None = None
    finished: float | None = None
    output: Any = None
    error: str | None = None


@dataclass
class FEndpoint:
    id: str
    workers: int
    queue: deque = field(default_factory=deque)
    running: list = field(default_factory=list)  # heap (finish, seq, job)
    t: float = 0.0
    completed: int = 0
    failed: int = 0


class FakeAPI:
    base_url = "http://fake.invalid/v2"

    def __init__(
        self,
        clock: Any,
        *,
        workers: int = 2,
        exec_time: Callable[[random.Random, dict], float] | float = 1.0,
        seed: int = 0,
        latency: float = 0.0,
        rate_limit: tuple[int, float] | None = (2000, 10.0),
        report_times_in_progress: bool = True,
    ) -> None:
        self.clock = clock
        self.workers = workers
        self.exec_time = exec_time
        self.rng = random.Random(seed)
        self.latency = latency
        self.rate_limit = rate_limit
        self.report_times = report_times_in_progress
        self.eps: dict[str, FEndpoint] = {}
        self.jobs: dict[str, FJob] = {}
        self.calls: Counter[str] = Counter()
        self.per_job: Counter[str] = Counter()
        self.fail_next: dict[str, list[BaseException]] = {}
        self.invisible_for = 0.0  # a fresh job 404s this long (eventual consistency)
        self.in_flight = 0
        self.max_in_flight = 0
        self.throttled = 0  # 429s handed out
        self._window: dict[tuple[str, str], deque[float]] = {}
        self._ids = itertools.count(1)
        self.streams: dict[str, list[Any]] = {}
        self.health_hook: Callable[[str], Any] | None = None

    # ------------------------------------------------------------------ model

    def endpoint(self, ep: str, workers: int | None = None) -> FEndpoint:
        e = self.eps.get(ep)
        if e is None:
            e = self.eps[ep] = FEndpoint(ep, self.workers if workers is None else workers)
            e.t = self.clock.now()
        elif workers is not None:
            e.workers = workers
        return e

    def advance(self, ep: str) -> None:
        e = self.endpoint(ep)
        now = self.clock.now()
        while True:
            while e.queue and len(e.running) < e.workers:
                j = e.queue.popleft()
                j.started = max(j.submitted, e.t)
                j.status = JobStatus.IN_PROGRESS
                heapq.heappush(e.running, (j.started + j.exec_s, j.seq, j))
            if e.running and e.running[0][0] <= now:
                t, _, j = heapq.heappop(e.running)
                e.t = t
                j.finished = t
                if j.input.get("mock_error"):
                    j.status = JobStatus.FAILED
                    j.error = "Mock error"
                    e.failed += 1
                else:
                    j.status = JobStatus.COMPLETED
                    j.output = j.input.get("mock_return", "Hello World!")
                    e.completed += 1
                continue
            break
        e.t = max(e.t, now)

    def add_job(self, ep: str, input: dict | None = None, *, low: bool = False) -> FJob:
        self.advance(ep)
        e = self.endpoint(ep)
        input = input or {}
        et = input.get("mock_delay")
        if et is None:
            et = self.exec_time(self.rng, input) if callable(self.exec_time) else self.exec_time
        jid = f"job-{next(self._ids)}"
        j = FJob(jid, ep, input, self.clock.now(), float(et), next(self._ids), low=low)
        self.jobs[jid] = j
        if low:
            e.queue.append(j)
        else:
            # normal priority before low priority
            idx = len(e.queue)
            while idx > 0 and e.queue[idx - 1].low:
                idx -= 1
            e.queue.insert(idx, j)
        self.advance(ep)
        return j

    def job_view(self, j: FJob) -> Job:
        d: dict[str, Any] = {"id": j.id, "status": j.status.value}
        now = self.clock.now()
        if j.started is not None and (self.report_times or j.status.terminal):
            d["delayTime"] = int((j.started - j.submitted) * 1000)
            end = j.finished if j.finished is not None else now
            d["executionTime"] = int((end - j.started) * 1000)
        if j.status is JobStatus.IN_PROGRESS:
            prog = j.input.get("mock_progress")
            if prog:
                frac = (now - (j.started or now)) / max(1e-9, j.exec_s)
                d["output"] = prog[min(len(prog) - 1, int(frac * len(prog)))]
        if j.status.terminal:
            if j.output is not None:
                d["output"] = j.output
            if j.error is not None:
                d["error"] = j.error
        return Job.model_validate(d)

    # ------------------------------------------------------------------ plumbing

    async def _enter(self, op: str, ep: str, job_id: str | None = None) -> None:
        self.calls[op] += 1
        if job_id is not None and op in ("status", "status-sync"):
            self.per_job[job_id] += 1
        errs = self.fail_next.get(op)
        if errs:
            raise errs.pop(0)
        if self.rate_limit is not None and op in ("status", "status-sync", "stream"):
            limit, period = self.rate_limit
            w = self._window.setdefault((ep, "status"), deque())
            now = self.clock.now()
            while w and w[0] <= now - period:
                w.popleft()
            if len(w) >= limit:
                self.throttled += 1
                raise RateLimited("429 from the fake", retry_after=1.0)
            w.append(now)
        if self.latency:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await self.clock.sleep(self.latency)
            finally:
                self.in_flight -= 1

    def _get(self, ep: str, job_id: str) -> FJob:
        j = self.jobs.get(job_id)
        if j is None or j.ep != ep:
            raise NotFound(f"job {job_id} not found", status_code=404)
        if self.invisible_for and self.clock.now() - j.submitted < self.invisible_for:
            raise NotFound(f"job {job_id} not found (not yet)", status_code=404)
        return j

    # ------------------------------------------------------------------ protocol

    async def run(self, endpoint_id: str, request: RunRequest) -> JobRef:
        await self._enter("run", endpoint_id)
        low = bool(request.policy and request.policy.lowPriority)
        j = self.add_job(endpoint_id, dict(request.input), low=low)
        return JobRef(id=j.id, status="IN_QUEUE")

    async def runsync(
        self,
        endpoint_id: str,
        request: RunRequest,
        *,
        wait_ms: int | None = None,
        timeout: float | None = None,
        on_job_id: Callable[[str], None] | None = None,
    ) -> Job:
        await self._enter("runsync", endpoint_id)
        j = self.add_job(endpoint_id, dict(request.input))
        job = await self._hold(j, (wait_ms or 90_000) / 1000)
        if on_job_id is not None:
            on_job_id(j.id)
        while not job.terminal:
            job = await self.status_sync(endpoint_id, j.id, wait_ms=90_000)
        return job

    async def _hold(self, j: FJob, wait: float) -> Job:
        deadline = self.clock.now() + wait
        while True:
            self.advance(j.ep)
            if j.status.terminal or self.clock.now() >= deadline:
                return self.job_view(j)
            e = self.eps[j.ep]
            nxt = e.running[0][0] if e.running else deadline
            await self.clock.sleep(max(0.0, min(deadline, nxt) - self.clock.now()) or 0.001)

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job:
        await self._enter("status", endpoint_id, job_id)
        j = self._get(endpoint_id, job_id)
        self.advance(endpoint_id)
        return self.job_view(j)

    async def status_sync(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> Job:
        await self._enter("status-sync", endpoint_id, job_id)
        j = self._get(endpoint_id, job_id)
        return await self._hold(j, (wait_ms or 90_000) / 1000)

    async def stream_once(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None):
        raise NotImplementedError

    async def stream(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> AsyncIterator[StreamChunk | StreamEnd]:
        """Scripted: ``streams[job_id]`` is a list of steps consumed as read (draining):
        a list of outputs (one batch), a float (the server holds that long), an exception
        (the connection drops), or "end" (the job ends: StreamEnd with the job's view)."""
        self.calls["stream"] += 1
        script = self.streams[job_id]
        while script:
            step = script.pop(0)
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, (int, float)):
                await self.clock.sleep(float(step))
                continue
            if step == "end":
                j = self.jobs.get(job_id)
                if j is not None:
                    self.advance(endpoint_id)
                    yield StreamEnd(self.job_view(j))
                else:
                    yield StreamEnd(Job(id=job_id, status="COMPLETED"))
                return
            for out in step:
                yield StreamChunk(output=out)

    async def cancel(self, endpoint_id: str, job_id: str) -> JobRef:
        await self._enter("cancel", endpoint_id)
        j = self._get(endpoint_id, job_id)
        self.advance(endpoint_id)
        e = self.eps[endpoint_id]
        if not j.status.terminal:
            if j in e.queue:
                e.queue.remove(j)
            e.running = [r for r in e.running if r[2] is not j]
            heapq.heapify(e.running)
            j.status = JobStatus.CANCELLED
            j.finished = self.clock.now()
        return JobRef(id=job_id, status="CANCELLED")

    async def retry(self, endpoint_id: str, job_id: str) -> JobRef:
        await self._enter("retry", endpoint_id)
        j = self._get(endpoint_id, job_id)
        if j.status not in (JobStatus.FAILED, JobStatus.TIMED_OUT):
            from rpdash.core.errors import BadRequest

            raise BadRequest("job cannot be retried", status_code=400)
        j.status = JobStatus.IN_QUEUE
        j.error = None
        j.output = None
        j.started = j.finished = None
        j.input = {k: v for k, v in j.input.items() if k != "mock_error"}
        j.submitted = self.clock.now()
        self.eps[endpoint_id].queue.append(j)
        self.advance(endpoint_id)
        return JobRef(id=job_id, status="IN_QUEUE")

    async def health(self, endpoint_id: str) -> Health:
        await self._enter("health", endpoint_id)
        if self.health_hook is not None:
            r = self.health_hook(endpoint_id)
            if isinstance(r, BaseException):
                raise r
        self.advance(endpoint_id)
        e = self.endpoint(endpoint_id)
        return Health.model_validate(
            {
                "jobs": {
                    "inQueue": len(e.queue),
                    "inProgress": len(e.running),
                    "completed": e.completed,
                    "failed": e.failed,
                    "retried": 0,
                },
                "workers": {"running": len(e.running), "idle": e.workers - len(e.running)},
            }
        )

    async def purge_queue(self, endpoint_id: str) -> PurgeResult:
        await self._enter("purge-queue", endpoint_id)
        self.advance(endpoint_id)
        e = self.endpoint(endpoint_id)
        n = len(e.queue)
        for j in e.queue:
            j.status = JobStatus.CANCELLED
            j.finished = self.clock.now()
        e.queue.clear()
        return PurgeResult(removed=n, status="completed")

    async def aclose(self) -> None:
        pass


class Recorder:
    """A sink that keeps every event (with the fake time it arrived)."""

    def __init__(self, clock: Any = None) -> None:
        self.events: list[Any] = []
        self.times: list[float] = []
        self.clock = clock

    def __call__(self, ev: Any) -> None:
        self.events.append(ev)
        self.times.append(self.clock.now() if self.clock is not None else 0.0)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def clear(self) -> None:
        self.events.clear()
        self.times.clear()


async def settle(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)
