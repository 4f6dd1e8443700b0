"""Stream follower: the single reader of one job's ``/stream``.

``/stream`` *drains*: each call hands out only the chunks not handed out before, so a second
reader would steal chunks from the first (runpod-api.md 6.5). rpdash therefore runs exactly
one follower per streaming job, stores every chunk it reads (numbered: ``seq`` 0, 1, 2… per
job, so a restarted rpdash continues the count where the history ends), and lets the UI read
the history rather than the API.

Why it is built this way:

- **Coalesced output.** Chunks are buffered and handed on in batches: one ``StreamEvent``
  and one store write at most every ``flush_every`` (50 ms) while chunks flow, flushed by a
  timer on the injected clock when the flow pauses, and at the end. A token-per-event UI
  would be quadratic; this keeps 200,000 chunks cheap (``bench/stream_follower_bench.py``).
- **The hot loop is tiny**: per chunk a type check, one list append and one clock read.
  Everything else happens per batch.
- **A dropped stream is resumed.** When the client gives up (it already retries transient
  failures itself), the follower says "stream dropped, resuming" in a ``StreamEvent`` and
  reads again after a backoff. Because the server drains, the new reader starts exactly after
  the last chunk handed out: nothing twice, nothing skipped (a batch lost *inside* a dropped
  HTTP response is the server's to redeliver; the store ignores a re-sent seq).
- **The tail.** Chunks can come in the same reply as the terminal status, or after it
  (runpod-api.md 6.5), and a reader that stops at the first terminal status loses those. So
  after the client's stream ends the follower keeps reading ``/stream`` (one batch at a
  time, holding at most ``TAIL_WAIT_MS``) until a reply with a terminal status brings an
  empty batch: the runpod-python rule. Because ``/stream`` drains, nothing comes twice. A
  chunk the platform split (over 1 MB) arrives as several chunks; how a split is marked is
  not documented, so each is stored and shown as it came, once, in order.
- **A 404** past the first seconds cannot tell an expired job from an unknown endpoint
  (RunPod's 404 bodies are undocumented): the follower asks ``/health`` through the check it
  shares with the tracker (``NotFoundCheck``, once per endpoint per 30 s). The job expired:
  the record says so. The endpoint is unknown: one problem, the job is not marked expired and
  the follower ends (the tracker, handed the job, stops checking it). ``/health`` failed
  too: the follower reads again after a backoff.
- **The end** (``StreamEnd``, the job as ``/status`` had it) updates the record with the final
  output or error, then emits ``JobsEvent`` + ``JobFinished`` + ``StreamEvent(done=True)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from rpdash.api.protocol import RunPodAPI, StreamEnd
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import AuthError, InvalidInput, NotFound, RateLimited, RpdashError
from rpdash.core.models import Job, JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.events import Sink, StreamEvent
from rpdash.services.health import safe_emit
from rpdash.services.tracking import EXPIRED_MESSAGE, JobBook
from rpdash.services.tracking.notfound import NotFoundCheck, endpoint_gone_message, is_ambiguous

log = logging.getLogger("rpdash.services.streams")

DROPPED_MESSAGE = "stream dropped, resuming"
#: the hold of a tail read: short, a finished job's stream has nothing left to wait for
TAIL_WAIT_MS = 1_000
#: tail reads that failed before the follower gives up on the tail (and says so)
TAIL_TRIES = 3


class StreamFollower:
    """Reads one job's stream to its end, storing and emitting coalesced chunks."""

    def __init__(
        self,
        client: RunPodAPI,
        store: Any,
        sink: Sink,
        clock: Clock | None = None,
        job: JobRecord | None = None,
        *,
        book: JobBook | None = None,
        flush_every: float = 0.05,
        wait_ms: int | None = None,
        not_found_grace: float = 5.0,
        max_backoff: float = 30.0,
        on_done: Callable[[StreamFollower], None] | None = None,
        not_found: NotFoundCheck | None = None,
    ) -> None:
        if job is None:
            raise ValueError("StreamFollower needs the job record")
        self.client = client
        self.sink = sink
        self.clock: Clock = clock or RealClock()
        self.book = book if book is not None else JobBook(store, sink, self.clock)
        if job.job_id not in self.book.records:
            self.book.add(job, emit=False)
        self.job_id = job.job_id
        self.endpoint_id = job.endpoint_id
        self.flush_every = flush_every
        self.wait_ms = wait_ms
        self.not_found_grace = not_found_grace
        self.max_backoff = max_backoff
        self.on_done = on_done
        #: tells an expired job from an unknown endpoint (shared with the tracker per client)
        self.not_found = not_found or NotFoundCheck.shared(client, self.clock)

        self.seq = 0  # seq of the next chunk
        self.received = 0  # chunks read by this follower
        self.drops = 0
        self.done = False
        self.final: JobRecord | None = None
        self._buf: list[Any] = []
        self._unsaved: list[tuple[int, list[Any]]] = []
        self._last_flush = 0.0
        self._buf_since = 0.0  # when the first chunk of the current batch arrived
        self._arm = asyncio.Event()
        self._paused = False
        self._running = asyncio.Event()
        self._running.set()
        self._started_at = self.clock.now()
        self._task: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"stream:{self.job_id}")
        return self._task

    async def stop(self) -> None:
        tasks = [t for t in (self._task, self._flusher) if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Stop reading after the current chunk. Nothing is lost: the server keeps what
        nobody has read yet."""
        self._paused = True
        self._running.clear()

    def resume(self) -> None:
        self._paused = False
        self._running.set()

    def pending(self) -> list[Any]:
        """Chunks read but not yet handed on (or not yet stored), in order."""
        out: list[Any] = []
        for _, outs in self._unsaved:
            out.extend(outs)
        out.extend(self._buf)
        return out

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        self.seq = self._initial_seq()
        self._last_flush = self.clock.now()
        self._flusher = asyncio.create_task(self._flush_timer(), name=f"flush:{self.job_id}")
        fails = 0
        try:
            while True:
                try:
                    end = await self._read()
                except asyncio.CancelledError:
                    raise
                except NotFound as e:
                    self._flush()
                    if self.clock.now() - self._started_at < self.not_found_grace:
                        await self.clock.sleep(1.0)  # just submitted: not visible yet
                        continue
                    what = "job"
                    if is_ambiguous(e):  # the job, or its endpoint? /health tells
                        what = await self.not_found.which(self.endpoint_id)
                    if what == "job":
                        self._expired()
                        return
                    if what == "endpoint":
                        msg = endpoint_gone_message(self.endpoint_id)
                        self.book.problem(msg, key=f"gone:{self.endpoint_id}", severity="error",
                                          endpoint_id=self.endpoint_id)  # fmt: skip
                        self._finish_without_end(msg)
                        return
                    fails += 1  # /health failed too: the job stays live, read again later
                    await self.clock.sleep(self._backoff(e, fails))
                    continue
                except InvalidInput as e:
                    self._flush()
                    self.book.problem(str(e), key=f"stream-bad:{self.job_id}")
                    self._finish_without_end(str(e))
                    return
                except Exception as e:  # noqa: BLE001 - dropped: resume
                    self._flush()
                    fails += 1
                    self.drops += 1
                    wait = self._backoff(e, fails)
                    msg = f"{DROPPED_MESSAGE} ({_one_line(e)})"
                    safe_emit(self.sink, StreamEvent(self.job_id, self.seq, [], message=msg))
                    if isinstance(e, AuthError) or not isinstance(e, RpdashError):
                        self.book.problem(_one_line(e), key=f"stream:{self.endpoint_id}")
                    await self.clock.sleep(wait)
                    continue
                if end is None:  # the reader stopped without an end: read again
                    fails += 1
                    self.drops += 1
                    safe_emit(
                        self.sink, StreamEvent(self.job_id, self.seq, [], message=DROPPED_MESSAGE)
                    )
                    await self.clock.sleep(self._backoff(None, fails))
                    continue
                await self._tail()
                await self._end(end.job)
                return
        finally:
            if self._flusher is not None and not self._flusher.done():
                self._flusher.cancel()
                await asyncio.gather(self._flusher, return_exceptions=True)
            if self._buf or self._unsaved:
                self._flush()
            if self.on_done is not None and self.done:  # not when cancelled
                try:
                    self.on_done(self)
                except Exception:  # noqa: BLE001
                    log.exception("on_done hook failed")

    async def _read(self) -> StreamEnd | None:
        """Drain the stream until its end; the hot loop."""
        buf = self._buf
        now = self.clock.now
        every = self.flush_every
        first = self.received == 0
        async for item in self.client.stream(self.endpoint_id, self.job_id, wait_ms=self.wait_ms):
            if self._paused:
                self._flush()
                await self._running.wait()
            if isinstance(item, StreamEnd):
                return item
            if not buf:  # a new batch: it goes out ``every`` from now at the latest
                self._buf_since = now()
                self._arm.set()
            buf.append(item.output)
            self.received += 1
            if first:
                first = False
                self._first_chunk()
            if now() - self._buf_since >= every:
                self._flush()
        return None

    async def _tail(self) -> None:
        """Read what comes with or after the terminal status, until a terminal reply with an
        empty batch (see the module docstring)."""
        fails = 0
        while True:
            try:
                batch = await self.client.stream_once(
                    self.endpoint_id, self.job_id, wait_ms=TAIL_WAIT_MS
                )
            except asyncio.CancelledError:
                raise
            except (NotImplementedError, NotFound, InvalidInput):
                return  # a client that reads no single batch, or a job gone: no tail
            except Exception as e:  # noqa: BLE001
                fails += 1
                if fails >= TAIL_TRIES:
                    self.book.problem(
                        f"end of the stream not read: {_one_line(e)}",
                        key=f"stream-tail:{self.endpoint_id}",
                    )
                    return
                await self.clock.sleep(self._backoff(e, fails))
                continue
            fails = 0
            if not batch.stream:
                return  # terminal and empty (or queued again by a retry: the end decides)
            if not self._buf:
                self._buf_since = self.clock.now()
            self._buf.extend(c.output for c in batch.stream)
            self.received += len(batch.stream)
            self._flush()

    async def _flush_timer(self) -> None:
        """Flush a batch ``flush_every`` after its first chunk when the flow pauses (the
        reader flushes by itself while chunks keep coming)."""
        while True:
            await self._arm.wait()
            self._arm.clear()
            while self._buf:
                delay = self._buf_since + self.flush_every - self.clock.now()
                if delay > 0:
                    await self.clock.sleep(delay)
                    continue  # the reader may have flushed and begun a new batch meanwhile
                self._flush()

    def _flush(self) -> None:
        """Store and emit the buffered chunks (one write, one event)."""
        self._last_flush = self.clock.now()
        if self._unsaved:
            self._retry_unsaved()
        if not self._buf:
            return
        outs = self._buf[:]  # the list object stays: the reader holds a reference to it
        self._buf.clear()
        seq = self.seq
        self.seq += len(outs)
        if not self.book.store_call("append_chunks", self.job_id, seq, outs):
            self._unsaved.append((seq, outs))
        rec = self.book.records.get(self.job_id)
        if rec is not None and rec.chunk_count < self.seq:
            # the store counts chunks itself; keep the in-memory record in step quietly
            self.book.records[self.job_id] = rec.copy(chunk_count=self.seq)
        safe_emit(self.sink, StreamEvent(self.job_id, seq, outs))

    def _retry_unsaved(self) -> None:
        still: list[tuple[int, list[Any]]] = []
        for seq, outs in self._unsaved:
            if still or not self.book.store_call("append_chunks", self.job_id, seq, outs):
                still.append((seq, outs))
        self._unsaved = still

    def _initial_seq(self) -> int:
        """Where the numbering continues: after what the history already holds."""
        rec = self.book.records.get(self.job_id)
        start = rec.chunk_count if rec is not None else 0
        more = self.book.store_read("chunks", self.job_id, start, default=[]) or []
        return start + len(more)

    def _first_chunk(self) -> None:
        rec = self.book.records.get(self.job_id)
        if rec is not None and rec.status in (JobStatus.IN_QUEUE, JobStatus.UNKNOWN):
            self.book.change(self.job_id, status=JobStatus.IN_PROGRESS)

    def _backoff(self, e: BaseException | None, fails: int) -> float:
        if isinstance(e, RateLimited) and e.retry_after is not None:
            return min(self.max_backoff * 2, max(0.0, e.retry_after))
        if isinstance(e, AuthError):
            return self.max_backoff
        return min(self.max_backoff, 0.5 * 2 ** (fails - 1))

    # ------------------------------------------------------------------ end

    async def _end(self, job: Job) -> None:
        self._flush()
        self.book.apply(self.job_id, job)
        rec = self.book.records.get(self.job_id)
        if rec is not None and rec.chunk_count < self.seq:
            self.book.records[self.job_id] = rec.copy(chunk_count=self.seq)
        self.final = self.book.records.get(self.job_id)
        self.book.flush()  # JobsEvent + JobFinished before the done marker
        self.done = True  # if the final record is somehow not terminal, on_done hands over
        safe_emit(self.sink, StreamEvent(self.job_id, self.seq, [], done=True))

    def _expired(self) -> None:
        rec = self.book.records.get(self.job_id)
        if rec is not None and not rec.terminal:
            self.book.change(
                self.job_id,
                expired=True,
                error=rec.error or EXPIRED_MESSAGE,
                finished_at=self.clock.time(),
            )
        self.final = self.book.records.get(self.job_id)
        self.book.flush()
        self.done = True
        safe_emit(self.sink, StreamEvent(self.job_id, self.seq, [], done=True))

    def _finish_without_end(self, message: str) -> None:
        self.final = self.book.records.get(self.job_id)
        self.done = True
        safe_emit(self.sink, StreamEvent(self.job_id, self.seq, [], done=True, message=message))


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
