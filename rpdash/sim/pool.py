"""The worker pool of an endpoint: starting workers (throttled, initializing, idle), idle
stops, crashes and restarts, worker logs; the scaler decides how many to start.
Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

import math
from typing import Any

from rpdash.sim.model import (
    _ID_CHARS, _KEEP, FAILED, IDLE, INITIALIZING, SIM_IMAGE, THROTTLED, UNHEALTHY,
    CRASH_ERROR, SimEndpoint, SimWorker,
)  # fmt: skip
from rpdash.sim.worker import RUNPOD_VERSION


class WorkerPool:
    """Workers of every endpoint: their states, timers and log lines."""

    def workers(self, endpoint_id: str) -> list[dict[str, Any]]:
        """Workers in the shape of REST v2's worker list (plus the job ids they hold)."""
        ep = self.endpoint(endpoint_id)
        now = self.now()
        return [
            {
                "id": w.id,
                "status": w.state.upper(),
                "uptimeSeconds": int(now - w.created_at),
                "jobs": [j.id for j in w.jobs],
            }
            for w in ep.workers.values()
        ]

    def logs(self, endpoint_id: str, worker_id: str | None = None, tail: int = 100) -> list[dict[str, Any]]:
        ep = self.endpoint(endpoint_id)
        if worker_id is None:
            lines = list(ep.logs)
        else:
            w = ep.workers.get(worker_id)
            lines = list(w.logs) if w is not None else [e for e in ep.logs if e["workerId"] == worker_id]
        return lines[-tail:] if tail > 0 else lines

    def _new_worker_id(self) -> str:
        r = self._rng_ids
        return "".join(r.choice(_ID_CHARS) for _ in range(14))

    def _live(self, ep: SimEndpoint) -> list[SimWorker]:
        return [w for w in ep.workers.values() if w.state != UNHEALTHY]

    def _autoscale(self, ep: SimEndpoint) -> None:
        cfg = ep.cfg
        live = self._live(ep)
        n = len(live)
        spawn = max(0, cfg.workers_min - n)
        demand = ep.in_queue - ep.in_queue_low
        if demand > 0 and n < cfg.workers_max:
            free = sum(max(0, cfg.concurrency - len(w.jobs)) for w in live)
            short = demand - free
            if short > 0:
                spawn = max(spawn, min(math.ceil(short / cfg.concurrency), cfg.workers_max - n))
        for _ in range(spawn):
            self._spawn(ep)

    def _spawn(self, ep: SimEndpoint, *, warm: bool = False) -> SimWorker:
        w = SimWorker(self._new_worker_id(), ep.cfg.id, self.now())
        ep.workers[w.id] = w
        if warm:
            w.ready_at = self.now()
            self._log(ep, w, "info", "worker started (warm)")
            self._became_idle(ep, w)
            return w
        if ep.cfg.throttle_chance > 0 and self._rng.random() < ep.cfg.throttle_chance:
            w.state = THROTTLED
            w.gen += 1
            self._log(ep, w, "warn", "worker throttled: host short of capacity")
            self.schedule(ep.cfg.throttle_time, self._on_unthrottle, ep, w, w.gen)
        else:
            self._initialize(ep, w)
        return w

    def _initialize(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = INITIALIZING
        w.gen += 1
        cold = ep.cfg.cold_start
        if ep.cfg.cold_start_jitter > 0:
            cold += self._rng.uniform(0, ep.cfg.cold_start_jitter)
        self._log(ep, w, "info", f"Pulling image {SIM_IMAGE}")
        self._log(ep, w, "info", "worker initializing (pulling image, loading)")
        self.schedule(cold, self._on_ready, ep, w, w.gen)

    def _on_unthrottle(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen:
            return
        self._initialize(ep, w)

    def _on_ready(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen:
            return
        w.ready_at = self.now()
        w.refresh_pending = False
        self._log(ep, w, "info", f"--- Starting Serverless Worker |  Version {RUNPOD_VERSION} ---",
                  source="container")  # fmt: skip
        self._log(ep, w, "info", "worker ready")
        self._became_idle(ep, w)
        if ep.in_queue:
            self._want_dispatch(ep)

    def _became_idle(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = IDLE
        w.gen += 1
        self.schedule(ep.cfg.idle_timeout, self._on_idle_timeout, ep, w, w.gen)

    def _on_idle_timeout(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.removed or w.gen != gen or w.state != IDLE or w.jobs:
            return
        if len(self._live(ep)) > ep.cfg.workers_min:
            self._log(ep, w, "info", "worker stopped after idle timeout")
            self._remove_worker(ep, w)

    def _remove_worker(self, ep: SimEndpoint, w: SimWorker) -> None:
        if w.removed:
            return
        w.removed = True
        w.gen += 1
        ep.workers.pop(w.id, None)

    def _on_unhealthy_over(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.gen == gen:
            self._log(ep, w, "info", "unhealthy worker removed")
            self._remove_worker(ep, w)

    def _crash(self, ep: SimEndpoint, w: SimWorker) -> None:
        self._log(ep, w, "error", "worker process exited with code 1")
        w.state = UNHEALTHY
        w.gen += 1
        for job in list(w.jobs):
            self._finish(job, FAILED, _KEEP, CRASH_ERROR)
        w.jobs.clear()
        self.schedule(ep.cfg.unhealthy_time, self._on_unhealthy_over, ep, w, w.gen)
        self._autoscale(ep)

    def _refresh(self, ep: SimEndpoint, w: SimWorker) -> None:
        """refresh_worker: restart the worker once its current jobs are done."""
        if w.removed or w.state == UNHEALTHY:
            return
        w.refresh_pending = True
        if not w.jobs:
            self._restart(ep, w)

    def _restart(self, ep: SimEndpoint, w: SimWorker) -> None:
        self._log(ep, w, "info", "worker restarting (refresh_worker)")
        self._initialize(ep, w)

    def _log(self, ep: SimEndpoint, w: SimWorker, level: str, message: str,
             job_id: str | None = None, *, source: str | None = None) -> None:  # fmt: skip
        """One log line of worker ``w``. ``source`` is REST v2's: "container" (what the
        handler process prints; by default every line about a job) or "system" (the pod's
        lifecycle). ``seq`` orders lines over the whole engine (SSE event ids)."""
        entry = {"ts": self.wall(), "level": level, "message": message,
                 "workerId": w.id, "jobId": job_id, "seq": next(self._log_seq),
                 "source": source or ("container" if job_id else "system")}  # fmt: skip
        w.logs.append(entry)
        ep.logs.append(entry)
        if ep.log_waiters:
            self._wake_logs(ep)

    @staticmethod
    def _wake_logs(ep: SimEndpoint) -> None:
        ws = ep.log_waiters
        if ws:
            ep.log_waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)
