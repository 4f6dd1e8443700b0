"""The fault matrix of issue 4, row by row, for the dashboard: Pilot tests of the real app
(RunPodClient + HistoryStore + Session) against the simulator over loopback.

Asserted as a user sees it: the health row's connection cell and "stale" marker, the status
bar's line that names the problem and says what rpdash does, the numbers that stay on
screen, the job rows, the output pane; and the ids in the history file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from textual.widgets import Input

from rpdash.config import Settings
from rpdash.core.models import JobStatus
from rpdash.services.events import ConnState
from rpdash.tui.app import RpdashApp
from rpdash.tui.widgets.bars import StatusBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer, StreamLog
from rpdash.tui.widgets.submit import SubmitForm
from tests.tui.conftest import started, submit_json, text_of, wait_for

from .conftest import KEY, Relay, check_ids_kept, engine_status, requests_seen, sim_ids, tally

SIZE = (160, 48)


def settings(sim, tmp_path: Path, **kw: Any) -> Settings:
    values: dict[str, Any] = dict(
        api_key=KEY, base_url=sim.base_url, endpoint_id="mock",
        endpoints={"streamer": "mock-stream"}, history_path=tmp_path / "history.db",
        health_interval=1.0, status_interval=0.5,
    )
    values.update(kw)
    return Settings(**values)


def row(dash, ep: str = "mock") -> str:
    return " | ".join(str(c) for c in dash.query_one(HealthTable).get_row(ep))


def bar(dash) -> str:
    return text_of(dash.query_one(StatusBar))


def no_escapes(text: str) -> None:
    for bad in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert bad not in text, repr(text[:300])


def status_of(dash, job_id: str) -> JobStatus:
    return dash.query_one(JobTable).records[job_id].status


def notes(app) -> str:
    return "\n".join(n.message for n in app._notifications)


async def wait_ok(pilot, dash, ep: str = "mock") -> None:
    health = dash.query_one(HealthTable)
    await wait_for(pilot, lambda: (v := health.views[ep].event) is not None
                   and v.state is ConnState.OK, what=f"{ep} ok")


# ---------------------------------------------------------------- 1. unreachable


async def test_row1_unreachable_at_start_then_comes_up(rsim, tmp_path):
    relay = Relay(rsim.port)  # not listening yet: connection refused
    app = RpdashApp(settings(rsim, tmp_path, base_url=relay.base_url), strict_errors=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            dash = await started(app, pilot)
            await wait_for(pilot, lambda: "unreachable" in row(dash), what="unreachable")
            await wait_for(pilot, lambda: "cannot reach 127.0.0.1" in bar(dash),
                           what="the reason in the status bar")
            assert "unreachable, retrying in" in bar(dash)
            tally("faults")
            relay.up()
            await wait_ok(pilot, dash)
            await wait_for(pilot, lambda: "cannot reach" not in bar(dash), what="cleared")
            assert "stale" not in row(dash)
            assert not app.internal_errors
    finally:
        relay.down()


async def test_row1_goes_away_while_running_and_comes_back(rsim, tmp_path):
    relay = Relay(rsim.port).up()
    app = RpdashApp(settings(rsim, tmp_path, base_url=relay.base_url), strict_errors=True)
    try:
        async with app.run_test(size=SIZE) as pilot:
            dash = await started(app, pilot)
            await wait_ok(pilot, dash)
            job = await submit_json(app, pilot, {"mock_delay": 2.5, "mock_return": "survived"})
            relay.down()
            tally("faults")
            await wait_for(pilot, lambda: "stale" in row(dash), what="stale marking")
            r = row(dash)
            assert "unreachable" in r or "retrying" in r
            # the last good numbers stay (not "-") while marked stale
            health = dash.query_one(HealthTable)
            assert health.views["mock"].event.health is not None
            assert health.queue_size("mock") is not None
            assert "cannot reach" in bar(dash) or "dropped" in bar(dash)
            assert not status_of(dash, job).terminal  # still tracked
            relay.up()
            await wait_ok(pilot, dash)
            await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED,
                           timeout=30, what="the job completes after the outage")
            assert dash.query_one(JobTable).records[job].output == "survived"
            assert "stale" not in row(dash)
            check_ids_kept([job], tmp_path / "history.db")
            assert not app.internal_errors
    finally:
        relay.down()


# ---------------------------------------------------------------- 2. dropped, stream resume


async def test_row2_stream_with_dropped_answers_shows_every_chunk_once(rsim, tmp_path):
    items = [f"line {i:03d}\n" for i in range(80)]
    rsim.set_faults(endpoint="mock-stream", operation="stream", drop_rate=0.5)
    rsim.set_faults(endpoint="mock", operation="health", drop_rate=0.3)
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = await submit_json(app, pilot, {"mock_return": items, "mock_delay": 0.03},
                           endpoint="mock-stream", mode="stream")
        log = dash.query_one(StreamLog)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job and viewer.job.job_id == job)
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED, timeout=40,
                       what="COMPLETED")
        await wait_for(pilot, lambda: any("line 079" in ln for ln in log.lines), what="last")
        lines = [ln for ln in log.lines if ln.startswith("line ")]
        assert lines == [it.strip("\n") for it in items]
        tally("faults", rsim.call(lambda: rsim.faults.injected))
        assert rsim.call(lambda: rsim.faults.injected) >= 3
        from rpdash.store.history import HistoryStore

        with HistoryStore(tmp_path / "history.db") as h:
            assert h.chunks(job) == items
        check_ids_kept([job], tmp_path / "history.db")
        assert not app.internal_errors


# ---------------------------------------------------------------- 3. 429


async def test_row3_rate_limited_says_so_and_recovers(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_ok(pilot, dash)
        rsim.set_faults(endpoint="mock", operation="health", throttle_rate=1.0, retry_after=1,
                        burst=3)
        await wait_for(pilot, lambda: "rate limited, retrying in 1 s" in bar(dash),
                       what="429 named in the status bar, with the wait")
        await wait_for(pilot, lambda: "rate limited" in row(dash), what="row state")
        assert "stale" in row(dash)
        tally("faults", 3)
        await wait_ok(pilot, dash)
        await wait_for(pilot, lambda: "rate limit" not in bar(dash), what="cleared")
        # no Retry-After: a backoff of its own
        rsim.set_faults(endpoint="mock", operation="health", throttle_rate=1.0,
                        retry_after=None, burst=2)
        await wait_for(pilot, lambda: "slow down and retry" in bar(dash), what="no Retry-After")
        tally("faults", 2)
        await wait_ok(pilot, dash)
        assert not app.internal_errors


async def test_row3_one_endpoint_answering_does_not_clear_anothers_problem(rsim, tmp_path):
    """The status bar names mock's 429 until *mock* recovers: mock-stream's good answers
    (every poll) say nothing about it. (Found flaky under load: the message vanished.)"""
    from rpdash.services.events import HealthEvent

    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_ok(pilot, dash)
        rsim.set_faults(endpoint="mock", operation="health", throttle_rate=1.0, retry_after=1,
                        burst=1000)
        await wait_for(pilot, lambda: "rate limited" in bar(dash), what="mock's 429 named")
        dash.on_health(HealthEvent("mock-stream", ConnState.OK, message=None))
        await pilot.pause()
        assert "rate limited" in bar(dash)
        rsim.set_faults(reset=True)
        await wait_for(pilot, lambda: "rate limit" not in bar(dash), what="cleared by mock")
        assert not app.internal_errors


# ---------------------------------------------------------------- 4. 5xx, slow


async def test_row4_server_errors_and_slow_answers(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path, request_timeout=0.5), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_ok(pilot, dash)
        rsim.set_faults(endpoint="mock", operation="health", error_rate=1.0,
                        error_codes=(500, 502, 503), burst=3)
        await wait_for(pilot, lambda: "server error 50" in bar(dash), what="5xx named")
        await wait_for(pilot, lambda: "retrying" in row(dash) and "stale" in row(dash),
                       what="retrying, stale")
        tally("faults", 3)
        await wait_ok(pilot, dash)
        rsim.set_faults(endpoint="mock", operation="health", latency=1.0, burst=2)
        await wait_for(pilot, lambda: "no answer from 127.0.0.1 to /health" in bar(dash),
                       what="timeout named")
        tally("faults", 2)
        await wait_ok(pilot, dash)
        # a job submitted through a 503 on /status is tracked to its end
        rsim.set_faults(endpoint="mock", operation="status", error_rate=1.0, burst=2)
        job = await submit_json(app, pilot, {"mock_return": "ok"})
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED, timeout=20)
        check_ids_kept([job], tmp_path / "history.db")
        assert not app.internal_errors


# ---------------------------------------------------------------- 5. bad bodies


async def test_row5_bad_bodies_are_named_and_odd_fields_do_not_crash(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_ok(pilot, dash)
        rsim.set_mutator(lambda ep, op, p: b"<html>oops</html>" if op == "health" else None)
        await wait_for(pilot, lambda: "is not JSON" in bar(dash), what="garbage named")
        await wait_for(pilot, lambda: "stale" in row(dash), what="stale")
        tally("faults")
        rsim.set_mutator(lambda ep, op, p: {"jobs": None, "workers": None}
                         if op == "health" else None)
        await wait_for(pilot, lambda: "lacks the expected fields" in bar(dash), what="shape")
        tally("faults")
        # huge, negative, string and null counts: shown, never negative
        rsim.set_mutator(lambda ep, op, p: {"jobs": {"inQueue": 10**30, "failed": -4,
                                                     "completed": None},
                                            "workers": {"idle": "3", "running": -1}}
                         if op == "health" else None)
        await wait_for(pilot, lambda: str(10**30) in row(dash), what="huge number shown")
        assert "-4" not in row(dash) and "-1" not in row(dash)
        tally("faults")
        # a job whose status becomes something unknown, then null fields, then done
        rsim.set_mutator(None)
        # live long enough for the mutator below (1.5 s raced it under load)
        job = await submit_json(app, pilot, {"mock_delay": 4, "mock_return": "fine"})
        rsim.set_mutator(lambda ep, op, p: {**p, "status": "WARMING_UP", "delayTime": "x",
                                            "executionTime": 10**25, "output": None}
                         if op in ("status", "status-sync") and isinstance(p, dict)
                         and p.get("status") != "COMPLETED" else None)
        await pilot.pause(1.0)
        assert not status_of(dash, job).terminal  # an unknown status keeps it tracked
        tally("faults")
        rsim.set_mutator(None)
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED, timeout=20)
        assert not app.internal_errors


# ---------------------------------------------------------------- 6. 401, 404


async def test_row6_rejected_key_unknown_endpoint_expired_job(rsim, tmp_path):
    s = settings(rsim, tmp_path, endpoints={"ghost": "nosuchendpoint"})
    app = RpdashApp(s, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_for(pilot, lambda: "not found" in row(dash, "nosuchendpoint"),
                       what="unknown endpoint")
        assert "endpoint nosuchendpoint not found (404)" in notes(app) + bar(dash)
        job = await submit_json(app, pilot, {"mock_return": 1})
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED)
        # RunPod forgets it: a watch of it shows it expired, not an error loop
        rsim.call(lambda: rsim.engine.set_job_ttl(rsim.engine.find_job("mock", job), 0))
        other = rsim.call(lambda: rsim.engine.submit("mock", {"input": {}})).id
        rsim.call(lambda: rsim.engine.set_job_ttl(rsim.engine.find_job("mock", other), 0))
        await pilot.pause(0.3)
        dash.run_command(f"watch {other} mock")
        await wait_for(pilot, lambda: other in dash.query_one(JobTable).records
                       and dash.query_one(JobTable).records[other].expired, timeout=20,
                       what="expired job")
        shown = str(dash.query_one(JobTable).get_row(other)[2]).lower()
        assert "expired" in shown or "not found" in shown  # gone, said plainly
        tally("faults", 2)
        check_ids_kept([job, other], tmp_path / "history.db")
        assert not app.internal_errors
    # and a rejected key is a state, with the key nowhere on screen
    app = RpdashApp(settings(rsim, tmp_path, api_key="rp_wrong_secret_4242"), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_for(pilot, lambda: "key rejected" in row(dash), what="key rejected")
        assert "RunPod rejected the API key (401)" in notes(app)
        assert "rp_wrong_secret_4242" not in notes(app) + bar(dash) + row(dash)
        tally("faults")
        assert not app.internal_errors


# ---------------------------------------------------------------- 7. big and strange


async def test_row7_big_output_many_chunks_every_plane(rsim, tmp_path):
    plane_text = "".join(chr(p * 0x10000 + 0x100) for p in range(1, 17)) + "中e\u0301"
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        big = "y" * 10_200_000
        # submitted through the session: the row is about a big *output* (typing 10 MB
        # into the form's editor is a different, slow, matter)
        job = (await dash.session.submit("mock", {"mock_return": big}, mode="runsync")).job_id
        await wait_for(pilot, lambda: job in dash.query_one(JobTable).records)
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED, timeout=40)
        dash._show_job(job)  # as a click on its row does
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED, timeout=40)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job and viewer.job.job_id == job)
        await wait_for(pilot, lambda: "yyyy" in text_of(dash.query_one("#out-final-body")),
                       timeout=20, what="big output on screen")
        assert "truncated on screen: 10,200,000 characters" in text_of(
            dash.query_one("#out-final-body"))
        from rpdash.store.history import HistoryStore

        with HistoryStore(tmp_path / "history.db") as h:
            assert h.get(job).output == big
        tally("faults")
        n = 100_000
        job2 = await submit_json(app, pilot, {"mock_return": "ab" * (n // 2)},
                            endpoint="mock-stream", mode="stream")
        await wait_for(pilot, lambda: status_of(dash, job2) is JobStatus.COMPLETED, timeout=60,
                       what="100k-chunk stream done")
        with HistoryStore(tmp_path / "history.db") as h:
            await wait_for(pilot, lambda: h.get(job2).chunk_count == n, what="all stored")
        tally("faults")
        job3 = await submit_json(app, pilot, {"mock_return": plane_text})
        await wait_for(pilot, lambda: status_of(dash, job3) is JobStatus.COMPLETED)
        assert dash.query_one(JobTable).records[job3].output == plane_text
        tally("faults")
        check_ids_kept([job, job2, job3], tmp_path / "history.db")
        assert not app.internal_errors


# ---------------------------------------------------------------- 8. control sequences

EVIL = ("\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil")


def screen_text(app) -> str:
    return "\n".join("".join(seg.text for seg in strip) for strip in
                     (app.screen._compositor.render_update(full=True).strips
                      if hasattr(app.screen._compositor.render_update(full=True), "strips")
                      else []))


async def test_row8_escapes_in_output_error_and_ids_render_inert(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = await submit_json(app, pilot, {"mock_return": {"text": EVIL, EVIL: 1}})
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job and viewer.job.job_id == job)
        body = dash.query_one("#out-final-body")
        await wait_for(pilot, lambda: "pwned" in text_of(body), what="output shown")
        no_escapes(text_of(body))
        # an error and an id carrying escapes, as the API might send them
        job2 = await submit_json(app, pilot, {"mock_delay": 30})  # still live when the mutator is set
        rsim.set_mutator(lambda ep, op, p: {**p, "status": "FAILED", "error": "bad " + EVIL,
                                            "workerId": EVIL}
                         if op in ("status", "status-sync") and isinstance(p, dict) else None)
        await wait_for(pilot, lambda: status_of(dash, job2) is JobStatus.FAILED, timeout=20)
        await pilot.pause(0.3)
        svg = app.export_screenshot()
        for bad in ("\x1b", "\x07", "\x9b"):
            assert bad not in svg
        no_escapes(notes(app))
        no_escapes(text_of(dash.query_one(JobTable)))
        no_escapes(text_of(dash.query_one(StatusBar)))
        # a watched id with escapes is refused before any request, shown inert
        before = requests_seen(rsim)
        dash.run_command("watch " + "abc\x1b]0;t\x07" + " mock")
        await pilot.pause(0.2)
        no_escapes(notes(app))
        assert "Cannot watch" in notes(app)
        assert requests_seen(rsim) - before <= 4  # only the background polls, no /status of it
        tally("faults", 3)
        assert not app.internal_errors


# ---------------------------------------------------------------- 9. bad user input

BAD_WATCH_IDS = ["a/b", "..", "x?y=1", "x#f", "a%2fb", "../../etc"]


async def test_row9_bad_input_is_refused_before_any_request(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        form = dash.query_one(SubmitForm)
        for bad_json in ('{"a": 1,}', "[1]", "", "{'a': 1}", '{"a": NaN}'):
            await submit_json(app, pilot, bad_json, expect_new=False)
            tally("bad_inputs")
        assert sim_ids(rsim, "mock") == []
        assert "Not submitted" in notes(app)
        # over the documented size limit
        await submit_json(app, pilot, json.dumps({"b": "x" * 10_000_100}), expect_new=False)
        tally("bad_inputs")
        assert sim_ids(rsim, "mock") == []
        assert "10 MB" in notes(app) + text_of(dash.query_one("#sf-msg"))
        # negative and absurd policy values
        form.editor.focus()
        form.editor.load_text('{"ok": 1}')
        for field, value in (("#sf-timeout", "-5s"), ("#sf-timeout", "99999d"),
                             ("#sf-ttl", "-1"), ("#sf-ttl", "1s")):
            dash.query_one(field, Input).value = value
            await pilot.pause()
            msg = text_of(dash.query_one("#sf-msg"))
            assert form.error is not None and "✗" in msg and ("timeout" in msg or "ttl" in msg), (
                field, value, msg)
            await pilot.press("ctrl+s")
            await pilot.pause(0.1)
            tally("bad_inputs")
            dash.query_one(field, Input).value = ""
        await pilot.press("escape")
        assert sim_ids(rsim, "mock") == []
        # ids that would change the request path
        for bad in BAD_WATCH_IDS:
            sent = requests_seen(rsim)
            dash.run_command(f"watch {bad} mock")
            await pilot.pause(0.05)
            assert f"Cannot watch: invalid job id {bad!r}" in notes(app), bad
            assert requests_seen(rsim) - sent <= 2  # background health only, no /status
            tally("bad_inputs")
        assert bad not in dash.query_one(JobTable).records
        assert not app.internal_errors


# ---------------------------------------------------------------- 10. history trouble


async def test_row10_full_disk_is_said_and_the_dashboard_keeps_working(rsim, tmp_path,
                                                                      monkeypatch):
    from rpdash.store import history

    class FullDisk(history.HistoryStore):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            self._conn.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(history, "HistoryStore", FullDisk)
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        job = await submit_json(app, pilot, {"mock_return": "still works", "pad": "p" * 50_000})
        await wait_for(pilot, lambda: "cannot write job history" in bar(dash) + notes(app),
                       what="the history problem said")
        assert "disk is full" in bar(dash) + notes(app)
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED)
        assert dash.query_one(JobTable).records[job].output == "still works"
        tally("faults")
        assert not app.internal_errors


async def cli_process(sim, tmp_path: Path, *argv: str) -> tuple[int, str, str]:
    """``python -m rpdash ...`` as another process (a second rpdash instance)."""
    import os
    import sys

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "RPDASH_CONFIG": str(tmp_path / "none.toml"), "RPDASH_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "RUNPOD_API_KEY": KEY,
           "RUNPOD_BASE_URL": sim.base_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rpdash", *argv, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_row10_dashboard_and_cli_share_one_history(rsim, tmp_path):
    db = tmp_path / "data" / "history.sqlite3"
    app = RpdashApp(settings(rsim, tmp_path, history_path=db), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        ids = []
        for i in range(3):
            ids.append(await submit_json(app, pilot, {"mock_return": i}))
            code, out, err = await cli_process(rsim, tmp_path, "run", "--endpoint", "mock",
                                               "--input", json.dumps({"mock_return": i}))
            assert code == 0 and err == "", err
            ids.append(out.strip())
        for j in ids[::2]:
            await wait_for(pilot, lambda j=j: status_of(dash, j) is JobStatus.COMPLETED)
        check_ids_kept(ids, db)
        assert set(ids) == set(sim_ids(rsim, "mock"))
        assert not app.internal_errors
    import sqlite3

    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# ---------------------------------------------------------------- 11. races


async def test_row11_cancel_racing_completion_shows_what_the_api_says(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path), strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        session = dash.session
        ids = []
        for delay in (0.0, 0.05, 0.1, 0.2, 0.4):
            rec = await session.submit("mock", {"mock_delay": delay, "mock_return": "r"})
            ids.append(rec.job_id)
            await pilot.pause(delay)
            await session.cancel([rec.job_id])
            tally("faults")
        for j in ids:
            await wait_for(pilot, lambda j=j: status_of(dash, j).terminal, timeout=20)
        await pilot.pause(1.0)
        for j in ids:
            final = engine_status(rsim, "mock", j)
            assert status_of(dash, j).value == final, (j, final)
            assert final in str(dash.query_one(JobTable).get_row(j)[2])
        # purge racing: queued jobs vanish (404), the others run; the screen agrees
        rsim.call(lambda: rsim.engine.update_endpoint("mock", workers_max=1))
        more = [(await session.submit("mock", {"mock_delay": 0.3})).job_id for _ in range(5)]
        res = await session.purge("mock")
        tally("faults")
        for j in more:
            await wait_for(pilot, lambda j=j: dash.query_one(JobTable).records[j].terminal,
                           timeout=30, what="purged or finished")
        purged = [j for j in more if dash.query_one(JobTable).records[j].expired
                  or status_of(dash, j) is JobStatus.CANCELLED]
        assert len(purged) == res.removed
        for j in more:
            if j not in purged:
                assert status_of(dash, j).value == engine_status(rsim, "mock", j)
        check_ids_kept(ids + more, tmp_path / "history.db")
        assert not app.internal_errors
