"""The job operations of the data plane (submit, status view, cancel, retry, purge,
stream chunks): what the HTTP routes call. Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

import uuid
from typing import Any

from rpdash.sim import streams
from rpdash.sim.errors import BadRequestError, NotFoundError, QueueFullError
from rpdash.sim.model import (
    EXEC_TIMEOUT_RANGE_MS, FAILED, IN_PROGRESS, IN_QUEUE, QUEUE_LIMIT_MIN, QUEUE_LIMIT_PER_WORKER,
    TIMED_OUT, TTL_DEFAULT_MS, TTL_RANGE_MS, CANCELLED, SimJob, _ms,
)  # fmt: skip
from rpdash.sim.worker import MISSING


class JobRequests:
    """Requests on jobs; state changes go through the queue and retention mixins."""

    def submit(self, endpoint_id: str, body: Any, *, sync: bool = False) -> SimJob:
        """Queue a job from a /run (or /runsync) body. Raises SimError (400/404/429)."""
        ep = self.endpoint(endpoint_id)
        inp, webhook, s3, exec_ms, ttl_ms, low = self._parse_body(body)
        if self.limiter.enabled and not sync:
            limit = max(QUEUE_LIMIT_MIN, ep.cfg.workers_max * QUEUE_LIMIT_PER_WORKER)
            if ep.in_queue > limit:
                raise QueueFullError(
                    f"queue of endpoint {endpoint_id} is full ({ep.in_queue} jobs waiting)",
                    retry_after=10.0,
                )
        u = uuid.UUID(int=self._rng_ids.getrandbits(128), version=4)
        job_id = f"sync-{u}" if sync else f"{u}-u1"
        job = SimJob(job_id, endpoint_id, inp, sync=sync, now=self.now())
        job.webhook = webhook
        job.s3_config = s3
        job.low_priority = low
        job.exec_timeout_s = (exec_ms if exec_ms is not None else ep.cfg.execution_timeout_ms) / 1000
        job.ttl_s = (ttl_ms if ttl_ms is not None else TTL_DEFAULT_MS) / 1000
        ep.jobs[job_id] = job
        ep.submitted += 1
        ep.last_request_at = job.submitted_at
        job.ttl_ev = self.schedule(job.ttl_s, self._on_ttl, job, job.attempt)
        self._enqueue(ep, job)
        return job

    def _parse_body(self, body: Any) -> tuple[dict[str, Any], str | None, dict[str, Any] | None,
                                              int | None, int | None, bool]:  # fmt: skip
        if not isinstance(body, dict):
            raise BadRequestError('request body must be a JSON object with an "input" object')
        if "input" not in body:
            raise BadRequestError('request body has no "input"')
        inp = body["input"]
        if not isinstance(inp, dict):
            raise BadRequestError('"input" must be a JSON object')
        webhook = body.get("webhook")
        if webhook is not None and not isinstance(webhook, str):
            raise BadRequestError('"webhook" must be a string')
        s3 = body.get("s3Config")
        if s3 is not None and not isinstance(s3, dict):
            raise BadRequestError('"s3Config" must be an object')
        policy = body.get("policy")
        if policy is None:
            policy = {}
        if not isinstance(policy, dict):
            raise BadRequestError('"policy" must be an object')
        exec_ms = self._policy_ms(policy, "executionTimeout", EXEC_TIMEOUT_RANGE_MS)
        ttl_ms = self._policy_ms(policy, "ttl", TTL_RANGE_MS)
        low = policy.get("lowPriority", False)
        if low is None:
            low = False
        if not isinstance(low, bool):
            raise BadRequestError('"policy.lowPriority" must be true or false')
        return inp, webhook, s3, exec_ms, ttl_ms, low

    def _policy_ms(self, policy: dict[str, Any], key: str, rng: tuple[int, int]) -> int | None:
        v = policy.get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v != int(v):
            raise BadRequestError(f'"policy.{key}" must be an integer number of milliseconds')
        v = int(v)
        lo, hi = rng
        if self.strict_policy and not lo <= v <= hi:
            raise BadRequestError(f'"policy.{key}" must be between {lo} and {hi} ms, not {v}')
        if v <= 0:
            raise BadRequestError(f'"policy.{key}" must be positive')
        return v

    def job(self, endpoint_id: str, job_id: str) -> SimJob:
        ep = self.endpoint(endpoint_id)
        job = ep.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"job {job_id} not found")
        return job

    def find_job(self, endpoint_id: str, job_id: str) -> SimJob | None:
        ep = self._eps.get(endpoint_id)
        return ep.jobs.get(job_id) if ep is not None else None

    def view(self, job: SimJob) -> dict[str, Any]:
        """The job object as /status returns it."""
        d: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.started_at is not None:
            d["delayTime"] = _ms(job.started_at - job.queued_at)
            end = job.ended_at if job.ended_at is not None else self.now()
            d["executionTime"] = _ms(end - job.started_at)
        elif job.ended_at is not None:
            d["delayTime"] = _ms(job.ended_at - job.queued_at)
        if job.output is not MISSING:
            d["output"] = job.output
        if job.error is not None:
            d["error"] = job.error
        if job.worker_id is not None:
            d["workerId"] = job.worker_id
        if job.retries:
            d["retries"] = job.retries
        return d

    @staticmethod
    def ref(job: SimJob) -> dict[str, Any]:
        return {"id": job.id, "status": job.status}

    def cancel(self, endpoint_id: str, job_id: str) -> SimJob:
        job = self.job(endpoint_id, job_id)
        if job.stuck and job.status == IN_PROGRESS:
            return self._cancel_stuck(job)
        if job.status == IN_PROGRESS and job.worker is not None:
            self._log(self._eps[job.endpoint_id], job.worker, "info",
                      f"job {job.id} cancelled; stopping it", job.id)  # fmt: skip
        if job.status in (IN_QUEUE, IN_PROGRESS):
            self._finish(job, CANCELLED)
        return job

    def _cancel_stuck(self, job: SimJob) -> SimJob:
        """A job left IN_PROGRESS by a late progress update (runpod-python issue 250) is, to
        RunPod, an IN_PROGRESS job: ``/cancel`` makes it CANCELLED like any other. Its
        worker was freed when it finished, so nothing is stopped; its final ``output``
        stays; the counters keep it once, as completed (the simulator never counted it in
        ``inProgress`` while stuck). [unconfirmed]: RunPod's real answer to cancelling such
        a job is not documented (runpod-api.md 5.2, 6.6); this is the simulator's choice,
        the documented behaviour for an IN_PROGRESS job."""
        job.status = CANCELLED
        job.stuck = False  # the stuck state is over
        job.ended_at = job.ended_at if job.ended_at is not None else self.now()
        self.cancel_event(job.end_ev)
        job.end_ev = self.schedule(job.retention_s, self._on_expire, job, job.attempt)
        self._notify(job)
        return job

    def retry(self, endpoint_id: str, job_id: str) -> SimJob:
        job = self.job(endpoint_id, job_id)
        if job.status not in (FAILED, TIMED_OUT):
            raise BadRequestError(
                f"job {job_id} is {job.status}; only FAILED or TIMED_OUT jobs can be retried"
            )
        ep = self._eps[endpoint_id]
        self.cancel_event(job.end_ev)
        self.cancel_event(job.ttl_ev)
        job.end_ev = None
        job.attempt += 1
        job.retries += 1
        ep.retried += 1
        job.output = MISSING
        job.error = None
        job.pending = []
        job.chunks_sent = 0
        job.started_at = None
        job.ended_at = None
        job.worker = None
        job.worker_id = None
        job.steps = []
        job.step_i = 0
        job.run_at = None
        job.had_progress = False
        job.ttl_ev = self.schedule(job.ttl_s, self._on_ttl, job, job.attempt)
        self._enqueue(ep, job)
        return job

    def purge(self, endpoint_id: str) -> int:
        """Delete every IN_QUEUE job of the endpoint; returns how many."""
        ep = self.endpoint(endpoint_id)
        n = 0
        for q in (ep.queue, ep.low):
            entries = list(q)
            q.clear()
            for job, att in entries:
                if job.status == IN_QUEUE and job.attempt == att and not job.deleted:
                    self._delete(job)
                    n += 1
        return n

    def take_chunks(self, job: SimJob, *, peek: bool = False) -> tuple[str, list[dict[str, Any]]]:
        """Hand out the chunks not handed out yet, with the status at the same instant.
        With ``peek`` the chunks are shown but stay pending (an answer that will not reach
        the client, e.g. a dropped connection, must not consume them)."""
        out = streams.take(job, self._eps[job.endpoint_id].cfg.stream_batch_max, peek=peek)
        return job.status, out
