"""Why do jobs wait? A pure reading of health, the worker list and the endpoint settings.

``/status`` cannot say why a job stays IN_QUEUE; the causes a person can act on are
visible elsewhere: ``/health`` worker counts, the REST v2 worker list (state, start time),
the endpoint's min/max workers and scaler, the job's policy, and rpdash's own rate
limiting. :func:`diagnose` puts them into plain sentences, most severe first.

The causes, in the order they are checked (several may hold at once):

1. rpdash itself is rate limited (429 from RunPod): our requests wait, not the job.
2. Unhealthy workers: the worker crashes at start or on a job (a crash loop), the most
   common real cause of a queue that never moves; RunPod retries them and scales down an
   endpoint that keeps producing them.
3. Max workers is 0, or every allowed worker exists and is busy (max reached).
4. No worker exists or starts although jobs wait (and max is not reached): the account's
   worker quota is used elsewhere, or no GPU of the chosen types is free.
5. Workers initializing (cold start), with how long the oldest has been at it (from the
   worker list's ``startedAt``); a very long one is called out.
6. Throttled workers: their hosts are short of GPUs.
7. The job is low priority: it never causes a scale-up and waits behind normal jobs.
8. Outdated (stale) workers being replaced after a new release.
9. Idle workers while jobs wait: usually a moment before pickup; worth a look if it lasts.
10. Queue-delay scaling: RunPod adds a worker only after a job waited ``queueDelay`` s.

Inputs may be missing (None): each check uses what it has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord

SEVERITIES = ("error", "warn", "info")
#: a cold start longer than this is worth a warning (seconds)
LONG_COLD_START_S = 600.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason, in words. ``severity``: "error" (jobs will not run until fixed), "warn"
    (jobs are held up), "info" (context). ``cause`` is a stable key for tests and UIs."""

    severity: str
    text: str
    cause: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "cause": self.cause, "text": self.text}


def _dur(seconds: float) -> str:
    s = int(max(0, round(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _workers_list(workers: Any) -> list[Any] | None:
    if workers is None:
        return None
    inner = getattr(workers, "workers", workers)
    return list(inner) if isinstance(inner, Sequence | list | tuple) else None


def _started(w: Any, now: float) -> float | None:
    t = getattr(w, "started_epoch", None)
    if t is not None:
        return float(t)
    up = getattr(w, "uptime_s", None)
    return now - up if up is not None else None


def diagnose(
    health: Health | None,
    workers: Any,
    endpoint_info: Any,
    job: JobRecord | None,
    now: float,
    our_rate_limited: bool | float | None = False,
) -> list[Finding]:
    """Reasons jobs wait on an endpoint, most severe first.

    ``workers`` is a ``WorkerList`` or a list of ``WorkerInfo`` (rpdash.api.control);
    ``endpoint_info`` an ``EndpointInfo``; ``now`` is epoch seconds; ``our_rate_limited`` is
    True (or the seconds until rpdash may send again) while RunPod answers 429."""
    out: list[Finding] = []
    wl = _workers_list(workers)
    hw = health.workers if health is not None else None
    queued = health.jobs.inQueue if health is not None else None
    if job is not None and job.status is JobStatus.IN_QUEUE and not queued:
        queued = 1  # at least this one (health may lag)

    def count(state: str) -> int:
        listed = sum(1 for w in wl if str(getattr(w, "status", "")).upper() == state.upper()) if wl is not None else 0
        from_health = int(getattr(hw, state.lower(), 0) or 0) if hw is not None else 0
        return max(listed, from_health)

    unhealthy, initializing = count("unhealthy"), count("initializing")
    throttled, running, idle = count("throttled"), count("running"), count("idle")
    live = running + idle + initializing + throttled
    wmax = getattr(endpoint_info, "workers_max", None)
    waiting = bool(queued)

    if job is not None and job.status is JobStatus.IN_QUEUE:
        since = job.extra.get("queued_at") if isinstance(job.extra, dict) else None
        since = since or job.submitted_at
        if since:
            out.append(Finding("info", f"job {job.job_id} has waited {_dur(now - since)} in the queue.", "job_wait"))

    if our_rate_limited:
        extra = ""
        if isinstance(our_rate_limited, int | float) and not isinstance(our_rate_limited, bool):
            extra = f" for {_dur(float(our_rate_limited))}"
        out.append(Finding(
            "warn",
            "RunPod is rate limiting rpdash (429): rpdash holds its own requests back"
            f"{extra}; status updates lag, but this does not hold jobs in the queue.",
            "rate_limited",
        ))  # fmt: skip

    if unhealthy:
        out.append(Finding(
            "error",
            f"{_plural(unhealthy, 'worker')} unhealthy: the worker crashes (a crash loop), so "
            "jobs wait while each new worker dies. Look at the worker logs (rpdash logs) for "
            "the exception; RunPod retries such workers and scales down an endpoint that "
            "keeps producing them.",
            "unhealthy",
        ))  # fmt: skip

    if wmax is not None and wmax <= 0:
        out.append(Finding(
            "error",
            "max workers is 0: no worker can start, so queued jobs never run. Raise max "
            "workers in the endpoint's settings (an endpoint idle for 7 days is cut to 0).",
            "max_zero",
        ))  # fmt: skip
    elif waiting and wmax is not None and live >= wmax and running >= wmax:
        out.append(Finding(
            "warn",
            f"all {wmax} of {wmax} max workers are busy: jobs wait for one to finish. Raise "
            "max workers to run more at once.",
            "max_reached",
        ))  # fmt: skip
    elif waiting and wmax is not None and live >= wmax:
        out.append(Finding(
            "warn",
            f"max workers ({wmax}) reached: no more workers will start; the queue waits for "
            "the ones that exist.",
            "max_reached",
        ))  # fmt: skip
    elif waiting and live == 0 and (wl is not None or hw is not None):
        gpus = getattr(endpoint_info, "gpu_text", None)
        gpu_part = f" ({gpus})" if gpus and gpus != "-" else ""
        out.append(Finding(
            "warn",
            "no worker is running or starting although jobs wait: the account's worker quota "
            "(5 by default) may be taken by other endpoints, or no GPU of the chosen types"
            f"{gpu_part} is free. Allow more GPU types or data centres, or free workers "
            "elsewhere.",
            "no_workers",
        ))  # fmt: skip

    if initializing:
        starts = [t for t in (_started(w, now) for w in (wl or [])
                              if str(getattr(w, "status", "")).upper() == "INITIALIZING") if t is not None]  # fmt: skip
        if starts:
            oldest = now - min(starts)
            long = oldest >= LONG_COLD_START_S
            text = (f"{_plural(initializing, 'worker')} starting (cold start), the oldest for "
                    f"{_dur(oldest)}: jobs start when a worker is ready.")  # fmt: skip
            if long:
                text += " That is long: a large image or a slow model download; FlashBoot or a smaller image helps."
            out.append(Finding("warn" if long else "info", text, "cold_start"))
        else:
            out.append(Finding(
                "info",
                f"{_plural(initializing, 'worker')} starting (cold start): jobs start when a "
                "worker is ready.",
                "cold_start",
            ))  # fmt: skip

    if throttled:
        out.append(Finding(
            "warn",
            f"{_plural(throttled, 'worker')} throttled: their hosts are short of GPUs and "
            "RunPod holds them back. Allowing more GPU types or data centres helps.",
            "throttled",
        ))  # fmt: skip

    if job is not None and job.status is JobStatus.IN_QUEUE and _low_priority(job):
        sev = "warn" if idle == 0 else "info"
        out.append(Finding(
            sev,
            f"job {job.job_id} is low priority: it waits behind every normal job and never "
            "makes RunPod start a worker; it runs only when a worker is free.",
            "low_priority",
        ))  # fmt: skip

    stale = [w for w in (wl or []) if getattr(w, "is_stale", False) or str(getattr(w, "status", "")).upper() == "OUTDATED"]
    if stale:
        out.append(Finding(
            "info",
            f"{_plural(len(stale), 'worker')} run an outdated release and are being replaced.",
            "stale",
        ))  # fmt: skip

    if waiting and idle and not unhealthy and not (job is not None and _low_priority(job) and running):
        out.append(Finding(
            "info",
            f"{_plural(idle, 'worker')} idle while jobs wait: usually the moment before "
            "pickup; if it lasts, the workers may not be taking jobs (check their logs).",
            "idle_while_queued",
        ))  # fmt: skip

    scaler = getattr(endpoint_info, "scaler_type", None)
    delay = getattr(endpoint_info, "scaler_value", None)
    if (waiting and scaler == "QUEUE_DELAY" and delay and wmax is not None and live < wmax
            and not initializing and not unhealthy):  # fmt: skip
        out.append(Finding(
            "info",
            f"queue-delay scaling: RunPod adds a worker once a job has waited more than {delay} s.",
            "queue_delay",
        ))  # fmt: skip

    if not [f for f in out if f.cause not in ("job_wait",)]:
        if waiting:
            out.append(Finding("info", f"{_plural(int(queued or 0), 'job')} queued; workers are "
                               "taking them and nothing looks wrong.", "ok"))  # fmt: skip
        else:
            out.append(Finding("info", "the queue is empty: nothing is waiting.", "ok"))

    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out, key=lambda f: rank.get(f.severity, 9))


def _low_priority(job: JobRecord) -> bool:
    extra = job.extra if isinstance(job.extra, dict) else {}
    policy = extra.get("policy")
    return bool(isinstance(policy, dict) and policy.get("lowPriority")) or bool(extra.get("lowPriority"))


def uptime_text(s: int | None) -> str:
    """A worker's uptime, compactly: ``45s``, ``3m07s``, ``5h02m``, ``3d04h`` (``-`` unknown)."""
    if s is None:
        return "-"
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h < 48 else f"{h // 24}d{h % 24:02d}h"
