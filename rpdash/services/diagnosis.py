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

With more context (all optional) it also reads:

- rpdash's own problem with the endpoint (``problem``: a ``ConnState`` value such as
  "key rejected", "not found", "unreachable", "retrying", "rate limited"): while RunPod
  does not answer, every number above is the last good one;
- the account's worker cap and how many workers other endpoints hold (``account_cap``,
  ``workers_elsewhere``): no worker starting because the cap is used elsewhere;
- a bad release: new workers unhealthy while outdated ones still serve the old release;
- recent job records (``jobs``): a job re-run again and again (``retries``, a worker dying
  on it) and a job flagged as stuck IN_PROGRESS after it finished (the tracker's
  ``JobRecord.stuck_progress``, which it sets while showing the job COMPLETED, until a
  cancel clears it at RunPod; ``stuck`` / ``stuck_in_progress`` attributes or
  ``extra["stuck"]`` from other sources; all optional).

Inputs may be missing (None): each check uses what it has. Findings carry the numbers
they were built from in ``data`` (for short texts such as the verdict's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rpdash.core.models import Health, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.tracking.quirks import still_stuck

SEVERITIES = ("error", "warn", "info")
#: a cold start longer than this is worth a warning (seconds)
LONG_COLD_START_S = 600.0
#: a job re-run this many times (``retries``) is a retry storm
RETRY_STORM_MIN = 3
#: jobs that finished (or last changed) longer ago than this are not read for retry storms
RECENT_JOB_S = 900.0
#: ``problem`` values (``ConnState``) that mean RunPod gave no usable answer
NO_ANSWER_STATES = frozenset({"unreachable", "retrying", "timed out", "server error", "bad response"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason, in words. ``severity``: "error" (jobs will not run until fixed), "warn"
    (jobs are held up), "info" (context). ``cause`` is a stable key for tests and UIs."""

    severity: str
    text: str
    cause: str = ""
    #: the numbers behind the text (counts, ids), for short texts; not compared
    data: dict[str, Any] = field(default_factory=dict, compare=False)

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


#: a duration in words ("45 s", "2 min 5 s", "1 h 3 min"), for texts built on the findings
duration_text = _dur


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
    *,
    problem: str | None = None,
    jobs: Iterable[Any] = (),
    account_cap: int | None = None,
    workers_elsewhere: int | None = None,
) -> list[Finding]:
    """Reasons jobs wait on an endpoint, most severe first.

    ``workers`` is a ``WorkerList`` or a list of ``WorkerInfo`` (rpdash.api.control);
    ``endpoint_info`` an ``EndpointInfo``; ``now`` is epoch seconds; ``our_rate_limited`` is
    True (or the seconds until rpdash may send again) while RunPod answers 429.
    ``problem`` is rpdash's connection state with the endpoint (``ConnState`` or its value);
    ``jobs`` recent job records of the endpoint; ``account_cap`` the account's worker cap
    and ``workers_elsewhere`` the workers other endpoints of the account hold."""
    out: list[Finding] = _problem_findings(problem)
    if problem is not None and str(problem) == "rate limited" and not our_rate_limited:
        our_rate_limited = True
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
            {"unhealthy": unhealthy, "running": running},
        ))  # fmt: skip

    if wmax is not None and wmax <= 0:
        out.append(Finding(
            "error",
            "max workers is 0: no worker can start, so queued jobs never run. Raise max "
            "workers in the endpoint's settings (an endpoint idle for 7 days is cut to 0).",
            "max_zero",
            {"queued": int(queued or 0)},
        ))  # fmt: skip
    elif waiting and wmax is not None and live >= wmax and running >= wmax:
        out.append(Finding(
            "warn",
            f"all {wmax} of {wmax} max workers are busy: jobs wait for one to finish. Raise "
            "max workers to run more at once.",
            "max_reached",
            {"live": live, "max": wmax},
        ))  # fmt: skip
    # not a cold start, and more jobs wait than the idle and starting workers will take
    # (fewer is a moment's dispatch, e.g. the first jobs while workers boot): max is what holds them
    elif (waiting and wmax is not None and live >= wmax and initializing < live
          and int(queued or 0) > idle + initializing):  # fmt: skip
        out.append(Finding(
            "warn",
            f"max workers ({wmax}) reached: no more workers will start; the queue waits for "
            "the ones that exist.",
            "max_reached",
            {"live": live, "max": wmax},
        ))  # fmt: skip
    # an endpoint starting all its own max allows is not held back by the account's cap
    elif (waiting and account_cap is not None and workers_elsewhere is not None
          and live < account_cap <= workers_elsewhere + live
          and (wmax is None or live < wmax)):  # fmt: skip
        out.append(Finding(
            "warn",
            f"the account's worker cap ({account_cap}) is used: {_plural(workers_elsewhere, 'worker')} "
            "run on other endpoints, so no more can start here. Free workers there, or raise "
            "the cap (it rises with the account balance; support can lift it further).",
            "account_cap",
            {"cap": account_cap, "elsewhere": workers_elsewhere},
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
            {"queued": int(queued or 0)},
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
            out.append(Finding("warn" if long else "info", text, "cold_start",
                               {"workers": initializing, "oldest_s": oldest}))  # fmt: skip
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
            {"throttled": throttled, "serving": running + idle, "queued": int(queued or 0)},
        ))  # fmt: skip

    if job is not None and job.status is JobStatus.IN_QUEUE and _low_priority(job):
        sev = "warn" if idle == 0 else "info"
        out.append(Finding(
            sev,
            f"job {job.job_id} is low priority: it waits behind every normal job and never "
            "makes RunPod start a worker; it runs only when a worker is free.",
            "low_priority",
        ))  # fmt: skip

    stale = [w for w in (wl or []) if _is_stale(w)]
    if stale:
        out.append(Finding(
            "info",
            f"{_plural(len(stale), 'worker')} run an outdated release and are being replaced.",
            "stale",
        ))  # fmt: skip
    out.extend(_release_findings(wl))
    out.extend(_job_findings(jobs, now))

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


def _problem_findings(problem: str | None) -> list[Finding]:
    state = str(problem) if problem is not None else ""
    if state == "key rejected":
        return [Finding(
            "error",
            "RunPod rejected the API key (401/403): rpdash sees nothing of this endpoint until "
            "the key is fixed (RUNPOD_API_KEY or the config file); the numbers shown are old.",
            "key_rejected",
        )]  # fmt: skip
    if state == "not found":
        return [Finding(
            "error",
            "RunPod does not know this endpoint (404): it was deleted, or the id belongs to "
            "another account than the key.",
            "not_found",
        )]  # fmt: skip
    if state in NO_ANSWER_STATES:
        return [Finding(
            "warn",
            "the endpoint does not answer (network errors, time-outs or server errors): the "
            "numbers shown are the last good ones; rpdash keeps trying.",
            "no_answer",
        )]  # fmt: skip
    return []


def _is_stale(w: Any) -> bool:
    return bool(getattr(w, "is_stale", False)) or str(getattr(w, "status", "")).upper() == "OUTDATED"


def _serving(w: Any) -> bool:
    return str(getattr(w, "status", "")).upper() in ("RUNNING", "IDLE", "OUTDATED")


def _release_findings(wl: list[Any] | None) -> list[Finding]:
    """New workers crash while outdated ones still serve: the latest release is broken."""
    if not wl:
        return []
    stale = [w for w in wl if _is_stale(w)]
    serving_old = sum(1 for w in stale if _serving(w))
    new_bad = sum(1 for w in wl if w not in stale and str(getattr(w, "status", "")).upper() == "UNHEALTHY")
    if not (serving_old and new_bad):
        return []
    return [Finding(
        "error",
        f"the new release crashes: {_plural(new_bad, 'new worker')} unhealthy while "
        f"{_plural(serving_old, 'outdated worker')} still serve the old release; once they are "
        "replaced nothing will serve. Roll back the image or fix it (the worker logs show why).",
        "bad_release",
        {"new_unhealthy": new_bad, "outdated_serving": serving_old},
    )]  # fmt: skip


def _short_id(job_id: str) -> str:
    return job_id if len(job_id) <= 12 else job_id[:8] + "…"


def _job_findings(jobs: Iterable[Any], now: float) -> list[Finding]:
    """Retry storms and jobs stuck IN_PROGRESS, from recent job records (duck-typed)."""
    worst: tuple[int, str] | None = None
    stuck: list[str] = []
    for j in jobs or ():
        status = JobStatus.parse(getattr(j, "status", None))
        last = getattr(j, "finished_at", None) or getattr(j, "updated_at", None)
        if status.terminal and last and now - float(last) > RECENT_JOB_S:
            continue
        job_id = str(getattr(j, "job_id", None) or getattr(j, "id", "?"))
        # a job cancelled (the lever) is re-run no more: the storm is over
        retries = 0 if status is JobStatus.CANCELLED else int(getattr(j, "retries", 0) or 0)
        if retries >= RETRY_STORM_MIN and (worst is None or retries > worst[0]):
            worst = (retries, job_id)
        extra = getattr(j, "extra", None)
        # finished, shown COMPLETED*, and RunPod still says IN_PROGRESS (no cancel cleared it)
        recognised = still_stuck(j)
        flagged = (getattr(j, "stuck", False) or getattr(j, "stuck_in_progress", False)
                   or (isinstance(extra, dict) and extra.get("stuck")))  # fmt: skip
        if recognised or (flagged and status is JobStatus.IN_PROGRESS):
            stuck.append(job_id)
    out: list[Finding] = []
    if worst is not None:
        n, job_id = worst
        out.append(Finding(
            "warn",
            f"job {job_id} was re-run {n} times: a worker most likely dies on it (out of "
            "memory, a crash mid-job) and RunPod puts it back each time. Look at the worker "
            "logs; cancel the job if it keeps coming back.",
            "retry_storm",
            {"job_id": job_id, "short_id": _short_id(job_id), "retries": n},
        ))  # fmt: skip
    if stuck:
        first = stuck[0]
        more = f" (and {_plural(len(stuck) - 1, 'other')})" if len(stuck) > 1 else ""
        out.append(Finding(
            "warn",
            f"job {first}{more} looks finished but still shows IN_PROGRESS: a late progress "
            "update can overwrite the final status (runpod-python issue 250); its output may "
            "be the last progress text. Compare with the execution timeout before waiting on it.",
            "stuck_job",
            {"job_id": first, "short_id": _short_id(first), "count": len(stuck)},
        ))  # fmt: skip
    return out


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
