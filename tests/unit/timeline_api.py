"""A scripted fake of the RunPod API for the tracker's platform-quirk tests (no HTTP).

Every job answers ``/status`` from its *timeline*: a list of ``(from_time, answer)`` steps on
the injected FakeClock, the last step whose time has come being the answer. An answer is the
job object as a dict; ``"running_since": t`` in it makes ``executionTime`` grow from ``t``
(as a running job's does on the platform). ``/health`` counts the jobs' current statuses, so
it always agrees with ``/status``. ``pickup_timelines`` builds the timelines of jobs that
workers pick in an order of the test's choosing (random, newest first...).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from rpdash.core.errors import NotFound
from rpdash.core.models import Health, Job, JobStatus

Step = tuple[float, dict[str, Any]]


class TimelineAPI:
    base_url = "http://timeline.invalid/v2"

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self.timelines: dict[str, tuple[str, list[Step]]] = {}
        self.calls: Counter[str] = Counter()
        self.per_job: Counter[str] = Counter()

    def add(self, job_id: str, endpoint_id: str, steps: list[Step]) -> None:
        self.timelines[job_id] = (endpoint_id, sorted(steps, key=lambda s: s[0]))

    def answer(self, job_id: str) -> dict[str, Any]:
        now = self.clock.now()
        _, steps = self.timelines[job_id]
        current = steps[0][1]
        for t, ans in steps:
            if t <= now:
                current = ans
        d = {k: v for k, v in current.items() if k != "running_since"}
        since = current.get("running_since")
        if since is not None:
            d["executionTime"] = int((now - since) * 1000)
        return {"id": job_id, **d}

    def end_time(self, job_id: str) -> float | None:
        """When the job reached its terminal answer (None: never)."""
        for t, ans in self.timelines[job_id][1]:
            if JobStatus.parse(ans.get("status")).terminal:
                return t
        return None

    def _get(self, endpoint_id: str, job_id: str) -> Job:
        if job_id not in self.timelines or self.timelines[job_id][0] != endpoint_id:
            raise NotFound(f"job {job_id} not found", status_code=404)
        return Job.model_validate(self.answer(job_id))

    async def status(self, endpoint_id: str, job_id: str, *, ttl_ms: int | None = None) -> Job:
        self.calls["status"] += 1
        self.per_job[job_id] += 1
        return self._get(endpoint_id, job_id)

    async def status_sync(
        self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None
    ) -> Job:
        self.calls["status-sync"] += 1
        self.per_job[job_id] += 1
        await self.clock.sleep((wait_ms or 90_000) / 1000)
        return self._get(endpoint_id, job_id)

    async def health(self, endpoint_id: str) -> Health:
        self.calls["health"] += 1
        counts: Counter[JobStatus] = Counter()
        for jid, (ep, _) in self.timelines.items():
            if ep == endpoint_id:
                counts[JobStatus.parse(self.answer(jid).get("status"))] += 1
        return Health.model_validate(
            {
                "jobs": {
                    "inQueue": counts[JobStatus.IN_QUEUE],
                    "inProgress": counts[JobStatus.IN_PROGRESS],
                    "completed": counts[JobStatus.COMPLETED],
                    "failed": counts[JobStatus.FAILED],
                }
            }
        )

    async def aclose(self) -> None:
        pass


def pickup_timelines(
    api: TimelineAPI,
    endpoint_id: str,
    job_ids: list[str],
    *,
    submitted: float,
    workers: int,
    exec_time: Callable[[random.Random], float],
    pick: Callable[[random.Random, list[str]], int],
    seed: int = 0,
) -> None:
    """Timelines of ``job_ids`` (submitted in that order at ``submitted``) run by ``workers``
    workers that each take the queued job at index ``pick(rng, queue)`` when free."""
    rng = random.Random(seed)
    queue = list(job_ids)
    free_at = [submitted] * workers
    while queue:
        w = min(range(workers), key=free_at.__getitem__)
        start = free_at[w]
        jid = queue.pop(pick(rng, queue))
        run = exec_time(rng)
        end = start + run
        free_at[w] = end
        delay = int((start - submitted) * 1000)
        api.add(
            jid,
            endpoint_id,
            [
                (submitted, {"status": "IN_QUEUE"}),
                (start, {"status": "IN_PROGRESS", "delayTime": delay, "running_since": start}),
                (
                    end,
                    {
                        "status": "COMPLETED",
                        "delayTime": delay,
                        "executionTime": int(run * 1000),
                        "output": f"done {jid}",
                    },
                ),
            ],
        )
