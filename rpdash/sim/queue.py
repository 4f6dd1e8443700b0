"""The job lifecycle and the queue: a job waits, a worker picks it up, its handler steps
run, it ends (COMPLETED / FAILED / CANCELLED / TIMED_OUT) and frees its worker.
Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

from typing import Any

from rpdash.sim.model import (
    CANCELLED, COMPLETED, FAILED, IDLE, IN_PROGRESS, IN_QUEUE, RUNNING, TIMED_OUT, _KEEP,
    SimEndpoint, SimJob, SimWorker,
)  # fmt: skip
from rpdash.sim.pickup import pop_job, take_count
from rpdash.sim.streams import split_chunk
from rpdash.sim.worker import MISSING, Step, handler_error, plan

#: how long after the result the late progress update lands (issue 250's race)
LATE_PROGRESS_AFTER_S = 0.05


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
        return pop_job(ep, self._rng_pickup)

    def _want_dispatch(self, ep: SimEndpoint) -> None:
        ev = ep.dispatch_ev
        if ev is not None and not ev.cancelled and not ev.fired:
            return
        ep.dispatch_ev = self.schedule(ep.cfg.pickup_delay, self._dispatch, ep)

    def _dispatch(self, ep: SimEndpoint) -> None:
        ep.dispatch_ev = None
        if self._eps.get(ep.cfg.id) is not ep or ep.in_queue == 0:
            return
        for w in list(ep.workers.values()):
            # re-checked per job: starting one can end it at once and restart/crash the worker
            while (w.state == IDLE or w.state == RUNNING) and not w.removed and not w.retiring:
                n = take_count(ep, len(w.jobs), len(w.held))
                if n == 0:
                    break
                for _ in range(n):
                    job = self._pop(ep)
                    if job is None:
                        return
                    self._take(ep, job, w)
                    if w.removed or w.state not in (IDLE, RUNNING):
                        break

    def _take(self, ep: SimEndpoint, job: SimJob, w: SimWorker) -> None:
        """``w`` takes ``job``: IN_PROGRESS from now; it runs now if ``w`` has a free slot,
        else it waits on ``w`` (batch pickup)."""
        self._unqueue(ep, job)
        job.status = IN_PROGRESS
        job.started_at = self.now()
        job.worker = w
        job.worker_id = w.id
        ep.in_progress += 1
        job.exec_ev = self.schedule(job.exec_timeout_s, self._on_exec_timeout, job, job.attempt)
        if len(w.jobs) < ep.cfg.concurrency:
            self._start(ep, job, w)
        else:
            w.held.append(job)
            self._notify(job)

    def _start(self, ep: SimEndpoint, job: SimJob, w: SimWorker) -> None:
        """Run ``job``'s handler on ``w``."""
        job.run_at = self.now()
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
        self._log(ep, w, "info", f"job {job.id} started", job.id)
        self._notify(job)
        self._run_steps(job, job.attempt)

    def _run_steps(self, job: SimJob, attempt: int) -> None:
        if job.status != IN_PROGRESS or job.attempt != attempt:
            return
        job.step_ev = None
        steps = job.steps
        start = job.run_at
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
            job.pending.extend(split_chunk(st.value))
            self._notify(job)
        elif kind == "progress":
            job.output = st.value
            job.had_progress = True
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
        if status != CANCELLED and job.webhook:
            self._send_webhook(job)
        if (status == COMPLETED and job.had_progress and ep.cfg.late_progress_chance > 0
                and self._rng.random() < ep.cfg.late_progress_chance):  # fmt: skip
            self.schedule(LATE_PROGRESS_AFTER_S, self._on_late_progress, job, job.attempt)

    def _on_late_progress(self, job: SimJob, attempt: int) -> None:
        """A progress update sent before the result lands after it (runpod-python issue
        250): the job shows IN_PROGRESS again for good, ``executionTime`` stays set and the
        final ``output`` stays. Counters keep it as completed; its worker is free."""
        if job.attempt != attempt or job.status != COMPLETED or job.deleted:
            return
        job.status = IN_PROGRESS
        job.stuck = True
        self._notify(job)

    def _release(self, ep: SimEndpoint, job: SimJob) -> None:
        """Take ``job`` off its worker; an emptied running worker becomes idle."""
        w = job.worker
        if w is None:
            return
        if job in w.held:
            w.held.remove(job)
            return
        try:
            w.jobs.remove(job)
        except ValueError:
            return
        if w.held and w.state == RUNNING and not w.removed:
            self._start(ep, w.held.popleft(), w)
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
