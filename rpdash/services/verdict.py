"""One verdict per endpoint: what is wrong, in a few words, and why.

"Incidents are states" (DESIGN.md): :func:`judge` reads the same inputs as the stuck-queue
diagnosis (:mod:`rpdash.services.diagnosis`) and condenses its findings into one
:class:`Verdict` that the health row, the status line, alerts, the Prometheus exporter and
``rpdash watch`` all show. One rule set, many views: the diagnosis decides what holds, this
module only picks the worst finding and names it.

Kinds, their short texts and severities (``ok`` < ``info`` < ``warn`` < ``critical``):

=============== ===================================================== ====================
kind            short text                                            severity
=============== ===================================================== ====================
key_rejected    ``key rejected``                                      critical
not_found       ``endpoint not found``                                critical
no_answer       ``no answer``                                         warn
bad_release     ``bad release (new workers unhealthy, 2 outdated      critical
                serving)``
crash_loop      ``crash-looping (3 unhealthy, 0 running)``            critical with nothing
                                                                      running, else warn
                                                                      (not with max 0 or
                                                                      a retry storm)
max_zero        ``max workers 0``                                     critical with jobs
                                                                      queued, else info
account_cap     ``account worker cap (5) used by other endpoints``    warn
no_workers      ``no workers (3 queued)``                             warn
no_gpus         ``no GPUs (4 throttled)``                             warn with jobs queued
                                                                      and none served, else
                                                                      info
max_workers     ``max workers reached (5/5)``                         warn
retry_storm     ``retry storm (job X re-run 4x)``                     warn
stuck_job       ``stuck job (X IN_PROGRESS after finishing)``         warn
slow_start      ``slow cold start (12 min 5 s)``                      warn
drained         ``drained (:restore)``                                info (max workers 0
                                                                      after a drain from
                                                                      rpdash)
rate_limited    ``rate limited``                                      info (rpdash's own
                                                                      requests wait, the
                                                                      jobs do not)
unknown         ``no data yet``                                       info
ok              ``ok``                                                ok
=============== ===================================================== ====================

The first three win whenever they hold (the other findings then rest on old numbers);
otherwise the worst severity wins and, between equals, the order above (what to fix first). ``reasons``
holds every finding's sentence, the chosen one first, for a "why?" view. ``since`` is when
this kind of verdict began: :func:`judge` stamps ``now``; :class:`VerdictBook` keeps the
first stamp while the kind holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from rpdash.core.models import Health
from rpdash.services.diagnosis import Finding, diagnose, duration_text

SEVERITIES = ("ok", "info", "warn", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """``ok`` 0, ``info`` 1, ``warn`` 2, ``critical`` 3 (unknown words count as ``info``)."""
    return SEVERITY_RANK.get(severity, 1)


def worst_severity(severities: Iterable[str]) -> str:
    """The most severe of ``severities`` (``ok`` when there are none)."""
    return max(severities, key=severity_rank, default="ok")


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    severity: str
    short_text: str
    reasons: list[str] = field(default_factory=list, compare=False)
    #: epoch seconds since which this kind of verdict holds
    since: float = 0.0

    @property
    def rank(self) -> int:
        return severity_rank(self.severity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _crash(f: Finding, queued: int) -> tuple[str, str]:
    u, r = f.data.get("unhealthy", 0), f.data.get("running", 0)
    return ("critical" if not r else "warn"), f"crash-looping ({u} unhealthy, {r} running)"


def _no_gpus(f: Finding, queued: int) -> tuple[str, str]:
    starved = f.data.get("queued", queued) and not f.data.get("serving", 0)
    return ("warn" if starved else "info"), f"no GPUs ({f.data.get('throttled', 0)} throttled)"


def _fixed(severity: str, text: str) -> Callable[[Finding, int], tuple[str, str]]:
    return lambda f, queued: (severity, text.format(**f.data))


#: finding cause -> (verdict kind, rule giving (severity, short text)), in precedence order
_RULES: list[tuple[str, str, Callable[[Finding, int], tuple[str, str]]]] = [
    ("key_rejected", "key_rejected", _fixed("critical", "key rejected")),
    ("not_found", "not_found", _fixed("critical", "endpoint not found")),
    ("no_answer", "no_answer", _fixed("warn", "no answer")),
    ("bad_release", "bad_release",
     _fixed("critical", "bad release (new workers unhealthy, {outdated_serving} outdated serving)")),
    ("unhealthy", "crash_loop", _crash),
    ("max_zero", "max_zero", lambda f, q: ("critical" if q else "info", "max workers 0")),
    ("account_cap", "account_cap", _fixed("warn", "account worker cap ({cap}) used by other endpoints")),
    ("no_workers", "no_workers", _fixed("warn", "no workers ({queued} queued)")),
    ("throttled", "no_gpus", _no_gpus),
    ("max_reached", "max_workers", _fixed("warn", "max workers reached ({live}/{max})")),
    ("retry_storm", "retry_storm", _fixed("warn", "retry storm (job {short_id} re-run {retries}x)")),
    ("stuck_job", "stuck_job", _fixed("warn", "stuck job ({short_id} IN_PROGRESS after finishing)")),
    ("cold_start", "slow_start",
     lambda f, q: ("warn", f"slow cold start ({duration_text(f.data.get('oldest_s', 0))})") if f.severity == "warn"
     else ("ok", "")),  # fmt: skip
    ("rate_limited", "rate_limited", _fixed("info", "rate limited")),
]
#: kinds that win whatever their severity: every other finding rests on old numbers then
_STALE_DATA = frozenset({"key_rejected", "not_found", "no_answer"})
_ORDER = {cause: i for i, (cause, _, _) in enumerate(_RULES)}
#: finding cause -> causes that explain it better: with max workers 0 no worker starts, so
#: unhealthy workers left over are no crash loop (a drain, or RunPod's cut-back, stopped it);
#: a job re-run again and again kills the workers it meets: the job, not the image
_OUTRANKED: dict[str, set[str]] = {"unhealthy": {"max_zero", "retry_storm"}}

KINDS = tuple(kind for _, kind, _ in _RULES) + ("drained", "unknown", "ok")


def verdict_from_findings(findings: list[Finding], *, queued: int = 0, now: float = 0.0,
                          known: bool = True) -> Verdict:  # fmt: skip
    """The verdict the findings of :func:`diagnose` add up to (see the module docstring).
    ``known`` is False when rpdash has no health, worker list or problem for the endpoint."""
    best: tuple[int, int, str, str, str, Finding] | None = None
    causes = {f.cause for f in findings}
    for f in findings:
        i = _ORDER.get(f.cause)
        if i is None or causes & _OUTRANKED.get(f.cause, set()):
            continue
        _, kind, rule = _RULES[i]
        severity, text = rule(f, queued)
        if severity == "ok":
            continue
        # while RunPod gives no usable answer the other findings rest on old numbers
        key = (-9 if kind in _STALE_DATA else -severity_rank(severity), i)
        if best is None or key < best[:2]:
            best = (key[0], key[1], kind, severity, text, f)
    texts = [f.text for f in findings]
    if best is None:
        if not known:
            return Verdict("unknown", "info", "no data yet", texts, now)
        return Verdict("ok", "ok", "ok", texts, now)
    chosen = best[5]
    reasons = [chosen.text] + [f.text for f in findings if f is not chosen]
    return Verdict(best[2], best[3], best[4], reasons, now)


def judge(
    health: Health | None,
    workers: Any = None,
    endpoint_info: Any = None,
    *,
    now: float,
    jobs: Iterable[Any] = (),
    problem: str | None = None,
    rate_limited: bool | float | None = False,
    account_cap: int | None = None,
    workers_elsewhere: int | None = None,
) -> Verdict:
    """The verdict on one endpoint, stamped ``since=now`` (epoch seconds).

    ``health``: its last ``/health`` (``Health``); ``workers``: the REST v2 worker list
    (``WorkerList`` or a list of ``WorkerInfo``) if known; ``endpoint_info``: its settings
    (``EndpointInfo``: ``workers_max``...); ``jobs``: recent job records of the endpoint
    (``retries`` and a ``stuck`` flag are read when present); ``problem``: rpdash's
    connection state with it (``ConnState`` or its value, e.g. "key rejected",
    "unreachable", "rate limited"); ``rate_limited``: True or the seconds rpdash holds back;
    ``account_cap``: the account's worker cap; ``workers_elsewhere``: workers the account's
    other endpoints hold."""
    findings = diagnose(health, workers, endpoint_info, None, now, rate_limited, problem=problem,
                        jobs=list(jobs), account_cap=account_cap,
                        workers_elsewhere=workers_elsewhere)  # fmt: skip
    queued = health.jobs.inQueue if health is not None else 0
    known = health is not None or workers is not None or (problem is not None and str(problem) != "connecting")
    return verdict_from_findings(findings, queued=queued, now=now, known=known)


def drained_verdict(verdict: Verdict) -> Verdict:
    """``max workers 0`` on an endpoint the operator drained (its scale is saved for a
    restore): what they asked for, not an incident. Severity ``info`` (no alert), the text
    says so and how to undo it; any other verdict is kept (a drained endpoint can still
    have a rejected key)."""
    if verdict.kind != "max_zero":
        return verdict
    reasons = ["drained from rpdash: its scale is saved; :restore puts it back"] + list(verdict.reasons)
    return replace(verdict, kind="drained", severity="info", short_text="drained (:restore)",
                   reasons=reasons)


class VerdictBook:
    """The current verdict per endpoint, with ``since`` kept while the kind holds.

    ``update(endpoint_id, verdict)`` returns the verdict to show: the new one, but with the
    ``since`` of the first verdict of the same kind in an unbroken run."""

    def __init__(self) -> None:
        self._current: dict[str, Verdict] = {}

    def update(self, endpoint_id: str, verdict: Verdict) -> Verdict:
        prev = self._current.get(endpoint_id)
        if prev is not None and prev.kind == verdict.kind:
            verdict = replace(verdict, since=prev.since)
        self._current[endpoint_id] = verdict
        return verdict

    def get(self, endpoint_id: str) -> Verdict | None:
        return self._current.get(endpoint_id)

    def forget(self, endpoint_id: str) -> None:
        self._current.pop(endpoint_id, None)

    def all(self) -> dict[str, Verdict]:
        return dict(self._current)

    def worst(self) -> str:
        """The worst severity over every endpoint (``ok`` when none is known)."""
        return worst_severity(v.severity for v in self._current.values())
