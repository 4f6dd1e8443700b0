"""Worker log tails: one worker's resumable SSE tail, and the endpoint-wide merge.

- **Log tails are resumable.** Each event's ``id`` is remembered; when a stream drops or
  the server closes it, the tail reconnects with ``Last-Event-ID`` so nothing is lost or
  repeated (server ``retry:`` hints are honoured, failures back off up to 30 s). When the
  server closes a stream, the worker list says whether the worker is gone; a gone worker
  (not listed, or 404 on reconnect) ends its tail quietly.
- **"Tail without follow" ends on a quiet moment.** The API has no end-of-backlog marker,
  so a non-following tail stops when the server closes the stream, or when no event came
  for ``idle`` seconds (default 2 s, on the injected clock), or after ``backlog_timeout``.
- **The endpoint-wide tail is a merge** (RunPod documents no endpoint-wide stream): one
  per-worker tail for every worker the worker list shows (at most ``max_streams``); the
  backlogs (``tail`` lines each) are merged by timestamp and cut to the last ``tail``
  lines overall; then live lines pass in arrival order; the worker list is re-read every
  ``refresh`` seconds and new workers' tails are opened from their first line (cold
  starts are worth seeing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx

from rpdash.api.bodies import BodyTooLarge, BodyUnreadable, iter_lines, loads
from rpdash.api.control.connection import ControlConnection, backoff, check_id
from rpdash.api.control.loglines import LogLine, log_order
from rpdash.api.control.models import WorkerList
from rpdash.api.control.sse import Event, sse_events
from rpdash.core.errors import BadResponse, InvalidInput, NotFound, RpdashError

__all__ = ["TAIL_DEFAULT", "TAIL_MAX", "LogTailer"]

TAIL_DEFAULT = 100
TAIL_MAX = 5000
#: bounds on what one log event may hold (characters of a line, of an event's data)
MAX_LINE = 4 << 20
MAX_EVENT = 8 << 20


class _Idle:
    __repr__ = lambda self: "IDLE"  # noqa: E731


#: what a tail yields the first time its stream is quiet (the backlog is out)
_IDLE = _Idle()


class LogTailer:
    """Tails worker logs over ``conn``; ``workers`` lists an endpoint's workers (to find
    the workers to merge, new ones, and whether a closed stream's worker is gone)."""

    def __init__(self, conn: ControlConnection, workers: Callable[[str], Awaitable[WorkerList]],
                 *, max_streams: int) -> None:  # fmt: skip
        self._conn = conn
        self._clock = conn.clock
        self.workers = workers
        self.max_streams = max_streams

    async def worker_logs(
        self,
        endpoint_id: str,
        worker_id: str,
        *,
        tail: int = TAIL_DEFAULT,
        since: str | None = None,
        source: str | None = None,
        follow: bool = True,
        last_event_id: str | None = None,
        idle: float = 2.0,
        backlog_timeout: float = 15.0,
    ) -> AsyncIterator[LogLine]:
        """Tail one worker's log: the last ``tail`` lines (or those since ``since``, RFC
        3339; or those after ``last_event_id``), then, with ``follow``, new lines as they
        come, resuming with ``Last-Event-ID`` across drops. Ends when the worker is gone.
        Errors of the first connection are raised (NotFound for an unknown worker)."""
        check_id(endpoint_id, "endpoint")
        check_id(worker_id, "worker")
        _check_tail(tail, source)
        deadline = None if follow else self._clock.now() + backlog_timeout
        async for item in self._tail(endpoint_id, worker_id, tail=tail, since=since, source=source,
                                     follow=follow, last_event_id=last_event_id,
                                     idle=idle, deadline=deadline):  # fmt: skip
            if item is _IDLE:
                if not follow:
                    return
                continue
            assert isinstance(item, LogLine)
            yield item

    async def endpoint_logs(
        self,
        endpoint_id: str,
        *,
        tail: int = TAIL_DEFAULT,
        since: str | None = None,
        source: str | None = None,
        follow: bool = True,
        idle: float = 2.0,
        refresh: float = 15.0,
        backlog_timeout: float = 15.0,
        worker_ids: Sequence[str] | None = None,
    ) -> AsyncIterator[LogLine]:
        """Tail every worker of an endpoint as one log (see the module docstring for the
        merge). ``worker_ids`` limits it to those workers (no discovery then)."""
        check_id(endpoint_id, "endpoint")
        _check_tail(tail, source)
        for w in worker_ids or ():
            check_id(w, "worker")
        if worker_ids is None:
            ids = [w.id for w in (await self.workers(endpoint_id)).workers]
        else:
            ids = list(dict.fromkeys(worker_ids))
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        tasks: dict[str, asyncio.Task[None]] = {}
        done_marker = object()

        async def pump(wid: str, wtail: int, wsince: str | None) -> None:
            try:
                async for item in self._tail(endpoint_id, wid, tail=wtail, since=wsince, source=source,
                                             follow=follow, last_event_id=None, idle=idle,
                                             deadline=None):  # fmt: skip
                    await queue.put((wid, item))
                    if item is _IDLE and not follow:
                        break
            except NotFound:
                pass  # gone between the list and the tail
            except RpdashError as exc:
                await queue.put((wid, exc))
            finally:
                await queue.put((wid, done_marker))

        def start(wid: str, wtail: int, wsince: str | None) -> None:
            running = sum(1 for t in tasks.values() if not t.done())
            if wid not in tasks and running < self.max_streams:
                tasks[wid] = asyncio.ensure_future(pump(wid, wtail, wsince))

        async def discover() -> None:
            while True:
                await self._clock.sleep(refresh)
                try:
                    current = await self.workers(endpoint_id)
                except RpdashError as exc:
                    if not exc.transient:
                        await queue.put(("", exc))
                        return
                    continue
                for w in current.workers:
                    start(w.id, TAIL_MAX, None)  # a new worker: from its first line

        for wid in ids:
            start(wid, tail, since)
        pending = set(tasks)
        settled: set[str] = set()
        ended: set[str] = set()
        backlog: list[LogLine] = []
        disco: asyncio.Task[None] | None = None
        timer: asyncio.Task[None] | None = None
        try:
            # backlog: until every stream went quiet or ended (or the timeout)
            if pending:
                timer = asyncio.ensure_future(self._clock.sleep(backlog_timeout))
            while pending - settled:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[arg-type]
                if not getter.done():
                    getter.cancel()
                    break
                wid, item = getter.result()
                if isinstance(item, RpdashError):
                    raise item
                if item is done_marker:
                    ended.add(wid)
                if item is _IDLE or item is done_marker:
                    settled.add(wid)
                elif isinstance(item, LogLine):
                    backlog.append(item)
            backlog.sort(key=log_order)
            if tail and len(backlog) > tail:
                backlog = backlog[-tail:]
            for line in backlog:
                yield line
            if not follow:
                return
            if worker_ids is None:
                disco = asyncio.ensure_future(discover())
            while True:
                wid, item = await queue.get()
                if isinstance(item, RpdashError):
                    raise item
                if isinstance(item, LogLine):
                    yield item
                elif item is done_marker:
                    ended.add(wid)
                    if worker_ids is not None and ended >= set(tasks):
                        return  # every named worker is gone, and no discovery
        finally:
            for t in (timer, disco, *tasks.values()):
                if t is not None and not t.done():
                    t.cancel()
            for t in (timer, disco, *tasks.values()):
                if t is not None:
                    try:
                        await t
                    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                        pass

    async def _tail(
        self,
        endpoint_id: str,
        worker_id: str,
        *,
        tail: int,
        since: str | None,
        source: str | None,
        follow: bool,
        last_event_id: str | None,
        idle: float | None,
        deadline: float | None,
    ) -> AsyncIterator[LogLine | _Idle]:
        """One worker's SSE tail with reconnects; yields lines and one ``_IDLE`` the first
        time the stream is quiet for ``idle`` s (the backlog is then out)."""
        url = f"{self._conn.rest_url}/serverless/{endpoint_id}/workers/{worker_id}/logs"
        last_id = last_event_id
        connected_once = False
        failures = 0
        retry_s = 1.0
        watch_idle = idle is not None
        while True:
            params: dict[str, Any] = {}
            headers: dict[str, str] = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if source:
                params["source"] = source
            if last_id:
                headers["Last-Event-ID"] = last_id
            else:
                params["tail"] = tail
                if since:
                    params["since"] = since
            try:
                resp = await self._open_stream(url, params, headers, endpoint_id, worker_id)
            except RpdashError as exc:
                if not connected_once:
                    raise
                if isinstance(exc, NotFound):
                    return  # the worker is gone
                failures += 1
                if not exc.transient or failures > max(self._conn.max_retries, 5):
                    raise
                await self._clock.sleep(backoff(failures, exc))
                continue
            connected_once = True
            events = sse_events(iter_lines(resp, MAX_LINE), max_data=MAX_EVENT)
            nxt: asyncio.Future[Event] | None = None
            dropped = False
            try:
                while True:
                    if nxt is None:
                        nxt = asyncio.ensure_future(events.__anext__())
                    if watch_idle or deadline is not None:
                        waits: set[asyncio.Future[Any]] = {nxt}
                        sleeper = None
                        if watch_idle:
                            assert idle is not None
                            sleeper = asyncio.ensure_future(self._clock.sleep(idle))
                            waits.add(sleeper)
                        if deadline is not None:
                            left = deadline - self._clock.now()
                            if left <= 0:
                                yield _IDLE
                                return
                            dl = asyncio.ensure_future(self._clock.sleep(left))
                            waits.add(dl)
                        else:
                            dl = None
                        try:
                            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                        finally:
                            for t in (sleeper, dl):
                                if t is not None and not t.done():
                                    t.cancel()
                        if not nxt.done():
                            watch_idle = False
                            yield _IDLE
                            if dl is not None and dl.done():
                                return
                            continue
                    try:
                        ev = await nxt
                    except StopAsyncIteration:
                        break
                    finally:
                        nxt = None
                    if ev.retry is not None:
                        retry_s = max(0.0, ev.retry / 1000)
                    if ev.id:
                        last_id = ev.id
                    if ev.data is None or (ev.event not in (None, "", "message", "log")):
                        continue
                    line = self._log_line(worker_id, ev)
                    if line is not None:
                        failures = 0
                        yield line
            except httpx.HTTPError:
                dropped = True
            except (BodyTooLarge, BodyUnreadable) as exc:
                raise BadResponse(f"RunPod's log stream of worker {worker_id} cannot be read: "
                                  f"{exc}") from None  # fmt: skip
            finally:
                if nxt is not None and not nxt.done():
                    nxt.cancel()
                    try:
                        await nxt
                    except (asyncio.CancelledError, StopAsyncIteration, Exception):  # noqa: BLE001
                        pass
                await events.aclose()
                await resp.aclose()
            if not follow and not dropped:
                if watch_idle:
                    yield _IDLE  # the server closed the stream: the backlog is complete
                return
            if not dropped and await self._worker_gone(endpoint_id, worker_id):
                return  # closed because the worker stopped: nothing more will come
            failures += 1 if dropped else 0
            await self._clock.sleep(retry_s if not dropped else backoff(failures, None))

    async def _worker_gone(self, endpoint_id: str, worker_id: str) -> bool:
        """After the server closed a log stream: is the worker still listed? (A worker that
        stopped keeps its old lines readable, so a reconnect alone would not tell.)"""
        try:
            wl = await self.workers(endpoint_id)
        except NotFound:
            return True
        except RpdashError:
            return False  # cannot tell: keep tailing
        return all(w.id != worker_id for w in wl.workers)

    def _log_line(self, worker_id: str, ev: Event) -> LogLine | None:
        try:
            data = loads(ev.data or "")
        except ValueError:
            data = {"line": ev.data, "source": "container"}
        if not isinstance(data, dict):
            data = {"line": json.dumps(data) if not isinstance(data, str) else data}
        return LogLine.build(worker_id, data, ev.id)

    async def _open_stream(self, url: str, params: dict[str, Any], headers: dict[str, str],
                           endpoint_id: str, worker_id: str) -> httpx.Response:  # fmt: skip
        """Open the event stream (its headers within the request timeout; the stream
        itself has no read timeout: a quiet log is not an error)."""
        req = self._conn.client().build_request("GET", url, params=params, headers=headers,
                                                timeout=httpx.Timeout(self._conn.timeout, read=None))  # fmt: skip
        resp, content = await self._conn.exchange(req, f"the log of worker {worker_id}", keep_open=True)
        if resp.status_code != 200:
            await resp.aclose()
            raise self._conn.http_error(resp.status_code, resp.headers, content,
                                        f"worker {worker_id} of endpoint {endpoint_id}")  # fmt: skip
        ctype = resp.headers.get("content-type", "")
        if "text/event-stream" not in ctype:
            await resp.aclose()
            raise BadResponse(
                f"RunPod's answer for the log of worker {worker_id} is not an event stream "
                f"({self._conn.inert(ctype or 'no content type', 40)})"
            )
        return resp


def _check_tail(tail: int, source: str | None) -> None:
    if isinstance(tail, bool) or not isinstance(tail, int) or not 0 <= tail <= TAIL_MAX:
        raise InvalidInput(f"tail must be a whole number from 0 to {TAIL_MAX}")
    if source not in (None, "container", "system"):
        raise InvalidInput('source must be "container" or "system"')

