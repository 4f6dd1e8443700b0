"""Worker logs of the simulated control plane: REST v2
``GET /v2/serverless/{id}/workers/{workerId}/logs`` as Server-Sent Events (runpod-api.md
10.1). The choices are listed in control.py's docstring. Mixed into
:class:`~rpdash.sim.control.ControlPlane`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from rpdash.sim.engine import Engine, SimEndpoint
from rpdash.sim.http import _dumps, _until_disconnect

TAIL_DEFAULT = 100
TAIL_MAX = 5000


def rfc3339(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (``2026-08-01T12:00:00.123Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> float:
    """RFC 3339 text to epoch seconds; ValueError when it is not a date-time with an offset."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        raise ValueError("no time zone offset")
    return dt.timestamp()


def log_cursor(entry: dict[str, Any]) -> str:
    """REST v2's event id: the line's time and a sequence number
    (``2026-06-01T12:05:04Z/000000000042``)."""
    ts = datetime.fromtimestamp(entry["ts"], UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"{ts}/{entry['seq']:012d}"


def parse_event_id(raw: str) -> tuple[int | None, float | None]:
    """A ``Last-Event-ID``: a cursor or a bare sequence number gives (seq, None); a bare
    RFC 3339 date-time (the spec types it so) gives (None, time). ValueError otherwise."""
    if "/" in raw:
        return int(raw.rsplit("/", 1)[1]), None
    if raw.isdigit():
        return int(raw), None
    return None, parse_rfc3339(raw)


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or []


class WorkerLogs:
    """Selecting a worker's log backlog and streaming new lines."""

    engine: Engine
    drop_logs_after: int | None
    log_streams_opened: int
    log_event_ids: str

    @staticmethod
    def sse_event(entry: dict[str, Any], cursor: bool = False) -> bytes:
        """One log line as an SSE event; ``id`` is the engine's log sequence number, or with
        ``cursor`` REST v2's form ``<RFC 3339 time>/<12-digit sequence>``."""
        level = str(entry.get("level", "info")).upper()
        if level == "WARNING":
            level = "WARN"
        if entry.get("source") == "container" and entry.get("jobId"):
            line = json.dumps({"requestId": entry.get("jobId"), "message": entry["message"],
                               "level": level})  # fmt: skip
        elif entry.get("source") == "container":
            line = entry["message"]  # printed by the worker process itself (plain print)
        else:
            line = f"{level} {entry['message']}"
        data = _dumps({"source": entry.get("source", "system"), "line": line, "ts": rfc3339(entry["ts"])})
        if cursor:
            return b"id: %s\ndata: %s\n\n" % (log_cursor(entry).encode(), data)
        return b"id: %d\ndata: %s\n\n" % (entry["seq"], data)

    def _select(self, scope: dict[str, Any], ep: SimEndpoint,
                worker_id: str) -> tuple[list[dict[str, Any]], str | None, int]:  # fmt: skip
        """The backlog to send, the source filter, and the newest line's seq now (lines
        after it are live)."""
        q = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        source = q.get("source", [None])[-1]
        if source is not None and source not in ("container", "system"):
            raise _Problem(400, "Bad Request", 'source must be "container" or "system"')
        last_id: int | None = None
        for name, value in scope["headers"]:
            if name == b"last-event-id" and value.strip():
                raw = value.decode("latin-1").strip()
                break
        else:
            raw = q.get("lastEventId", [""])[-1].strip()
        after_ts: float | None = None
        if raw:
            try:
                last_id, after_ts = parse_event_id(raw)
            except ValueError:
                raise _Problem(400, "Bad Request", "Last-Event-ID is not an event id of this stream") from None
        w = ep.workers.get(worker_id)
        lines = list(w.logs) if w is not None else [e for e in ep.logs if e["workerId"] == worker_id]
        if w is None and not lines:
            raise _Problem(404, "Not Found", f"worker {worker_id} not found")
        horizon = lines[-1]["seq"] if lines else 0
        if source is not None:
            lines = [e for e in lines if e.get("source") == source]
        if last_id is not None:
            return [e for e in lines if e["seq"] > last_id], source, horizon
        if after_ts is not None:
            return [e for e in lines if e["ts"] > after_ts], source, horizon
        since = q.get("since", [None])[-1]
        if since is not None:
            try:
                t = parse_rfc3339(since)
            except ValueError:
                raise _Problem(400, "Bad Request", "since must be an RFC 3339 date-time") from None
            return [e for e in lines if e["ts"] >= t], source, horizon  # tail is ignored
        raw_tail = q.get("tail", [str(TAIL_DEFAULT)])[-1]
        try:
            tail = int(raw_tail)
        except ValueError:
            tail = -1
        if not 0 <= tail <= TAIL_MAX:
            raise _Problem(400, "Bad Request", f"tail must be an integer from 0 to {TAIL_MAX}")
        return (lines[-tail:] if tail else []), source, horizon

    async def _logs(self, scope: dict[str, Any], receive: Any, send: Any, ep_id: str,
                    worker_id: str, drop: bool) -> None:  # fmt: skip
        engine = self.engine
        ep = engine.endpoint(ep_id)
        backlog, source, last_seq = self._select(scope, ep, worker_id)
        limit = self.drop_logs_after
        if drop:
            limit = len(backlog) // 2
        self.log_streams_opened += 1
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
        ]})  # fmt: skip
        sent = 0
        disc: asyncio.Future[Any] | None = None
        try:
            pending = backlog
            while True:
                out = []
                for e in pending:
                    if limit is not None and sent >= limit:
                        break
                    out.append(self.sse_event(e, self.log_event_ids == "cursor"))
                    sent += 1
                    last_seq = max(last_seq, e["seq"])
                if out:
                    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
                if limit is not None and sent >= limit:
                    break
                w = ep.workers.get(worker_id)
                if w is None or w.removed or engine._eps.get(ep_id) is not ep:
                    break  # the worker (or endpoint) is gone: nothing more will come
                if disc is None:
                    disc = asyncio.ensure_future(_until_disconnect(receive))
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                ep.log_waiters.append(fut)
                try:
                    await asyncio.wait((fut, disc), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not fut.done():
                        fut.cancel()
                        try:
                            ep.log_waiters.remove(fut)
                        except ValueError:
                            pass
                if disc.done():
                    return  # the client left
                if engine._closed:
                    break
                w = ep.workers.get(worker_id)
                src = list(w.logs) if w is not None else [e for e in ep.logs if e["workerId"] == worker_id]
                pending = [e for e in src if e["seq"] > last_seq and (source is None or e.get("source") == source)]
        finally:
            if disc is not None and not disc.done():
                disc.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
