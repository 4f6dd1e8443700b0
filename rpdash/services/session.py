"""The Session: everything the dashboard runs in the background, behind one object.

The TUI (and a headless caller) drives one ``Session``: it reads ``jobs`` and ``health`` and
receives events through ``sink``; it calls ``submit``/``cancel``/``retry``/``purge``, tells the
session which jobs are on screen (``set_visible``), which one is selected (``select`` /
``follow``), and pauses everything with ``pause``. Inside:

- one ``HealthPoller`` per watched endpoint (``health_interval``);
- one ``JobTracker`` for every live job (``status_interval``, see services/tracking), which shares
  the health samples it takes while busy with the pollers (nothing is fetched twice);
- one ``StreamFollower`` per live stream-mode job (the only reader of its ``/stream``);
- one ``JobBook``: the records in ``jobs``, their history writes and their events.

``start()`` loads the recent history into ``jobs`` and resumes every job that was still live
when rpdash last stopped (followers for stream-mode jobs, the tracker for the others).
``stop()`` cancels and awaits every task it started; it closes neither client nor store
(whoever made them closes them). A history that cannot be written never stops tracking: the
in-memory record still changes and a ``ProblemEvent`` says why the history lags.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from rpdash.api.protocol import RunPodAPI
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import RpdashError
from rpdash.core.models import Health, JobStatus, Policy, PurgeResult
from rpdash.core.records import JobRecord
from rpdash.services.actions import Actions
from rpdash.services.events import Event, HealthEvent, ProblemEvent, Sink
from rpdash.services.health import HealthPoller, safe_emit
from rpdash.services.streams import StreamFollower
from rpdash.services.tracking import JobBook, JobTracker, TrackerStats
from rpdash.services.tracking.tracker import POLL_CONCURRENCY
from rpdash.services.validation import check_endpoint_id, check_job_id

log = logging.getLogger("rpdash.services.session")


def _metrics_store(store: Any) -> Any:
    """A MetricsStore over ``store`` when it is a HistoryStore (fakes get None)."""
    from rpdash.store.history import HistoryStore

    if not isinstance(store, HistoryStore):
        return None
    from rpdash.store.metrics_store import MetricsStore

    return MetricsStore(store)


HISTORY_LIMIT = 1000


class Session:
    """Everything the dashboard runs in the background, behind one object."""

    def __init__(
        self,
        *,
        client: RunPodAPI,
        store: Any,
        endpoints: list[str],
        sink: Sink,
        clock: Clock | None = None,
        health_interval: float = 5.0,
        status_interval: float = 2.0,
        readonly: bool = False,
        history_limit: int = HISTORY_LIMIT,
        concurrency: int = POLL_CONCURRENCY,
        runsync_wait_ms: int | None = None,
        metrics_retention_s: float | None = 30 * 86400.0,
        poll_health: bool = True,
    ) -> None:
        self.client = client
        self.store = store
        #: health samples for the charts (same SQLite file as the history); None without one
        self.metrics: Any = _metrics_store(store)
        #: samples older than this are pruned at start (None keeps them all)
        self.metrics_retention_s = metrics_retention_s
        self._metrics_broken = False
        self.sink = sink
        self.clock: Clock = clock or RealClock()
        self.endpoints: list[str] = list(dict.fromkeys(endpoints))
        self.health_interval = max(1.0, health_interval)
        self.status_interval = max(0.5, status_interval)
        self.history_limit = history_limit
        #: what the job list shows (read-only for the UI); records are replaced, never mutated
        self.jobs: dict[str, JobRecord] = {}
        #: the latest health event per endpoint
        self.health: dict[str, HealthEvent] = {}
        self.book = JobBook(store, self._emit, self.clock, records=self.jobs)
        self.tracker = JobTracker(
            client,
            store,
            self._emit,
            self.clock,
            interval=self.status_interval,
            concurrency=concurrency,
            book=self.book,
            on_health=self._tracker_health,
        )
        self.pollers: dict[str, HealthPoller] = {}
        #: False when the API has no /health (local dev worker): no pollers are made
        self.pollers_enabled = poll_health
        for ep in self.endpoints if poll_health else ():
            self._add_poller(ep)
        self.followers: dict[str, StreamFollower] = {}
        kw: dict[str, Any] = {}
        if runsync_wait_ms is not None:
            kw["runsync_wait_ms"] = runsync_wait_ms
        self.actions = Actions(
            client,
            self.book,
            self.tracker,
            self.clock,
            readonly=readonly,
            start_follower=self._start_follower,
            on_purged=self._purged,
            **kw,
        )
        self._paused = False
        self._health_active = True
        self._started = False
        self._followed: set[str] = set()  # followers started by follow() for non-stream jobs
        self._stopping: set[asyncio.Future[None]] = set()

    # ================================================================== lifecycle

    @property
    def readonly(self) -> bool:
        return self.actions.readonly

    @readonly.setter
    def readonly(self, value: bool) -> None:
        self.actions.readonly = bool(value)

    @property
    def stats(self) -> TrackerStats:
        return self.tracker.stats

    async def start(self) -> None:
        """Load the recent history, resume live jobs, start the pollers and the tracker."""
        if self._started:
            return
        self._started = True
        self.prune_metrics()
        recent = self.book.store_read("recent", self.history_limit, default=[]) or []
        active = self.book.store_read("active", default=[]) or []
        self.book.load(reversed(recent))  # oldest first: dict order is chronological
        self.book.load(r for r in reversed(active) if r.job_id not in self.jobs)
        self.tracker.start()
        for rec in sorted(active, key=lambda r: r.submitted_at):
            rec = self.jobs.get(rec.job_id, rec)
            if rec.terminal:
                continue
            if rec.mode == "stream":
                self.tracker.track(rec, owner="stream")
                self._start_follower(rec)
            else:
                self.tracker.track(rec)
        for p in self.pollers.values():
            p.start()
            if not self._health_active or self._paused:
                p.pause()
        if self._paused:
            self.tracker.pause()

    async def stop(self) -> None:
        """Cancel every task the session started and wait for them to end."""
        waits = [self.tracker.stop(), self.actions.stop()]
        waits += [p.stop() for p in self.pollers.values()]
        waits += [f.stop() for f in list(self.followers.values())]
        waits += list(self._stopping)
        await asyncio.gather(*waits, return_exceptions=True)
        self.followers.clear()
        self.book.flush()
        self._started = False

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ================================================================== actions

    async def submit(
        self,
        endpoint_id: str,
        input: str | dict[str, Any],
        *,
        mode: str = "run",
        policy: Policy | None = None,
        webhook: str | None = None,
    ) -> JobRecord:
        """Validate (``InvalidInput`` before any request), submit, store, track."""
        return await self.actions.submit(
            endpoint_id, input, mode=mode, policy=policy, webhook=webhook
        )

    async def cancel(self, job_ids: list[str]) -> list[tuple[str, JobRecord | RpdashError]]:
        return await self.actions.cancel(job_ids)

    async def retry(self, job_id: str) -> JobRecord:
        return await self.actions.retry(job_id)

    async def purge(self, endpoint_id: str) -> PurgeResult:
        return await self.actions.purge(endpoint_id)

    def watch(self, job_id: str, endpoint_id: str) -> JobRecord:
        """Track a job rpdash did not submit (``:watch``). Its queue position is unknown,
        so it is polled on its own schedule until it ends (a 404 marks it expired)."""
        job_id = check_job_id(job_id)
        endpoint_id = check_endpoint_id(endpoint_id)
        rec = self.jobs.get(job_id)
        if rec is not None:
            if not rec.terminal and not self.tracker.is_tracking(job_id):
                self.tracker.track(rec)
            return rec
        now = self.clock.time()
        rec = JobRecord(
            job_id=job_id,
            endpoint_id=endpoint_id,
            status=JobStatus.UNKNOWN,
            submitted_at=now,
            updated_at=now,
            extra={"watched": True},
        )
        self.book.add(rec, submitted=True)
        self.tracker.track(rec, ordered=False)
        return rec

    # ================================================================== output

    def select(self, job_id: str | None) -> None:
        """The job under the cursor / in the detail view: its end is noticed at once
        (``/status-sync`` long-poll) and its progress refreshed every status interval."""
        self.tracker.select(job_id)

    def follow(self, job_id: str) -> None:
        """Show this job's output live: select it, and read its stream if it is live."""
        rec = self.jobs.get(job_id)
        if rec is None:
            return
        self.tracker.select(job_id)
        if rec.terminal or job_id in self.followers:
            return
        if rec.mode != "stream":
            self._followed.add(job_id)
        self._start_follower(rec)

    def unfollow(self, job_id: str) -> None:
        """Stop showing it live. A stream-mode job keeps its reader (its chunks must be
        stored); a follower started only by ``follow`` stops."""
        if self.tracker.selected == job_id:
            self.tracker.select(None)
        if job_id in self._followed:
            self._followed.discard(job_id)
            f = self.followers.pop(job_id, None)
            if f is not None:
                t = asyncio.ensure_future(f.stop())
                self._stopping.add(t)
                t.add_done_callback(self._stopping.discard)

    def chunks(self, job_id: str) -> list[Any]:
        """Every stream output of the job stored so far, plus any not yet flushed."""
        stored = self.book.store_read("chunks", job_id, default=None)
        f = self.followers.get(job_id)
        pending = f.pending() if f is not None else []
        if stored is None:
            return pending
        return list(stored) + pending

    def set_visible(self, job_ids: Iterable[str]) -> None:
        self.tracker.set_visible(job_ids)

    # ================================================================== pausing

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop all polling (the global pause key). Stream readers stop after their
        current chunk; nothing is lost, the server keeps what nobody has read."""
        if self._paused:
            return
        self._paused = True
        self.tracker.pause()
        for p in self.pollers.values():
            p.pause()
        for f in self.followers.values():
            f.pause()

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self.tracker.resume()
        if self._health_active:
            for p in self.pollers.values():
                p.resume()
        for f in self.followers.values():
            f.resume()

    def set_health_active(self, active: bool) -> None:
        """Pause the health pollers while nobody can see them (covered screen)."""
        self._health_active = bool(active)
        for p in self.pollers.values():
            if active and not self._paused:
                p.resume()
            elif not active:
                p.pause()

    def refresh_now(self) -> None:
        for p in self.pollers.values():
            p.refresh_now()
        self.tracker.refresh_now()

    # ================================================================== wiring

    def _emit(self, event: Event) -> None:
        if isinstance(event, HealthEvent):
            prev = self.health.get(event.endpoint_id)
            self.health[event.endpoint_id] = event
            self._record_health(event, prev)
        safe_emit(self.sink, event)

    # ================================================================== metrics

    def _record_health(self, event: HealthEvent, prev: HealthEvent | None) -> None:
        """Store each new good ``/health`` answer as a sample (charts survive restarts).
        A stale event repeats the last good answer: it is not stored again."""
        if self.metrics is None or self._metrics_broken or event.health is None:
            return
        at = event.last_ok_at
        if at is None or (prev is not None and prev.last_ok_at == at and prev.health is event.health):
            return
        try:
            self.metrics.record_health(event.endpoint_id, event.health, at=at)
        except Exception as exc:  # noqa: BLE001 - charts must never stop the dashboard
            self._metrics_broken = True
            log.warning("health samples not stored: %s", exc)
            safe_emit(self.sink, ProblemEvent(
                f"health trends are not stored ({exc}); the dashboard keeps working",
                "warning", event.endpoint_id))

    def prune_metrics(self) -> int:
        """Drop health samples older than ``metrics_retention_s`` (the history's retention,
        pruned at the same moment as the jobs)."""
        if self.metrics is None or not self.metrics_retention_s:
            return 0
        try:
            return int(self.metrics.prune_health(self.metrics_retention_s))
        except Exception as exc:  # noqa: BLE001
            log.warning("health samples not pruned: %s", exc)
            return 0

    # ================================================================== endpoints

    def add_endpoint(self, endpoint_id: str) -> bool:
        """Watch one more endpoint (endpoint picker, favourites): a health poller of its
        own. Returns False when it was already watched."""
        endpoint_id = check_endpoint_id(endpoint_id)
        if endpoint_id in self.endpoints:
            return False
        self.endpoints.append(endpoint_id)
        if not self.pollers_enabled:
            return True
        p = self._add_poller(endpoint_id)
        if self._started:
            p.start()
            if not self._health_active or self._paused:
                p.pause()
        return True

    def _add_poller(self, endpoint_id: str) -> HealthPoller:
        p = HealthPoller(
            self.client,
            endpoint_id,
            self._emit,
            self.clock,
            interval=self.health_interval,
            on_health=self.tracker.note_health,
        )
        self.pollers[endpoint_id] = p
        return p

    def _tracker_health(self, endpoint_id: str, health: Health) -> None:
        p = self.pollers.get(endpoint_id)
        if p is not None and not p.paused:
            p.offer(health)

    def _purged(self, endpoint_id: str) -> None:
        p = self.pollers.get(endpoint_id)
        if p is not None:
            p.refresh_now()

    def _start_follower(self, rec: JobRecord) -> StreamFollower:
        old = self.followers.get(rec.job_id)
        if old is not None and old.task is not None and not old.task.done():
            return old
        f = StreamFollower(
            self.client,
            self.store,
            self._emit,
            self.clock,
            rec,
            book=self.book,
            on_done=self._follower_done,
        )
        self.followers[rec.job_id] = f
        if self._paused:
            f.pause()
        f.start()
        return f

    def _follower_done(self, f: StreamFollower) -> None:
        if self.followers.get(f.job_id) is f:
            del self.followers[f.job_id]
        self._followed.discard(f.job_id)
        rec = self.jobs.get(f.job_id)
        if rec is None or rec.terminal:
            self.tracker.untrack(f.job_id)
        else:
            self.tracker.release(f.job_id)
