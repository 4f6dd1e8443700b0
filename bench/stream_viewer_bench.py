"""Stream viewer at full speed (issue 5, goal 1): follower + output viewer, headless.

200,000 LLM-style chunks (word tokens with their spaces, about one in 12 ending a line)
go through the real pipeline of the dashboard, inside a Textual app run headless with
``App.run_test`` (120 x 40):

    fake /stream (batches of 100, as one /stream answer)
      -> rpdash.services.streams.StreamFollower (coalesces, one StreamEvent per 50 ms,
         writes every chunk to a real HistoryStore file)
      -> rpdash.tui.messages.EventPump (the app's sink; one StreamArrived message in flight)
      -> OutputViewer.feed (rpdash/tui/widgets/output.py) -> one flush per 50 ms timer
      -> StreamLog (a Log capped at MAX_LINES) -> the compositor repaints

Frames are also turned into terminal escape sequences (thrown away), which a headless
run otherwise skips (bench/_common.py), for the viewer and the anchor alike.

Measured: chunks/s from the first chunk read to the last chunk written into the log;
the cost of every frame (the viewer's flush + the screen's repaint, timed by wrapping
``OutputViewer.flush`` and ``Screen._on_timer_update``), compared between the first and
the last 20 % of frames (it must not grow with what was already shown), in a second run
paced at ``--paced-rate`` (50,000 chunks/s) so that there are enough frames; the lines
kept on screen (bounded by MAX_LINES; the store's copy of every chunk is checked too).

Anchor, same run, same tokens: every chunk written straight into a Textual ``Log`` as it
arrives (``log.write(chunk)``, yielding to the event loop after each chunk so the screen
refreshes as it would), at 8,000 chunks (``--anchor-chunks``).

    .venv/bin/python bench/stream_viewer_bench.py [--chunks 200000] [--anchor-chunks 8000]
                                                  [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timed, honest_headless  # noqa: E402

from textual.app import App, ComposeResult  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Log  # noqa: E402

from rpdash.api.protocol import StreamEnd  # noqa: E402
from rpdash.core.clock import RealClock  # noqa: E402
from rpdash.core.models import Job, StreamChunk  # noqa: E402
from rpdash.core.records import JobRecord  # noqa: E402
from rpdash.services.streams import StreamFollower  # noqa: E402
from rpdash.store.history import HistoryStore  # noqa: E402
from rpdash.tui.messages import EventPump, StreamArrived  # noqa: E402
from rpdash.tui.widgets.output import MAX_LINES, OutputViewer  # noqa: E402

SIZE = (120, 40)
WORDS = (
    "the of and to in a is that for it as was with be by on not he I this are or his from "
    "at which but have an they you were her she there been one all we their has would when "
    "model token stream output latency worker endpoint GPU inference request answer quick"
).split()


def tokens(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = rng.choice(WORDS)
        r = rng.random()
        out.append(w + ("\n" if r < 0.08 else ".\n\n" if r < 0.085 else " "))
    return out


class FakeStream:
    """Yields pre-built chunks in batches of ``batch`` (one /stream answer each), yielding
    to the event loop between batches as the real client does between two answers."""

    base_url = "http://bench.invalid/v2"

    def __init__(self, toks: list[str], batch: int, rate: float | None = None) -> None:
        self.chunks = [StreamChunk(output=t) for t in toks]
        self.batch = batch
        self.rate = rate  # None: as fast as the follower pulls; else chunks per second
        self.first_read: float | None = None

    async def stream(self, endpoint_id: str, job_id: str, *, wait_ms: int | None = None):
        chunks, b, rate = self.chunks, self.batch, self.rate
        self.first_read = t0 = time.perf_counter()
        for i in range(0, len(chunks), b):
            for c in chunks[i: i + b]:
                yield c
            if rate is None:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(max(0.0, t0 + (i + b) / rate - time.perf_counter()))
        yield StreamEnd(Job(id=job_id, status="COMPLETED", output=None, executionTime=1))


class ViewerApp(App[None]):
    """The output pane alone, fed the way DashboardScreen.on_streams feeds it."""

    CSS = "OutputViewer { height: 1fr; } #out-stream { height: 1fr; }"

    def compose(self) -> ComposeResult:
        yield OutputViewer(wall=time.time, id="output")

    def on_stream_arrived(self, msg: StreamArrived) -> None:
        viewer = self.query_one(OutputViewer)
        for ev in self.pump.take_streams():  # type: ignore[attr-defined]
            viewer.feed(ev.job_id, ev.seq, ev.outputs, done=ev.done, message=ev.message)


async def run_viewer(n: int, batch: int = 100, rate: float | None = None) -> dict[str, Any]:
    toks = tokens(n)
    app = ViewerApp()
    flushes = Timed()
    frames = Timed()
    orig_update = Screen._on_timer_update
    tmp = tempfile.TemporaryDirectory()
    store = HistoryStore(Path(tmp.name) / "history.sqlite3")
    rec = JobRecord("bench-job", "bench", mode="stream", submitted_at=time.time())
    store.record_submitted(rec)
    try:
        Screen._on_timer_update = frames.wrap(orig_update)  # type: ignore[method-assign]
        async with app.run_test(size=SIZE) as pilot:  # noqa: SIM117
            viewer = app.query_one(OutputViewer)
            timed_flush = flushes.wrap(viewer.flush)
            lines_after: list[int] = []

            def flush() -> None:
                timed_flush()
                lines_after.append(viewer.log_widget.line_count)

            viewer.flush = flush  # type: ignore[method-assign]
            viewer.show_job(rec, [])
            await pilot.pause()
            frames.calls.clear()
            pump = EventPump(app)
            app.pump = pump  # type: ignore[attr-defined]
            client = FakeStream(toks, batch, rate)
            follower = StreamFollower(client, store, pump, RealClock(), rec)
            t0 = time.perf_counter()
            c0 = time.process_time()
            task = follower.start()
            max_lines = 0
            while viewer.chunks_shown < n:
                await asyncio.sleep(0.01)
                max_lines = max(max_lines, viewer.log_widget.line_count)
                if time.perf_counter() - t0 > 600:
                    raise RuntimeError("stream viewer bench took too long")
            t_end = flushes.calls[-1][0] + flushes.calls[-1][1]
            cpu = time.process_time() - c0
            await task
            await pilot.pause()
            log = viewer.log_widget
            lines_kept = log.line_count
            chars_kept = sum(len(x) for x in log.lines)
            start = client.first_read or t0
            stored = len(store.chunks("bench-job"))
    finally:
        Screen._on_timer_update = orig_update  # type: ignore[method-assign]
        store.close()
        tmp.cleanup()
    assert stored == n, stored
    dt = t_end - start
    # A frame = one flush (the viewer's single write) + the repaints up to the next flush.
    fl = [(t, d) for t, d in flushes.calls if t <= t_end]
    fr = [(t, d) for t, d in frames.calls if start <= t <= t_end + 0.2]
    per_frame: list[float] = []
    for i, (t, d) in enumerate(fl):
        nxt = fl[i + 1][0] if i + 1 < len(fl) else t_end + 0.2
        per_frame.append(d + sum(pd for pt, pd in fr if t <= pt < nxt))
    k = max(1, len(per_frame) // 5)
    quint = [statistics.median(per_frame[i * k:(i + 1) * k] or per_frame[-1:]) * 1e3
             for i in range(5)]
    # the log reaches its cap (MAX_LINES) after a while; from then on every write also
    # prunes it: the steady state. "Does not grow" compares the frames after the cap.
    capped_at = next((i for i, n in enumerate(lines_after) if n >= MAX_LINES), len(fl))
    after_cap = per_frame[capped_at:]
    kc = max(1, len(after_cap) // 3)
    med = statistics.median
    return {
        "chunks": n,
        "offered_rate": rate,
        "seconds": dt,
        "rate": n / dt,
        "cpu_s": cpu,
        "busy": cpu / dt,
        "flushes": len(fl),
        "repaints": len(fr),
        "frame_ms_early": med(per_frame[:k]) * 1e3,
        "frame_ms_late": med(per_frame[-k:]) * 1e3,
        "frame_ms_max": max(per_frame) * 1e3,
        "frame_ms_quintiles": quint,
        "capped_at_frame": capped_at,
        "frame_ms_capped_first": statistics.median(after_cap[:kc]) * 1e3 if after_cap else float("nan"),
        "frame_ms_capped_last": statistics.median(after_cap[-kc:]) * 1e3 if after_cap else float("nan"),
        "lines_kept": lines_kept,
        "max_lines_seen": max_lines,
        "max_lines_cap": MAX_LINES,
        "chars_kept": chars_kept,
        "stored_chunks": stored,
    }


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Log(id="log")


async def run_anchor(n: int) -> dict[str, Any]:
    """The naive way: every chunk into a Textual Log as it arrives."""
    toks = tokens(n)
    app = LogApp()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(Log)
        await pilot.pause()
        t0 = time.perf_counter()
        for tok in toks:
            log.write(tok)
            await asyncio.sleep(0)
        t1 = time.perf_counter()
        await pilot.pause()
    dt = t1 - t0
    return {"chunks": n, "seconds": dt, "rate": n / dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=200_000)
    ap.add_argument("--anchor-chunks", type=int, default=8_000)
    ap.add_argument("--paced-rate", type=float, default=50_000,
                    help="offered chunks/s of the paced run (frame costs)")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    fast, paced, anchors = [], [], []
    for i in range(a.repeat):
        with honest_headless():  # frames become escape sequences too, as in a terminal
            r = asyncio.run(run_viewer(a.chunks, a.batch))
            fast.append(r)
            p = asyncio.run(run_viewer(a.chunks, a.batch, a.paced_rate))
            paced.append(p)
            an = asyncio.run(run_anchor(a.anchor_chunks))
            anchors.append(an)
        if not a.json:
            print(f"run {i + 1}: full speed {r['rate']:,.0f} chunks/s ({r['seconds']:.2f} s, "
                  f"{r['flushes']} flushes); paced at {a.paced_rate:,.0f}/s: {p['flushes']} "
                  f"frames, frame cost early {p['frame_ms_early']:.2f} ms, late "
                  f"{p['frame_ms_late']:.2f} ms, max {p['frame_ms_max']:.1f} ms (by fifths: "
                  f"{', '.join(f'{q:.1f}' for q in p['frame_ms_quintiles'])}; log full at frame "
                  f"{p['capped_at_frame']}, after that first third {p['frame_ms_capped_first']:.1f}"
                  f" ms, last third {p['frame_ms_capped_last']:.1f} ms), CPU "
                  f"{p['busy']:.0%} of a core; lines kept {max(r['lines_kept'], p['lines_kept'])}"
                  f" (cap {MAX_LINES}); Log anchor {an['rate']:,.0f} chunks/s at "
                  f"{an['chunks']} chunks", flush=True)
    med = statistics.median
    out = {
        "rate": med(r["rate"] for r in fast),
        "anchor_rate": med(x["rate"] for x in anchors),
        "paced_rate": a.paced_rate,
        "frame_ms_early": med(r["frame_ms_early"] for r in paced),
        "frame_ms_late": med(r["frame_ms_late"] for r in paced),
        "frame_ms_capped_first": med(r["frame_ms_capped_first"] for r in paced),
        "frame_ms_capped_last": med(r["frame_ms_capped_last"] for r in paced),
        "paced_busy": med(r["busy"] for r in paced),
        "lines_kept": max(max(r["lines_kept"], r["max_lines_seen"]) for r in fast + paced),
        "max_lines_cap": MAX_LINES,
        "chunks": a.chunks,
        "anchor_chunks": a.anchor_chunks,
        "fast": fast,
        "paced": paced,
        "anchors": anchors,
    }
    out["ratio"] = out["rate"] / out["anchor_rate"]
    if a.json:
        print(json.dumps(out))
        return
    print(f"median: {out['rate']:,.0f} chunks/s vs Log anchor {out['anchor_rate']:,.0f} "
          f"chunks/s = {out['ratio']:.1f}x; frame at {a.paced_rate:,.0f}/s early "
          f"{out['frame_ms_early']:.2f} ms, late {out['frame_ms_late']:.2f} ms; lines kept "
          f"{out['lines_kept']} <= {MAX_LINES}")


if __name__ == "__main__":
    main()
