"""Retention and health: when a job is forgotten (TTL, result retention, ``/status?ttl``)
and the ``/health`` counters. Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

from typing import Any

from rpdash.sim.model import (
    EXPIRED_IN_QUEUE_KEEP_S, IDLE, IN_PROGRESS, IN_QUEUE, INITIALIZING, RUNNING, TERMINAL,
    THROTTLED, TIMED_OUT, UNHEALTHY, WORKER_STATES, SimJob,
)  # fmt: skip


class Retention:
    """Deleting jobs at their TTL or after retention; the endpoint's health answer."""

    def health(self, endpoint_id: str) -> dict[str, Any]:
        ep = self.endpoint(endpoint_id)
        c = dict.fromkeys(WORKER_STATES, 0)
        for w in ep.workers.values():
            c[w.state] += 1
        return {
            "jobs": {
                "completed": ep.completed,
                "failed": ep.failed,
                "inProgress": ep.in_progress,
                "inQueue": ep.in_queue,
                "retried": ep.retried,
            },
            "workers": {
                "idle": c[IDLE],
                "initializing": c[INITIALIZING],
                "ready": c[IDLE],
                "running": c[RUNNING],
                "throttled": c[THROTTLED],
                "unhealthy": c[UNHEALTHY],
            },
        }

    def set_job_ttl(self, job: SimJob, ttl_ms: int) -> None:
        """``/status?ttl=``: how long the result is kept (see module docstring)."""
        seconds = max(0.0, ttl_ms / 1000)
        if job.status in TERMINAL or job.stuck:
            self.cancel_event(job.end_ev)
            job.end_ev = self.schedule(seconds, self._on_expire, job, job.attempt)
        else:
            job.retention_s = seconds

    def _delete(self, job: SimJob) -> None:
        if job.deleted:
            return
        ep = self._eps.get(job.endpoint_id)
        if ep is not None:
            if job.status == IN_QUEUE:
                self._unqueue(ep, job)
            elif job.status == IN_PROGRESS and not job.stuck:
                ep.in_progress -= 1
                self._release(ep, job)
            ep.jobs.pop(job.id, None)
        for ev in (job.step_ev, job.exec_ev, job.ttl_ev, job.end_ev):
            self.cancel_event(ev)
        job.deleted = True
        self._notify(job)

    def _on_ttl(self, job: SimJob, attempt: int) -> None:
        if job.deleted or job.attempt != attempt:
            return
        if job.status == IN_QUEUE:
            self._finish(job, TIMED_OUT)
            self.cancel_event(job.end_ev)
            job.end_ev = self.schedule(EXPIRED_IN_QUEUE_KEEP_S, self._on_expire, job, job.attempt)
        else:
            if job.status == IN_PROGRESS and job.worker is not None and not job.stuck:
                self._log(self._eps[job.endpoint_id], job.worker, "error",
                          f"job {job.id} reached its TTL; stopping it", job.id)  # fmt: skip
            self._delete(job)

    def _on_expire(self, job: SimJob, attempt: int) -> None:
        if job.attempt == attempt and (job.status in TERMINAL or job.stuck):
            self._delete(job)
