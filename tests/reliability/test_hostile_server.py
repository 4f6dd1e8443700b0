"""The clients against a server that misbehaves on purpose (issue 17, and 14.11's 404s).

Each test runs a small HTTP/1.1 server of its own on 127.0.0.1 (a thread, raw sockets) that
answers exactly what the test writes: a 502 page echoing the request's headers (the API key
among them), a gzip bomb, a body trickled a byte at a time, JSON nested 100,000 deep, 404s
with misleading words. Both clients (data plane and control plane, log tail included) must
answer with the documented typed errors: the key never shown, memory and time bounded, no
``RecursionError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpdash.api.client import RunPodClient
from rpdash.api.control import ControlClient
from rpdash.core.clock import FakeClock, RealClock
from rpdash.core.errors import BadResponse, NotFound, RpdashError, ServerError, Timeout

#: shaped like a real key (44 characters), distinctive enough to find any piece of it
KEY = "rpa_" + "Q7xK2mZ9vT4bW8nR1cY6hJ3gF5dS0aLpE2uI9oKqHw"[:40]


class Quick(FakeClock):
    """Backoff returns at once (a retry is counted, not waited for)."""

    async def sleep(self, seconds: float) -> None:
        self.advance_sync(max(0.0, seconds))
        await asyncio.sleep(0)


Reply = Callable[[socket.socket, dict[str, Any]], None]


class Hostile:
    """One-thread-per-connection HTTP server on 127.0.0.1 answering with ``reply(sock,
    request)`` (``request``: method, path, headers as raw text, body). Counts requests."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            while not self._stop.is_set():
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                size = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        size = int(line.split(":", 1)[1])
                while len(body) < size:
                    body += conn.recv(65536)
                method, path, _ = lines[0].split(" ", 2)
                req = {"method": method, "path": path, "head": head.decode("latin-1"), "body": body}
                self.requests.append(req)
                self.reply(conn, req)

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def hostile() -> Iterator[Callable[[Reply], Hostile]]:
    servers: list[Hostile] = []

    def start(reply: Reply) -> Hostile:
        servers.append(Hostile(reply))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def answer(status: int, body: bytes, *, ctype: str = "application/json",
           extra: str = "") -> Reply:  # fmt: skip
    def reply(conn: socket.socket, req: dict[str, Any]) -> None:
        head = (f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                f"{extra}\r\n")  # fmt: skip
        conn.sendall(head.encode("latin-1") + body)

    return reply


def key_pieces(text: str, key: str = KEY, run: int = 8) -> list[str]:
    """Every run of ``run`` characters of the key that appears in ``text``."""
    return [key[i : i + run] for i in range(len(key) - run + 1) if key[i : i + run] in text]


def data_client(server: Hostile, **kw: Any) -> RunPodClient:
    kw.setdefault("max_retries", 0)
    return RunPodClient(KEY, f"{server.origin}/v2", rate_limits=False, clock=Quick(), **kw)


def control_client(server: Hostile, **kw: Any) -> ControlClient:
    kw.setdefault("max_retries", 0)
    kw.setdefault("clock", Quick())
    return ControlClient(KEY, server.origin, graphql_fallback=False, **kw)


# ------------------------------------------------------------------ 17.2 mask first, then cut


ECHO_PREFIX = "Authorization: Bearer "


def echo(status: int, pad: int) -> Reply:
    """Answer ``status`` with a text body that echoes the request's Authorization header
    after ``pad`` characters of filler (a proxy's error page showing the request), so that
    the key starts at character ``pad + len(ECHO_PREFIX)``."""

    def reply(conn: socket.socket, req: dict[str, Any]) -> None:
        auth = next(ln for ln in req["head"].split("\r\n") if ln.lower().startswith("authorization:"))
        text = ("." * pad + ECHO_PREFIX + auth.split("Bearer ", 1)[1] + " Host: x User-Agent: y").encode()
        head = f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {len(text)}\r\n\r\n"
        conn.sendall(head.encode() + text)

    return reply


@pytest.mark.parametrize("cut", [200, 120, 100])
@pytest.mark.parametrize("into", [1, 8, 22, 43])
async def test_a_key_echoed_across_any_cut_is_masked(hostile, cut, into):
    """The key straddles the cut of a 502's text (200), of a 200 garbage excerpt (120 data
    plane, 100 control plane): ``into`` of its characters fall before the cut."""
    pad = cut - 1 - into - len(ECHO_PREFIX)
    messages = []
    for status in (502, 200):
        srv = hostile(echo(status, pad))
        async with data_client(srv) as c:
            with pytest.raises(RpdashError) as err:
                await c.health("ep")
            messages.append(str(err.value))
        async with control_client(srv) as cc:
            with pytest.raises(RpdashError) as err:
                await cc.workers("ep")
            messages.append(str(err.value))
            with pytest.raises(RpdashError) as err:
                await cc.worker_logs("ep", "w1", follow=False).__anext__()
            messages.append(str(err.value))
    for msg in messages:
        assert key_pieces(msg) == [], msg
    assert any("..." in m for m in messages)  # the echoed text was quoted, masked


async def test_a_key_in_a_log_streams_content_type_is_masked(hostile):
    for pad in range(0, 40, 3):
        srv = hostile(answer(200, b"", ctype=f"text/plain; x={'y' * pad}{KEY}"))
        async with control_client(srv) as cc:
            with pytest.raises(BadResponse) as err:
                await cc.worker_logs("ep", "w1", follow=False).__anext__()
        assert "not an event stream" in str(err.value)
        assert key_pieces(str(err.value)) == [], (pad, str(err.value))


# ------------------------------------------------------------------ 17.6 size and time


def gzip_bomb(size: int) -> bytes:
    """``size`` bytes of zeros, gzip-compressed (about a thousandth of that)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [comp.compress(block) for _ in range(size >> 20)]
    return b"".join(parts) + comp.flush()


async def test_a_gzip_bomb_is_refused_with_memory_bounded(hostile):
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KB
    assert len(bomb) < 1 << 20
    srv = hostile(answer(200, bomb, extra="Content-Encoding: gzip\r\n"))
    tracemalloc.start()
    try:
        async with data_client(srv) as c:
            with pytest.raises(BadResponse) as err:
                await c.status("ep", "job-1")
        async with control_client(srv) as cc:
            with pytest.raises(BadResponse) as err2:
                await cc.workers("ep")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too large" in str(err.value) and "/status on endpoint ep" in str(err.value)
    assert "too large" in str(err2.value)
    assert peak < 80 << 20, f"peak {peak >> 20} MiB while reading a 256 MiB bomb"


async def test_a_log_stream_bomb_or_endless_line_is_refused_with_memory_bounded(hostile):
    """The log tail reads its stream in bounded steps too: a gzip bomb without a line end,
    and a plain line that never ends, are refused, not held in memory."""
    bomb = gzip_bomb(256 << 20)
    endless = b"data: " + b"x" * (12 << 20)
    tracemalloc.start()
    try:
        for body, extra in ((bomb, "Content-Encoding: gzip\r\n"), (endless, "")):
            srv = hostile(answer(200, body, ctype="text/event-stream", extra=extra))
            async with control_client(srv, clock=RealClock()) as cc:
                with pytest.raises(BadResponse) as err:
                    [ln async for ln in cc.worker_logs("ep", "w1", follow=False, idle=60)]
            assert "log stream of worker w1 cannot be read" in str(err.value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 80 << 20, f"peak {peak >> 20} MiB"


async def test_an_answer_in_an_encoding_not_asked_for_is_refused(hostile):
    srv = hostile(answer(200, b"\x00" * 64, extra="Content-Encoding: br\r\n"))
    async with data_client(srv) as c:
        with pytest.raises(BadResponse, match="cannot be read"):
            await c.health("ep")
    assert "accept-encoding: gzip, deflate\r\n" in srv.requests[0]["head"].lower()


async def test_gzip_answers_still_read(hostile):
    body = b'{"jobs": {"inQueue": 3}, "workers": {"idle": 1}}'
    srv = hostile(answer(200, gzip.compress(body), extra="Content-Encoding: gzip\r\n"))
    async with data_client(srv) as c:
        h = await c.health("ep")
    assert h.jobs.inQueue == 3 and h.workers.idle == 1


def trickle(conn: socket.socket, req: dict[str, Any]) -> None:
    """Headers at once, then one byte of the body every 0.3 s, for ever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(1000):
        time.sleep(0.3)
        conn.sendall(b" ")


async def test_a_trickling_answer_ends_at_the_request_deadline(hostile):
    srv = hostile(trickle)
    for make, call, what in (
        (data_client, lambda c: c.status("ep", "job-1"), "/status on endpoint ep"),
        (control_client, lambda c: c.workers("ep"), "the workers of endpoint ep"),
    ):
        t0 = time.monotonic()
        async with make(srv, timeout=1.0) as c:
            with pytest.raises(Timeout) as err:
                await asyncio.wait_for(call(c), 15)
        took = time.monotonic() - t0
        assert took < 4, f"{took:.1f} s for a 1 s deadline"
        assert what in str(err.value) and "1 s" in str(err.value)


# ------------------------------------------------------------------ 17.8 deeply nested JSON

DEEP = b"[" * 100_000


async def test_deeply_nested_json_is_a_bad_response_and_a_5xx_stays_retryable(hostile):
    ok = hostile(answer(200, DEEP))
    async with data_client(ok) as c:
        with pytest.raises(BadResponse, match="not JSON"):
            await c.status("ep", "job-1")
    async with control_client(ok) as cc:
        with pytest.raises(BadResponse, match="not JSON"):
            await cc.workers("ep")
    bad = hostile(answer(503, DEEP))
    async with data_client(bad, max_retries=2) as c:
        with pytest.raises(ServerError):
            await c.status("ep", "job-1")
    assert len(bad.requests) == 3  # retried like any 5xx
    async with control_client(bad, max_retries=1) as cc:
        with pytest.raises(ServerError):
            await cc.workers("ep")
    assert len(bad.requests) == 5


async def test_deeply_nested_log_lines_are_shown_as_text(hostile):
    deep_line = '{"message": ' + "[" * 50_000 + "}"
    events = (f"id: 1\ndata: {'[' * 100_000}\n\n"
              f"id: 2\ndata: {{\"line\": {json.dumps(deep_line)}, \"source\": \"container\"}}\n\n").encode()  # fmt: skip
    srv = hostile(answer(200, events, ctype="text/event-stream"))
    async with control_client(srv, clock=RealClock()) as cc:  # idle waits must be real
        lines = [ln async for ln in cc.worker_logs("ep", "w1", follow=False, idle=60)]
    assert [ln.event_id for ln in lines] == ["1", "2"]
    assert lines[0].line == "[" * 100_000 and lines[1].line == deep_line


# ------------------------------------------------------------------ 14.11 honest 404


def routes(table: dict[str, tuple[int, bytes]]) -> Reply:
    def reply(conn: socket.socket, req: dict[str, Any]) -> None:
        for prefix, (status, body) in table.items():
            if req["path"].startswith(prefix):
                break
        else:
            status, body = 500, b"{}"
        answer(status, body)(conn, req)

    return reply


@pytest.mark.parametrize("health", [200, 404, 500])
async def test_a_job_404_is_undecided_and_health_decides(hostile, health):
    srv = hostile(routes({
        "/v2/ep/status/": (404, b'{"error": "endpoint not found"}'),  # wording that misleads
        "/v2/ep/health": (health, b'{"jobs": {}, "workers": {}}'),
    }))  # fmt: skip
    async with data_client(srv) as c:
        with pytest.raises(NotFound) as err:
            await c.status("ep", "job-1")
        which = await c.which_not_found("ep")
    assert err.value.ambiguous and err.value.job_id == "job-1"
    assert "the job expired or never existed, or the endpoint is unknown" in str(err.value)
    assert which == {200: "job", 404: "endpoint", 500: "unknown"}[health]
