"""The RunPod serverless simulator (no Textual; nothing heavy at import).

``SimServer`` / ``serve`` (server.py), ``Engine`` (engine.py), ``Faults`` (faults.py) and
the scenarios are imported lazily, so ``import rpdash.sim`` stays cheap. For a CLI:
``scenario_catalog()`` lists (name, one-line description) of every scenario and
``pickup_orders()`` the values of the pickup option (``serve(..., pickup=...)``).

Modules: engine.py (the ``Engine`` facade) over events.py (clock-driven event loop),
jobs.py (job operations), queue.py (queue and job lifecycle), pickup.py (pickup order),
retention.py (TTL, retention, health counters), pool.py (workers) with scaler.py (scaler
policies, account cap), incidents.py (worker deaths, crash loops, cut-backs),
releases.py, webhooks.py, streams.py; model.py and errors.py hold the data. HTTP: app.py
(ASGI app) with dataplane.py, control.py + control_logs.py, admin.py, http.py; server.py
hosts it.

Evidence for each simulated RunPod behaviour
--------------------------------------------
Sources as named in runpod-api.md (docs pages under runpod/docs, runpod-python 1.12.0,
issues). "Our choice" marks what no source settles.

- Job routes, shapes and statuses (/run, /runsync, /status, /status-sync, /stream, /cancel,
  /retry, /purge-queue, /health): serverless/endpoints/operation-reference.mdx,
  send-requests.mdx, job-states.mdx; go-sdk and JS SDK for /status-sync and POST status.
  ``retries`` in the job object: go-sdk types only; ``workerId``: our choice.
- Worker dies mid-job -> the job runs again, again while the crash repeats: worker-vllm
  issue 29 (user reports) and endpoint-configurations.mdx ("guaranteed execution and
  automatic retries"); ``health.jobs.retried`` counting it: operation-reference.mdx
  (health keys). Status IN_QUEUE between attempts, no retry limit, no back-off, no final
  FAILED: our choice (not documented).
- Crash-looping endpoint (jobs stay IN_QUEUE with no error, workers UNHEALTHY):
  runpod-python rp_fitness.py; runpod-mcp src/tools/jobs.ts and its PR 62;
  serverless/workers/overview.mdx ("Unhealthy ... auto-retries"). Max workers cut back
  for repeated unhealthy workers: serverless/troubleshooting.mdx ("My endpoint was scaled
  down unexpectedly"). Threshold (5 in 10 min) and halving: our choice (not documented).
  No exponential back-off between replacements (older overview.mdx text mentions one):
  our choice, the cut-back bounds the loop.
- Autoscaling QUEUE_DELAY (scalerValue s, default 4) and REQUEST_COUNT
  (ceil((inQueue + inProgress) / scalerValue)): endpoint-configurations.mdx. The
  simulator's own default queue delay is 0 (at once) so scripted tests stay short: our
  choice; the REST view shows the configured value.
- Extra workers above max (default 2, image cached): workers/overview.mdx. When they
  apply (the scaler wants more than max and a worker of the current release has started):
  our choice; off unless ``extra_workers`` is set.
- Account-wide worker cap (5 by default, more by balance): workers/overview.mdx ("Max
  worker limits"); runpodctl issue 117 for the error text. Unhealthy workers do not count:
  our choice.
- GPU shortage (THROTTLED, not billed, host short of resources): workers/overview.mdx;
  null ``gpuTypeId``/``dataCenterId``/``uptimeSeconds`` until placed and null
  ``startedAt`` until started: REST v2 openapi.json (api-reference-v2). That a throttled
  worker is not yet placed: our choice.
- Late progress update leaving a finished job IN_PROGRESS with ``executionTime`` set:
  runpod-python issue 250 and rp_progress.py (progress from a background thread).
  Sources conflict on ``output``: the issue's user saw the last progress string; rpdash's
  issue 14 asks for the final output. We keep the final output (a late update that only
  flips the status), since the report is from 2023 and the race is [unconfirmed] today.
- Stream chunks over 1 MB split: operation-reference.mdx ("Larger outputs are split across
  multiple chunks"); how a split item looks (consecutive string pieces, MB = 10^6 bytes):
  our choice. Chunks with or after the terminal status: runpod-python runner.py
  (``Job.stream`` keeps reading until an empty batch) vs Go/JS/runpod-mcp (stop at the
  terminal status); ``stream_batch_max`` exercises the first rule. The ~10 s hold and
  draining: runpod-mcp src/tools/jobs.ts (mirrored from the server), not in the docs.
- Webhooks (one POST of the status body; retried twice, 10 s apart, unless answered 200):
  send-requests.mdx. None for CANCELLED jobs, loopback-only delivery: our choice.
- Rolling releases (worker by worker, outdated workers ``isStale``, ``/releases``
  rollout): serverless/endpoints/rolling-releases.mdx and REST v2 openapi.json. Sources
  conflict: today's docs stop idle outdated workers at once, older docs replaced 10 % of
  max workers at a time; we replace one worker at a time (surge one new, then retire one
  old) so a bad release can crash-loop while outdated workers keep serving (issue 14).
- Idle endpoint cut-back (3 days -> max 2, 7 days -> 0): endpoint-configurations.mdx
  ("Idle endpoint scale-down") and troubleshooting.mdx.
- REST v2 log events: ids as ``<time>/<sequence>`` cursors, ``Last-Event-ID`` > ``since``
  > ``tail`` precedence: REST v2 openapi.json. The id form is a knob (``log_event_ids``):
  ``"cursor"`` (the documented form) by default; ``"seq"`` (the bare sequence number) is
  kept for tests of clients that met older ids. rpdash treats an id as an opaque cursor.
- 404 bodies: undocumented (runpod-api.md 8 and 16: never branch on the wording). By default
  (``neutral_404``, on) every data-plane 404 says ``{"error": "not found"}``, so nothing
  tells an unknown endpoint from an expired or unknown job but asking ``/health`` (what
  rpdash does); ``neutral_404=False`` (POST /_sim/control) brings back the simulator's own
  wording ("job X not found", "endpoint X not found"), our choice, for reading logs only.
- Pickup order (fifo / batch / random): not documented; fifo is implied by "queue", batch
  mirrors runpod-python's job-take of several jobs: our choice.
- Execution timeout -> TIMED_OUT: job-states.mdx (endpoint-configurations.mdx and REST v1
  say FAILED; sources conflict, TIMED_OUT chosen because the job-states page is the one
  about statuses). TTL and retention -> 404: send-requests.mdx, runpod-python issue 56.
- Rate limits and the /run queue-size limit: operation-reference.mdx (older docs for the
  50 / workersMax x 500 rule); Retry-After on data-plane 429s: our choice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpdash.sim.engine import EndpointConfig, Engine
    from rpdash.sim.control import ControlPlane
    from rpdash.sim.faults import Faults, FaultSpec
    from rpdash.sim.scenarios import get_scenario, pickup_orders, scenario_catalog, scenario_names
    from rpdash.sim.server import SimServer, create_app, serve

_EXPORTS = {
    "SimServer": "rpdash.sim.server",
    "create_app": "rpdash.sim.server",
    "serve": "rpdash.sim.server",
    "Engine": "rpdash.sim.engine",
    "EndpointConfig": "rpdash.sim.engine",
    "Faults": "rpdash.sim.faults",
    "ControlPlane": "rpdash.sim.control",
    "FaultSpec": "rpdash.sim.faults",
    "get_scenario": "rpdash.sim.scenarios",
    "scenario_names": "rpdash.sim.scenarios",
    "scenario_catalog": "rpdash.sim.scenarios",
    "pickup_orders": "rpdash.sim.scenarios",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rpdash.sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
