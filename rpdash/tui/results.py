"""Keeping finished jobs' results before RunPod drops them (30 min after /run, 1 min after
/runsync): every ``SWEEP_S`` seconds the finished jobs whose result is not stored get one
status read each, soonest to expire first; the notes under the output read what happened
(:attr:`ResultKeeper.fetched`). No Textual here: the app hands in how to run a task."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rpdash.core.errors import NotFound, RpdashError

#: how often finished jobs are checked for results not stored yet, and how many are
#: fetched per sweep (each is one status read)
SWEEP_S = 10.0
SWEEP_MAX = 4


class ResultKeeper:
    """Fetches results not stored yet, at most once per job."""

    def __init__(self, session: Callable[[], Any], now: Callable[[], float],
                 run_worker: Callable[..., Any], *,
                 local_url: str | None = None) -> None:
        self._session = session
        self._now = now
        self._run_worker = run_worker  # App.run_worker
        self.local_url = local_url
        #: job ids whose result was fetched (at most once each) -> what happened
        self.fetched: dict[str, str] = {}
        self._swept_at = float("-inf")

    async def fetch_result(self, endpoint_id: str, job_id: str) -> str:
        """Read a finished job's status once more to store its result before RunPod drops
        it. Returns what happened ("stored", "no output", "expired", or an error)."""
        session = self._session()
        client = getattr(session, "client", None)
        book = getattr(session, "book", None)
        if client is None or book is None:
            return "cannot fetch: no client"
        try:
            job = await client.status(endpoint_id, job_id)
        except NotFound as exc:
            # RunPod's 404 does not say whether the job or the endpoint is gone: ask once
            which = "job"
            if getattr(exc, "ambiguous", False):
                which = await _which_not_found(session, client, endpoint_id)
            if which == "endpoint":
                return f"endpoint {endpoint_id} is unknown (the job is not marked expired)"
            if which != "job":
                return "fetch failed: RunPod answered 404 and /health did not say why; try again"
            book.change(job_id, expired=True)
            return "expired"
        except RpdashError as exc:
            return f"fetch failed: {exc}"
        rec = book.apply(job_id, job) or book.get(job_id)
        if rec is not None and rec.output is None and rec.error is None and not rec.chunk_count:
            return "no output"
        return "stored"

    def sweep(self) -> list[str]:
        """Every 10 s: finished jobs whose result is not stored while RunPod still keeps
        it get one status read each (4 at a time), soonest to expire first, so a result is
        fetched before it goes even if nobody opens the job. Returns the ids started."""
        from rpdash.services.expiry import ResultState, result_remaining, result_state

        now_m = time.monotonic()
        if self.local_url or now_m - self._swept_at < SWEEP_S:
            return []
        self._swept_at = now_m
        session = self._session()
        jobs = getattr(session, "jobs", None)
        if not jobs or getattr(session, "book", None) is None:
            return []
        now = self._now()
        due: list[tuple[float, Any]] = []
        for rec in list(jobs.values()):
            if not rec.status.terminal or rec.job_id in self.fetched or rec.expired:
                continue
            if result_state(rec, now) is ResultState.AVAILABLE:
                due.append((result_remaining(rec, now) or 0.0, rec))
        due.sort(key=lambda d: d[0])
        started: list[str] = []
        for _, rec in due[:SWEEP_MAX]:
            self.fetched[rec.job_id] = "fetching it now"
            started.append(rec.job_id)

            async def fetch(ep: str = rec.endpoint_id, job_id: str = rec.job_id) -> None:
                self.fetched[job_id] = await self.fetch_result(ep, job_id)

            self._run_worker(fetch(), group="ops-fetch", exit_on_error=False)
        return started


async def _which_not_found(session: Any, client: Any, endpoint_id: str) -> str:
    """"job", "endpoint" or "unknown", through the tracker's shared, cached check."""
    check = getattr(getattr(session, "tracker", None), "not_found", None)
    try:
        if check is not None:
            return str(await check.which(endpoint_id))
        return str(await client.which_not_found(endpoint_id))
    except Exception:  # a failed check is "unknown", never a crash
        return "unknown"
