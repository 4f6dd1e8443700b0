"""The job lifecycle and the queue: a job waits, a worker picks it up, its handler steps
run, it ends (COMPLETED / FAILED / CANCELLED / TIMED_OUT) and frees its worker.
Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

from typing import Any

from rpdash.sim.model import (
    CANCELLED, COMPLETED, FAILED, IDLE, IN_PROGRESS, IN_QUEUE, RUNNING, TIMED_OUT, _KEEP,
    SimEndpoint, SimJob, SimWorker,
)  # fmt: skip
from rpdash.sim.worker import MISSING, Step, handler_error, plan


class JobQueue:
    """Queue, pickup and the run of one job on a worker."""

    def _enqueue(self, ep: SimEndpoint, job: SimJob) -> None:
        job.status = IN_QUEUE
        job.queued_at = self.now()
        entry = (job, job.attempt)
        if job.low_priority:
            ep.low.append(entry)
            ep.in_queue_low += 1
        else:
            ep.queue.append(entry)
        ep.in_queue += 1
        self._notify(job)
        self._want_dispatch(ep)
        if not job.low_priority:
            self._autoscale(ep)

    def _unqueue(self, ep: SimEndpoint, job: SimJob) -> None:
        ep.in_queue -= 1
        if job.low_priority:
            ep.in_queue_low -= 1

    def _pop(self, ep: SimEndpoint) -> SimJob | None:
        for q in (ep.queue, ep.low):
            while q:
                job, att = q.popleft()
                if job.status == IN_QUEUE and job.attempt == att and not job.deleted:
                    return job
        return None

    def _want_dispatch(self, ep: SimEndpoint) -> None:
        ev = ep.dispatch_ev
        if ev is not None and not ev.cancelled and not ev.fired:
            return
        ep.dispatch_ev = self.schedule(ep.cfg.pickup_delay, self._dispatch, ep)

    def _dispatch(self, ep: SimEndpoint) -> None:
        ep.dispatch_ev = None
        if self._eps.get(ep.cfg.id) is not ep or ep.in_queue == 0:
            return
        conc = ep.cfg.concurrency
        for w in list(ep.workers.values()):
            # re-checked per job: starting one can end it at once and restart/crash the worker
            while (w.state == IDLE or w.state == RUNNING) and not w.removed and len(w.jobs) < conc:
                job = self._pop(ep)
                if job is None:
                    return
                self._start(ep, job, w)

    def _start(self, ep: SimEndpoint, job: SimJob, w: SimWorker) -> None:
        now = self.now()
        self._unqueue(ep, job)
        job.status = IN_PROGRESS
        job.started_at = now
        job.worker = w
        job.worker_id = w.id
        ep.in_progress += 1
        w.jobs.append(job)
        if w.state == IDLE:
            w.state = RUNNING
            w.gen += 1
        try:
            job.steps = plan(job.input, handler=ep.cfg.handler, defaults=ep.cfg.defaults,
                             job_id=job.id, worker_id=w.id)  # fmt: skip
        except Exception as exc:  # the mock handler itself must never break the engine
            err = handler_error(type(exc).__name__, str(exc), worker_id=w.id)
            job.steps = [Step(0.0, "fail", MISSING, err)]
        job.step_i = 0
        job.exec_ev = self.schedule(job.exec_timeout_s, self._on_exec_timeout, job, job.attempt)
        self._log(ep, w, "info", f"job {job.id} started", job.id)
        self._notify(job)
        self._run_steps(job, job.attempt)

    def _run_steps(self, job: SimJob, attempt: int) -> None:
        if job.status != IN_PROGRESS or job.attempt != attempt:
            return
        job.step_ev = None
        steps = job.steps
        start = job.started_at
        assert start is not None
        now = self.now()
        while job.step_i < len(steps):
            st = steps[job.step_i]
            when = start + st.at
            if when > now:
                job.step_ev = self.schedule_at(when, self._run_steps, job, attempt)
                return
            job.step_i += 1
            self._do_step(job, st)
            if job.status != IN_PROGRESS or job.attempt != attempt:
                return

    def _do_step(self, job: SimJob, st: Step) -> None:
        ep = self._eps[job.endpoint_id]
        w = job.worker
        kind = st.kind
        if kind == "chunk":
            job.pending.append(st.value)
            self._notify(job)
        elif kind == "progress":
            job.output = st.value
            self._notify(job)
        elif kind == "log":
            level, message = st.value
            if w is not None:
                self._log(ep, w, level, message, job.id)
        elif kind == "complete" or kind == "fail":
            status = COMPLETED if kind == "complete" else FAILED
            self._finish(job, status, st.value, st.error)
            if st.refresh and w is not None:
                self._refresh(ep, w)
        elif kind == "crash":
            if w is not None:
                self._crash(ep, w)

    def _finish(self, job: SimJob, status: str, output: Any = _KEEP, error: str | None = None) -> None:
        ep = self._eps[job.endpoint_id]
        self.cancel_event(job.step_ev)
        self.cancel_event(job.exec_ev)
        job.step_ev = job.exec_ev = None
        was = job.status
        if was == IN_QUEUE:
            self._unqueue(ep, job)
        elif was == IN_PROGRESS:
            ep.in_progress -= 1
        job.status = status
        job.ended_at = self.now()
        if output is not _KEEP:
            job.output = output
        job.error = error
        if status == COMPLETED:
            ep.completed += 1
        elif status == CANCELLED:
            ep.cancelled += 1
        else:
            ep.failed += 1
        if was == IN_PROGRESS:
            w = job.worker
            if w is not None:
                self._log(ep, w, "info" if status == COMPLETED else "error",
                          f"job {job.id} {status}", job.id)  # fmt: skip
            self._release(ep, job)
        self.cancel_event(job.end_ev)
        job.end_ev = self.schedule(job.retention_s, self._on_expire, job, job.attempt)
        self._notify(job)

    def _release(self, ep: SimEndpoint, job: SimJob) -> None:
        """Take ``job`` off its worker; an emptied running worker becomes idle."""
        w = job.worker
        if w is None:
            return
        try:
            w.jobs.remove(job)
        except ValueError:
            return
        if not w.jobs and w.state == RUNNING:
            if w.refresh_pending:
                self._restart(ep, w)
            else:
                self._became_idle(ep, w)
        if ep.in_queue:
            self._want_dispatch(ep)

    def _on_exec_timeout(self, job: SimJob, attempt: int) -> None:
        if job.attempt == attempt and job.status == IN_PROGRESS:
            self._finish(job, TIMED_OUT)
