"""A stand-in Session with fixed data, for snapshot tests and keyboard tests that need no
network. It records what the UI asked for, so tests can assert "nothing was sent"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rpdash.core.errors import InvalidInput
from rpdash.core.models import Health, JobStatus, Policy, PurgeResult
from rpdash.core.records import JobRecord
from rpdash.services.events import ConnState, HealthEvent, Sink

WALL = 1_800_000_000.0  # FakeClock's default wall time


def sample_jobs(now: float = WALL) -> list[JobRecord]:
    """A fixed, varied job list (every status, a progress update, an error)."""
    S = JobStatus
    rows = [
        ("7f3a9c2e-1b4d-4e8a-9c3f-2a1b3c4d5e6f-u1", "llama-chat", S.IN_PROGRESS, "stream", 12, 830, None, {"tokens": 412, "step": "decoding"}, None),
        ("0b9e4d21-7c6a-4f1e-8d2b-9e8f7a6b5c4d-u1", "sdxl", S.IN_QUEUE, "run", 31, None, None, None, None),
        ("c41d0e77-2f3b-4a5c-b6d7-e8f9a0b1c2d3-u1", "sdxl", S.COMPLETED, "run", 95, 2100, 14200, None, None),
        ("5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9-u1", "whisper", S.FAILED, "run", 140, 400, 3100, None, "CUDA out of memory: tried to allocate 2.00 GiB"),
        ("9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d-u1", "llama-chat", S.COMPLETED, "runsync", 300, 120, 2450, None, None),
        ("1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f-u1", "whisper", S.CANCELLED, "run", 610, 900, None, None, None),
        ("2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a-u1", "sdxl", S.TIMED_OUT, "run", 1300, 600000, None, None, "job timed out after 600 s"),
        ("3e4f5a6b-7c8d-4e9f-0a1b-2c3d4e5f6a7b-u1", "llama-chat", S.IN_PROGRESS, "run", 45, 1500, 40000, "step 7/10", None),
    ]
    out = []
    for job_id, ep, st, mode, age, delay, exe, progress, err in rows:
        out.append(JobRecord(
            job_id=job_id, endpoint_id=ep, status=st, mode=mode,
            input={"prompt": f"job on {ep}", "steps": 30},
            submitted_at=now - age, updated_at=now - 1,
            finished_at=(now - 1) if st.terminal else None,
            delay_ms=delay, execution_ms=exe, retries=1 if st is S.FAILED else 0,
            progress=progress, error=err,
            output={"images": ["s3://bucket/out-1.png"], "seed": 42} if st is S.COMPLETED else None,
            chunk_count=3 if mode == "stream" else 0,
        ))
    return out


def sample_health(now: float = WALL) -> dict[str, HealthEvent]:
    def h(idle, run, init, q, prog, done, fail, retried, thr=0, unh=0):
        return Health.model_validate({
            "jobs": {"inQueue": q, "inProgress": prog, "completed": done, "failed": fail,
                     "retried": retried},
            "workers": {"idle": idle, "running": run, "initializing": init, "ready": idle,
                        "throttled": thr, "unhealthy": unh},
        })
    return {
        "llama-chat": HealthEvent("llama-chat", ConnState.OK, h(1, 3, 1, 7, 3, 1520, 12, 4),
                                  last_ok_at=now - 2),
        "sdxl": HealthEvent("sdxl", ConnState.RETRYING, h(0, 2, 0, 41, 2, 310, 3, 0, thr=1),
                            last_ok_at=now - 14, retry_in=4.0, message="server error 502"),
        "whisper": HealthEvent("whisper", ConnState.OK, h(2, 0, 0, 0, 0, 88, 9, 1, unh=1),
                               last_ok_at=now - 1),
    }


class FakeSession:
    """Implements the SessionLike protocol over fixed data; records every call."""

    def __init__(self, *, jobs: Iterable[JobRecord] = (), health: dict[str, HealthEvent] | None = None,
                 endpoints: list[str] | None = None, readonly: bool = False,
                 chunks: dict[str, list[Any]] | None = None) -> None:
        self.jobs = {j.job_id: j for j in jobs}
        self.health = dict(health or {})
        self.endpoints = list(endpoints or list(self.health) or ["mock"])
        self.readonly = readonly
        self.paused = False
        self._chunks = dict(chunks or {})
        self.calls: list[tuple[str, Any]] = []
        self.sink: Sink | None = None
        self.health_active: bool | None = None
        self.purge_removed = 5
        self.store = None
        self.recent: list[dict] = [{"prompt": "a cat in a hat"}, {"prompt": "hello", "max_tokens": 64}]

    def attach_sink(self, sink: Sink) -> None:
        self.sink = sink

    async def submit(self, endpoint_id: str, input: str | dict, *, mode: str = "run",
                     policy: Policy | None = None, webhook: str | None = None) -> JobRecord:
        if not isinstance(input, dict):
            raise InvalidInput("input must be a JSON object")
        self.calls.append(("submit", (endpoint_id, input, mode, policy, webhook)))
        n = sum(1 for c in self.calls if c[0] == "submit")
        rec = JobRecord(job_id=f"fake-{n:04d}-0000-0000-0000-000000000000-u1",
                        endpoint_id=endpoint_id, status=JobStatus.IN_QUEUE, mode=mode,
                        input=input, submitted_at=WALL, updated_at=WALL)
        self.jobs[rec.job_id] = rec
        return rec

    async def cancel(self, job_ids: list[str]) -> list[tuple[str, Any]]:
        self.calls.append(("cancel", list(job_ids)))
        out = []
        for j in job_ids:
            rec = self.jobs[j].copy(status=JobStatus.CANCELLED)
            self.jobs[j] = rec
            out.append((j, rec))
        return out

    async def retry(self, job_id: str) -> JobRecord:
        self.calls.append(("retry", job_id))
        rec = self.jobs[job_id].copy(status=JobStatus.IN_QUEUE, error=None)
        self.jobs[job_id] = rec
        return rec

    async def purge(self, endpoint_id: str) -> PurgeResult:
        self.calls.append(("purge", endpoint_id))
        return PurgeResult(removed=self.purge_removed)

    def watch(self, job_id: str, endpoint_id: str) -> JobRecord:
        self.calls.append(("watch", (job_id, endpoint_id)))
        rec = JobRecord(job_id=job_id, endpoint_id=endpoint_id, status=JobStatus.IN_QUEUE,
                        submitted_at=WALL)
        self.jobs[job_id] = rec
        return rec

    def follow(self, job_id: str) -> None:
        self.calls.append(("follow", job_id))

    def unfollow(self, job_id: str) -> None:
        self.calls.append(("unfollow", job_id))

    def chunks(self, job_id: str) -> list[Any]:
        return list(self._chunks.get(job_id, []))

    def set_visible(self, job_ids: Iterable[str]) -> None:
        pass

    def set_health_active(self, active: bool) -> None:
        self.health_active = active

    def pause(self) -> None:
        self.paused = True
        self.calls.append(("pause", None))

    def resume(self) -> None:
        self.paused = False
        self.calls.append(("resume", None))

    def refresh_now(self) -> None:
        self.calls.append(("refresh", None))

    async def stop(self) -> None:
        self.calls.append(("stop", None))

    def sent(self, kind: str) -> list[Any]:
        return [c[1] for c in self.calls if c[0] == kind]
