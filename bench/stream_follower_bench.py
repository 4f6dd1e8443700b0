"""How fast can one StreamFollower take chunks? (target: 200,000 chunks at >= 50,000/s)

A fake client yields pre-built chunks as fast as the follower pulls them (no network), in
batches like /stream hands them out, so what is measured is the follower itself: the hot
loop, the coalescing, one StreamEvent per 50 ms, and the history writes (a real
HistoryStore on a temporary file, WAL, as the dashboard uses it; ``--memory`` for an
in-memory store, ``--no-store`` for none).

    .venv/bin/python bench/stream_follower_bench.py [--chunks 200000] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rpdash.api.protocol import StreamEnd  # noqa: E402
from rpdash.core.clock import RealClock  # noqa: E402
from rpdash.core.models import Job, StreamChunk  # noqa: E402
from rpdash.core.records import JobRecord  # noqa: E402
from rpdash.services.events import StreamEvent  # noqa: E402
from rpdash.services.streams import StreamFollower  # noqa: E402


class InstantStream:
    """Yields ``n`` chunks in batches of ``batch``, yielding to the loop between batches
    (as the real client does between two /stream answers), then the end."""

    base_url = "http://bench.invalid/v2"

    def __init__(self, n: int, batch: int) -> None:
        self.chunks = [StreamChunk(output=f"tok{i} ") for i in range(n)]
        self.batch = batch

    async def stream(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None):
        chunks, b = self.chunks, self.batch
        for i in range(0, len(chunks), b):
            for c in chunks[i : i + b]:
                yield c
            await asyncio.sleep(0)
        yield StreamEnd(Job(id=job_id, status="COMPLETED", output=None, executionTime=1))


class CountingSink:
    def __init__(self) -> None:
        self.events = 0
        self.outputs = 0
        self.done = False

    def __call__(self, ev: object) -> None:
        if isinstance(ev, StreamEvent):
            self.events += 1
            self.outputs += len(ev.outputs)
            self.done = self.done or ev.done


async def run(n: int, batch: int, store_kind: str) -> dict[str, float]:
    client = InstantStream(n, batch)
    sink = CountingSink()
    tmp = tempfile.TemporaryDirectory()
    store = None
    if store_kind != "none":
        from rpdash.store.history import HistoryStore

        path = None if store_kind == "memory" else Path(tmp.name) / "history.sqlite3"
        store = HistoryStore(path)
    rec = JobRecord("bench-job", "bench", mode="stream", submitted_at=time.time())
    if store is not None:
        store.record_submitted(rec)
    f = StreamFollower(client, store, sink, RealClock(), rec)
    t0 = time.perf_counter()
    await f.start()
    dt = time.perf_counter() - t0
    stored = len(store.chunks("bench-job")) if store is not None else n
    if store is not None:
        store.close()
    tmp.cleanup()
    assert sink.outputs == n and sink.done and stored == n, (sink.outputs, stored)
    return {"seconds": dt, "rate": n / dt, "events": sink.events}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--memory", action="store_true")
    g.add_argument("--no-store", action="store_true")
    a = ap.parse_args()
    kind = "memory" if a.memory else "none" if a.no_store else "file"
    best = None
    for _ in range(a.repeat):
        r = asyncio.run(run(a.chunks, a.batch, kind))
        print(
            f"{a.chunks} chunks (batches of {a.batch}, store={kind}): {r['seconds']:.3f} s, "
            f"{r['rate']:,.0f} chunks/s, {r['events']} StreamEvents"
        )
        best = r if best is None or r["rate"] > best["rate"] else best
    assert best is not None
    ok = "OK" if best["rate"] >= 50_000 else "BELOW TARGET"
    print(f"best: {best['rate']:,.0f} chunks/s (target 50,000/s): {ok}")


if __name__ == "__main__":
    main()
