"""The worker pool of an endpoint: starting workers (throttled, initializing, idle), idle
stops, crashes and restarts, worker logs; the scaler decides how many to start.
Mixed into :class:`~rpdash.sim.engine.Engine`."""

from __future__ import annotations

import math
from typing import Any

from rpdash.sim import scaler
from rpdash.sim.model import (
    _ID_CHARS, IDLE, INITIALIZING, SIM_IMAGE, THROTTLED, UNHEALTHY, SimEndpoint, SimWorker,
)  # fmt: skip
from rpdash.sim.scaler import live_workers
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
        return live_workers(ep)

    def _account_room(self) -> int:
        """Workers the account may still start (its cap minus live workers everywhere)."""
        used = sum(len(live_workers(e)) for e in self._eps.values())
        return self.account_max_workers - used

    def _autoscale(self, ep: SimEndpoint) -> None:
        if self._eps.get(ep.cfg.id) is not ep:
            return
        room = self._account_room()
        n, again = scaler.to_start(ep, self.now(), room, ep.cached_version == ep.version)
        if again is not None:
            ev = ep.scale_ev
            if ev is None or ev.cancelled or ev.fired or ev.when > again:
                self.cancel_event(ev)
                ep.scale_ev = self.schedule_at(again, self._on_scale_check, ep)
        if n == 0 and room <= 0 and ep.in_queue - ep.in_queue_low > 0:
            self._cap_blocked.add(ep.cfg.id)
        for _ in range(n):
            w = self._spawn(ep)
            w.extra = len(live_workers(ep)) > ep.cfg.workers_max

    def _on_scale_check(self, ep: SimEndpoint) -> None:
        ep.scale_ev = None
        self._autoscale(ep)

    def _rescale_blocked(self) -> None:
        """A worker went away: endpoints held back by the account cap may start one."""
        blocked, self._cap_blocked = self._cap_blocked, set()
        for eid in blocked:
            ep = self._eps.get(eid)
            if ep is not None:
                self._autoscale(ep)

    def _spawn(self, ep: SimEndpoint, *, warm: bool = False) -> SimWorker:
        now = self.now()
        w = SimWorker(self._new_worker_id(), ep.cfg.id, now)
        w.version = ep.version
        ep.workers[w.id] = w
        if warm:
            w.ready_at = w.placed_at = now
            self._log(ep, w, "info", "worker started (warm)")
            self._became_idle(ep, w)
            return w
        if now < ep.capacity_short_until:
            w.state = THROTTLED
            w.gen += 1
            self._log(ep, w, "warn", "worker throttled: no GPU of this type available")
            if ep.capacity_short_until != math.inf:
                self.schedule_at(ep.capacity_short_until, self._on_unthrottle, ep, w, w.gen)
        elif ep.cfg.throttle_chance > 0 and self._rng.random() < ep.cfg.throttle_chance:
            w.state = THROTTLED
            w.gen += 1
            self._log(ep, w, "warn", "worker throttled: host short of capacity")
            self.schedule(ep.cfg.throttle_time, self._on_unthrottle, ep, w, w.gen)
        else:
            self._initialize(ep, w)
        return w

    def set_capacity(self, endpoint_id: str, short_for: float | None) -> None:
        """GPU shortage knob: capacity is short for ``short_for`` more seconds (None: until
        told otherwise; 0: capacity is back now, throttled workers start)."""
        ep = self.endpoint(endpoint_id)
        now = self.now()
        ep.capacity_short_until = math.inf if short_for is None else now + max(0.0, short_for)
        for w in list(ep.workers.values()):
            if w.state == THROTTLED and w.placed_at is None:
                w.gen += 1
                if ep.capacity_short_until <= now:
                    self._initialize(ep, w)
                elif ep.capacity_short_until != math.inf:
                    self.schedule_at(ep.capacity_short_until, self._on_unthrottle, ep, w, w.gen)
        self._autoscale(ep)

    def _initialize(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = INITIALIZING
        w.gen += 1
        if w.placed_at is None:
            w.placed_at = self.now()
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
        if w.version in ep.bad_versions or (
            ep.cfg.start_failure > 0 and self._rng.random() < ep.cfg.start_failure
        ):
            self._fail_start(ep, w)
            return
        w.ready_at = self.now()
        if w.version == ep.version:
            ep.cached_version = w.version
        w.refresh_pending = False
        self._log(ep, w, "info", f"--- Starting Serverless Worker |  Version {RUNPOD_VERSION} ---",
                  source="container")  # fmt: skip
        self._log(ep, w, "info", "worker ready")
        self._became_idle(ep, w)
        if w.version == ep.version:
            self._roll_on(ep)
        if ep.in_queue:
            self._want_dispatch(ep)

    def _became_idle(self, ep: SimEndpoint, w: SimWorker) -> None:
        if w.retiring:  # an outdated worker done with its jobs (rolling release)
            self._retire(ep, w)
            return
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
        if self._cap_blocked:
            self._rescale_blocked()

    def _shrink(self, ep: SimEndpoint) -> None:
        """Max workers was lowered (a drain sets 0): workers above the new max stop, the
        unhealthy ones first, then throttled, starting and idle ones at once; a running
        worker finishes its jobs first (RunPod: "running jobs finish"). Our choice of
        order; RunPod stops the workers of an endpoint set to max 0."""
        order = {UNHEALTHY: 0, THROTTLED: 1, INITIALIZING: 2, IDLE: 3}
        ws = sorted((w for w in ep.workers.values() if not w.retiring),
                    key=lambda w: (order.get(w.state, 4), -w.created_at))  # fmt: skip
        extra = len(ws) - max(0, ep.cfg.workers_max)
        for w in ws[:max(0, extra)]:
            if w.jobs or w.held:
                w.retiring = True  # stops once its jobs are done (_became_idle)
                continue
            self._log(ep, w, "info", f"worker stopped: max workers lowered to {ep.cfg.workers_max}")
            self._remove_worker(ep, w)

    def _on_unhealthy_over(self, ep: SimEndpoint, w: SimWorker, gen: int) -> None:
        if w.gen == gen:
            self._log(ep, w, "info", "unhealthy worker removed")
            self._remove_worker(ep, w)

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

    def _endpoint_log(self, ep: SimEndpoint, level: str, message: str) -> None:
        """A platform line about the endpoint itself (no worker): scale-downs, releases."""
        ep.logs.append({"ts": self.wall(), "level": level, "message": message, "workerId": None,
                        "jobId": None, "seq": next(self._log_seq), "source": "system"})  # fmt: skip

    @staticmethod
    def _wake_logs(ep: SimEndpoint) -> None:
        ws = ep.log_waiters
        if ws:
            ep.log_waiters = []
            for f in ws:
                if not f.done():
                    f.set_result(None)
