"""Rolling releases (serverless/endpoints/rolling-releases.mdx; runpod-api.md 5.2, 10.1).

``Engine.release(endpoint_id, bad=False)`` makes a new endpoint version (an image or
config change). Workers of older versions are *outdated* (REST v2 ``isStale: true``) and
are replaced worker by worker: a worker of the new version is started; each time one
becomes ready, one outdated worker is retired (at once when idle, after its current jobs
when running), and the next new worker starts, until none is outdated. Outdated workers
keep taking jobs until their turn comes (our choice, close to the older docs' "10 % of
max workers at a time"; today's docs stop idle outdated workers at once).

A ``bad`` release fails its start-up checks: each new worker turns unhealthy (a crash
loop, incidents.py) and the rollout never advances, so the outdated workers keep serving.
"""

from __future__ import annotations

from typing import Any

from rpdash.sim.model import IDLE, UNHEALTHY, SimEndpoint, SimWorker


class Releases:
    """New endpoint versions rolled out over the worker pool."""

    def release(self, endpoint_id: str, *, bad: bool = False, note: str = "") -> int:
        """Publish a new version of the endpoint; returns its number."""
        ep = self.endpoint(endpoint_id)
        ep.version += 1
        ep.releases.append({"version": ep.version, "at": self.now(), "bad": bad, "note": note})
        if bad:
            ep.bad_versions.add(ep.version)
        self._endpoint_log(ep, "info", f"release v{ep.version} rolling out")
        self._roll_on(ep, start=True)
        return ep.version

    def stale(self, ep: SimEndpoint, w: SimWorker) -> bool:
        return w.version < ep.version

    def rollout(self, endpoint_id: str) -> dict[str, Any]:
        """REST v2 ``/releases`` ``rollout``: progress of the newest version."""
        ep = self.endpoint(endpoint_id)
        ws = [w for w in ep.workers.values() if w.state != UNHEALTHY]
        latest = sum(1 for w in ws if w.version == ep.version and w.ready_at is not None)
        total = len(ws)
        return {
            "inProgress": any(self.stale(ep, w) for w in ws),
            "workersOnLatest": latest,
            "workersTotal": total,
            "percentOnLatest": 100 if total == 0 else round(100 * latest / total),
        }

    def _roll_on(self, ep: SimEndpoint, *, start: bool = False) -> None:
        """One step of the rollout: retire an outdated worker (not on the first call) and
        start the next worker of the new version if outdated ones remain."""
        old = [w for w in ep.workers.values()
               if self.stale(ep, w) and w.state != UNHEALTHY and not w.retiring]  # fmt: skip
        if not old:
            return
        if not start or self._account_room() <= 0:
            victim = min(old, key=lambda w: (w.state != IDLE, len(w.jobs), w.created_at))
            old.remove(victim)
            victim.retiring = True
            if not victim.jobs and not victim.held:
                self._retire(ep, victim)
        if old:
            self._spawn(ep)

    def _retire(self, ep: SimEndpoint, w: SimWorker) -> None:
        if self.stale(ep, w):
            self._log(ep, w, "info", f"outdated worker (v{w.version}) stopped for release v{ep.version}")
        else:
            self._log(ep, w, "info", f"worker stopped: max workers lowered to {ep.cfg.workers_max}")
        self._remove_worker(ep, w)
        if ep.in_queue:
            self._autoscale(ep)
            self._want_dispatch(ep)
