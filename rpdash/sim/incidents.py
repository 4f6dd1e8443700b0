"""What the platform does when workers fail (runpod-api.md 5.2), and idle cut-backs.

- A worker dies mid-job (``mock_crash``, OOM): the worker shows UNHEALTHY for
  ``unhealthy_time`` s and is removed; each job it held goes back to the end of the queue
  (status IN_QUEUE, ``retries`` + 1, ``health.jobs.retried`` + 1) and runs again on
  another worker, as often as the crash repeats (worker-vllm issue 29). No retry limit
  and no back-off: the job's TTL or the crash-loop cut-back below ends the loop.
- A worker fails its start-up checks (bad image or release, ``start_failure``): it turns
  UNHEALTHY before taking any job (rp_fitness.py); queued jobs stay IN_QUEUE with no
  error, a replacement starts as the scaler wants one.
- Crash loop: ``crashloop_limit`` workers turning unhealthy within ``crashloop_window`` s
  make the platform halve ``workers_max`` (and lower ``workers_min`` to it), down to 1
  (one worker keeps trying, so a fixed image serves again; the owner's drain sets 0); it
  stays so until the owner raises it (troubleshooting.mdx). Halving and the floor of 1 are
  our choice.
- Idle endpoint: no request for 3 days -> ``workers_max`` at most 2; 7 days -> 0
  (endpoint-configurations.mdx), counted on the simulator's clock.
Each cut-back is recorded in ``SimEndpoint.notices`` and logged on the endpoint.
"""

from __future__ import annotations

from dataclasses import replace

from rpdash.sim.model import (
    IDLE_CUT_TO_0_S, IDLE_CUT_TO_2_S, IN_PROGRESS, UNHEALTHY, SimEndpoint, SimJob, SimWorker,
)  # fmt: skip
from rpdash.sim.worker import MISSING


class Incidents:
    """Worker deaths, start failures, crash-loop and idle cut-backs."""

    def _crash(self, ep: SimEndpoint, w: SimWorker) -> None:
        """The worker process died while holding jobs: they run again elsewhere."""
        self._log(ep, w, "error", "worker process exited with code 1")
        jobs = list(w.jobs) + list(w.held)
        self._turn_unhealthy(ep, w)
        for job in jobs:
            self._requeue_after_death(ep, job)
        self._autoscale(ep)

    def _fail_start(self, ep: SimEndpoint, w: SimWorker) -> None:
        """Start-up (fitness) checks failed: unhealthy before taking any job."""
        self._log(ep, w, "error", "start-up check failed: worker unhealthy, exit code 1",
                  source="container")  # fmt: skip
        self._turn_unhealthy(ep, w)
        if w.version == ep.version:
            self._roll_on(ep, start=True)  # a rollout keeps trying its new version
        self._autoscale(ep)

    def _turn_unhealthy(self, ep: SimEndpoint, w: SimWorker) -> None:
        w.state = UNHEALTHY
        w.gen += 1
        w.jobs.clear()
        w.held.clear()
        self.schedule(ep.cfg.unhealthy_time, self._on_unhealthy_over, ep, w, w.gen)
        self._note_unhealthy(ep)
        if self._cap_blocked:
            self._rescale_blocked()

    def _requeue_after_death(self, ep: SimEndpoint, job: SimJob) -> None:
        if job.status != IN_PROGRESS or job.deleted:
            return
        for ev in (job.step_ev, job.exec_ev):
            self.cancel_event(ev)
        job.step_ev = job.exec_ev = None
        ttl_at = job.ttl_ev.when if job.ttl_ev is not None else None
        self.cancel_event(job.ttl_ev)
        ep.in_progress -= 1
        job.attempt += 1
        job.retries += 1
        ep.retried += 1
        job.output = MISSING
        job.had_progress = False
        job.started_at = job.run_at = None
        job.worker = None
        job.worker_id = None
        job.steps = []
        job.step_i = 0
        if ttl_at is not None:  # the TTL still counts from submission
            job.ttl_ev = self.schedule_at(ttl_at, self._on_ttl, job, job.attempt)
        self._enqueue(ep, job)

    def _note_unhealthy(self, ep: SimEndpoint) -> None:
        now = self.now()
        times = ep.unhealthy_times
        times.append(now)
        while times and times[0] < now - ep.cfg.crashloop_window:
            times.popleft()
        if len(times) >= ep.cfg.crashloop_limit and ep.cfg.workers_max > 1:
            times.clear()
            self._cut_back(ep, ep.cfg.workers_max // 2, "crash-loop",
                           "endpoint keeps producing unhealthy workers")  # fmt: skip

    def _cut_back(self, ep: SimEndpoint, new_max: int, kind: str, why: str) -> None:
        cfg = ep.cfg
        if new_max >= cfg.workers_max:
            return
        ep.notices.append({"at": self.wall(), "kind": kind, "workersMax": new_max,
                           "was": cfg.workers_max, "message": f"{why}: max workers "
                           f"lowered from {cfg.workers_max} to {new_max}"})  # fmt: skip
        ep.cfg = replace(cfg, workers_max=new_max, workers_min=min(cfg.workers_min, new_max))
        self._endpoint_log(ep, "warn", ep.notices[-1]["message"])

    # ------------------------------------------------------------------ idle cut-back

    def _arm_idle_check(self, ep: SimEndpoint) -> None:
        self.cancel_event(ep.idle_ev)
        ep.idle_ev = self.schedule_at(ep.last_request_at + IDLE_CUT_TO_2_S, self._on_idle_check, ep)

    def _on_idle_check(self, ep: SimEndpoint) -> None:
        ep.idle_ev = None
        if self._eps.get(ep.cfg.id) is not ep:
            return
        quiet = self.now() - ep.last_request_at
        if quiet >= IDLE_CUT_TO_0_S - 1e-6:
            self._cut_back(ep, 0, "idle", "no requests for 7 days")
            return
        if quiet >= IDLE_CUT_TO_2_S - 1e-6:
            self._cut_back(ep, 2, "idle", "no requests for 3 days")
            ep.idle_ev = self.schedule_at(ep.last_request_at + IDLE_CUT_TO_0_S, self._on_idle_check, ep)
            return
        self._arm_idle_check(ep)
