"""``rpdash metrics``: latency, failures, throughput and cold starts computed from the job
history and the stored health samples; no request is made."""

from __future__ import annotations

from typing import Any

from rpdash.cli.output import safe, to_json
from rpdash.cli.state import EXIT_OK


def cmd_metrics(ctx: Any) -> int:
    from pathlib import Path

    from rpdash.core.clock import RealClock
    from rpdash.services.metrics import compute_metrics, format_ms, health_series, parse_window
    from rpdash.store.history import HistoryStore
    from rpdash.store.metrics_store import MetricsStore

    a = ctx.args
    window = parse_window(a.window)
    path = Path(ctx.settings.history_file())
    if not path.exists():
        ctx.note(f"no job history yet at {path}: run jobs with rpdash first")
        if a.json:
            print(to_json([]), flush=True)
        return EXIT_OK
    now = RealClock().time()
    store = HistoryStore(path)
    try:
        ms = MetricsStore(store)
        explicit = getattr(a, "endpoint", None) or (getattr(a, "endpoints", None) or [None])[0]
        if explicit:
            from rpdash.cli.endpoint import resolve_endpoint

            endpoints = [resolve_endpoint(ctx.settings, explicit)]
        else:
            jobs_all = ms.finished_jobs(None, now - window, now)
            seen = {getattr(j, "endpoint_id", None) for j in jobs_all}
            endpoints = sorted({e for e in seen if e} | set(ms.sampled_endpoints(now - window)))
            if not endpoints and ctx.settings.endpoint_id:
                endpoints = [ctx.settings.endpoint_id]
        results = []
        for ep in endpoints:
            jobs = ms.finished_jobs(ep, now - window, now)
            workers = [j.worker_id for j in jobs if j.worker_id]
            first = ms.first_jobs_of_workers(ep, workers)
            met = compute_metrics(jobs, endpoint_id=ep, window_s=window, now=now, first_jobs=first)
            samples = ms.health_samples(ep, now - window, now)
            trend = {
                "samples": len(samples),
                "in_queue_max": max((s.in_queue for s in samples), default=None),
                "workers_max": max((s.workers for s in samples), default=None),
                "unhealthy_max": max((s.unhealthy for s in samples), default=None),
                "completed_per_min": _last(health_series(samples, "completed")),
                "failed_per_min": _last(health_series(samples, "failed")),
            }
            results.append((met, trend))
    finally:
        store.close()
    if a.json:
        print(to_json([{**m.to_dict(), "health": t} for m, t in results]), flush=True)
        return EXIT_OK
    if not results:
        ctx.note(f"no finished jobs in the last {a.window}")
        return EXIT_OK
    for met, trend in results:
        fr = "-" if met.failure_rate is None else f"{met.failure_rate * 100:.1f} %"
        print(f"endpoint {safe(met.endpoint_id)}, last {a.window}: {met.finished} finished "
              f"({met.completed} completed, {met.failed} failed, {met.timed_out} timed out, "
              f"{met.cancelled} cancelled)", flush=True)  # fmt: skip
        print(f"  failure rate {fr}, throughput {met.throughput_per_min:.2f}/min, "
              f"cold starts {met.cold_starts}", flush=True)  # fmt: skip
        for label, st in (("delay", met.delay), ("execution", met.execution),
                          ("cold start", met.cold_start_delay)):  # fmt: skip
            if st.count:
                print(f"  {label:<10} p50 {format_ms(st.p50)}, p70 {format_ms(st.p70)}, "
                      f"p90 {format_ms(st.p90)}, p98 {format_ms(st.p98)} ({st.count} jobs)", flush=True)  # fmt: skip
        if trend["samples"]:
            print(f"  health: {trend['samples']} samples, queue up to {trend['in_queue_max']}, "
                  f"workers up to {trend['workers_max']}, unhealthy up to {trend['unhealthy_max']}",
                  flush=True)  # fmt: skip
    return EXIT_OK


def _last(points: list[tuple[float, float]]) -> float | None:
    return points[-1][1] if points else None
