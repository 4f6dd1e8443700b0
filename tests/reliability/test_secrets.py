"""Issue 4, "Secrets": the API key never appears on screen, in logs, in screenshots, in error
messages, in exported files or in the history database (one test greps them all); no key
over plain http to a non-loopback host unless the user opts in; config and history files
are 0600 and a config file others can read gets a warning."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import stat
from pathlib import Path

import httpx
import pytest

from rpdash.api.client import RunPodClient
from rpdash.config import write_config
from rpdash.core.errors import InsecureTransport, ServerError
from rpdash.core.models import JobStatus
from rpdash.tui.app import RpdashApp
from rpdash.tui.widgets.bars import TopBar
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer
from tests.tui.conftest import started, text_of, wait_for

from .conftest import KEY, tally
from .test_matrix_tui import SIZE, bar, notes, settings, status_of

ROOT = Path(__file__).resolve().parents[2]


def grep_key(where: str, data: bytes | str) -> None:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    assert KEY.encode() not in raw, f"the API key is in {where}"
    # nor a long enough piece of it to matter (a "masked" key keeps at most 4 characters)
    assert KEY[-12:].encode() not in raw and KEY[:12].encode() not in raw, where


async def test_key_is_nowhere_after_a_busy_session(rsim, tmp_path, caplog, monkeypatch, cli):
    caplog.set_level(logging.DEBUG)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "history.db"
    app = RpdashApp(settings(rsim, tmp_path, history_path=db), strict_errors=True)
    # servers that echo the key back in what they say
    rsim.set_faults(endpoint="mock", operation="health", error_rate=1.0, burst=2)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        s = dash.session
        job = (await s.submit("mock", {"mock_return": {"echo": "Bearer " + KEY[:3]}})).job_id
        stream = (await s.submit("mock-stream", {"mock_return": ["a", "b"]},
                                 mode="stream")).job_id
        await wait_for(pilot, lambda: status_of(dash, job) is JobStatus.COMPLETED)
        await wait_for(pilot, lambda: status_of(dash, stream) is JobStatus.COMPLETED)
        rsim.set_mutator(lambda ep, op, p: (b"upstream said: Authorization: Bearer " +
                                            KEY.encode()) if op == "status" else None)
        bad = (await s.submit("mock", {"mock_delay": 0.5})).job_id
        await pilot.pause(1.5)
        rsim.set_mutator(None)
        await wait_for(pilot, lambda: status_of(dash, bad) is JobStatus.COMPLETED, timeout=20)
        # export the output the way ctrl+s does
        dash._show_job(job)
        viewer = dash.query_one(OutputViewer)
        await wait_for(pilot, lambda: viewer.job and viewer.job.job_id == job)
        viewer.post_message(OutputViewer.SaveRequested(job))
        saved = await wait_for(pilot, lambda: list(tmp_path.glob("rpdash-*.txt")), what="saved")
        svg = app.export_screenshot()
        # which key is in use shows masked in the header, and nothing more of it
        assert f"key rp_…{KEY[-4:]}" in text_of(dash.query_one(TopBar))
        screen_texts = notes(app) + bar(dash) + str(dash.query_one(JobTable).records)
        tally("faults", 4)
    grep_key("the screen (screenshot)", svg)
    grep_key("notifications / status bar", screen_texts)
    grep_key("the logs", caplog.text)
    for f in saved:
        grep_key(f"the exported file {f.name}", f.read_bytes())
    for f in tmp_path.glob("history.db*"):
        grep_key(f"the history file {f.name}", f.read_bytes())
    # the CLI's error messages, JSON output and history
    r = await asyncio.to_thread(cli, "run", "--sync", "--json", "--endpoint", "mock",
                                "--input", '{"mock_return": 1}')
    grep_key("CLI output", r.out + r.err)
    for f in cli.history.parent.glob("*"):
        grep_key(f"the CLI history {f.name}", f.read_bytes())


def test_shipped_screenshots_hold_no_key():
    shots = list((ROOT / "screenshots").glob("*.svg"))
    assert shots, "no screenshots to check"
    pattern = re.compile(rb"(rpa?_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9-]{16,}|Bearer [A-Za-z0-9_-]{8,})")
    for f in shots:
        data = f.read_bytes()
        assert not pattern.search(data), f"{f.name} shows something like a key"
        assert b"sim-key" not in data and b"demo-key" not in data


async def test_server_text_echoing_the_key_is_scrubbed_from_errors():
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {KEY}"  # it goes where it must
        return httpx.Response(500, json={"error": f"bad token {KEY} for you"})

    async with RunPodClient(KEY, "https://api.runpod.ai/v2", max_retries=0,
                            transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ServerError) as e:
            await c.health("ep1")
    assert KEY not in str(e.value) and "***" in str(e.value)
    assert KEY not in repr(c)
    tally("faults")


async def test_no_key_over_plain_http_unless_opted_in():
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"jobs": {}, "workers": {}})

    async with RunPodClient(KEY, "http://api.example.com/v2",
                            transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(InsecureTransport) as e:
            await c.health("ep1")
    assert sent == [] and "refusing to send the API key over plain http" in str(e.value)
    async with RunPodClient(KEY, "http://api.example.com/v2", allow_insecure_http=True,
                            transport=httpx.MockTransport(handler)) as c:
        await c.health("ep1")
    assert len(sent) == 1  # the user opted in
    async with RunPodClient(KEY, "http://127.0.0.1:9/v2",
                            transport=httpx.MockTransport(handler)) as c:
        await c.health("ep1")  # loopback is fine (the simulator)
    tally("bad_inputs", 3)


async def test_dashboard_refuses_plain_http_to_a_remote_host(rsim, tmp_path):
    app = RpdashApp(settings(rsim, tmp_path, base_url="http://api.example.com/v2"),
                    strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await wait_for(pilot, lambda: "refusing to send the API key over plain http"
                       in bar(dash), what="the refusal on screen")
        assert not app.internal_errors
    tally("bad_inputs")


def test_cli_refuses_plain_http_to_a_remote_host(cli):
    r = cli("health", "--endpoint", "mock", "--base-url", "http://api.example.com/v2")
    assert r.code == 2 and "refusing to send the API key over plain http" in r.errors[0]
    tally("bad_inputs")


def test_files_are_created_0600_and_dirs_0700(cli, tmp_path):
    old = os.umask(0o022)
    try:
        r = cli("run", "--endpoint", "mock")
        assert r.code == 0
        hist = cli.history
        assert stat.S_IMODE(hist.stat().st_mode) == 0o600
        assert stat.S_IMODE(hist.parent.stat().st_mode) == 0o700
        for side in hist.parent.glob("*-wal"):
            assert stat.S_IMODE(side.stat().st_mode) & 0o077 == 0
        cfg = write_config(tmp_path / "cfgdir" / "config.toml", {"api_key": KEY})
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
        assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    finally:
        os.umask(old)


def test_config_readable_by_others_gets_a_warning(cli, tmp_path):
    cfg = tmp_path / "config.toml"  # RPDASH_CONFIG of the cli fixture
    cfg.write_text(f'api_key = "{KEY}"\nendpoint_id = "mock"\n')
    os.chmod(cfg, 0o644)
    r = cli("health", RUNPOD_API_KEY=None)
    assert r.code == 0  # it works (the key from the file), and says so once
    warn = [ln for ln in r.lines if ln.startswith("rpdash: warning:")]
    assert len(warn) == 1
    assert "can be read by other users (mode 0644)" in warn[0] and "chmod 600" in warn[0]
    os.chmod(cfg, 0o600)
    r = cli("health", RUNPOD_API_KEY=None)
    assert r.code == 0 and not [ln for ln in r.lines if "warning" in ln]


def test_a_cloned_repositorys_dotenv_cannot_send_the_key_elsewhere(cli, tmp_path):
    """Issue 17.1: rpdash run inside a repository that ships a .env pointing at its own
    host, with plain http allowed, and the key in the shell."""
    dotenv = tmp_path / ".env"  # the cli fixture runs in tmp_path
    dotenv.write_text("RUNPOD_BASE_URL=http://collector.example/v2\n"
                      "RPDASH_ALLOW_INSECURE_HTTP=true\n")
    r = cli("health", "--endpoint", "mock", RUNPOD_BASE_URL=None)
    assert r.code == 2 and len(r.errors) == 1 and len(r.lines) == 1
    assert r.errors[0].startswith("rpdash: error: .env: RUNPOD_BASE_URL sends requests to "
                                  "http://collector.example, which is not RunPod")
    # the simulator on this machine is fine from a .env; plain http from it is not
    dotenv.write_text(f"RUNPOD_BASE_URL={cli.sim.base_url}\nRPDASH_ALLOW_INSECURE_HTTP=1\n")
    r = cli("health", "--endpoint", "mock", RUNPOD_BASE_URL=None)
    assert r.code == 0
    warn = [ln for ln in r.lines if ln.startswith("rpdash: warning:")]
    assert warn == ["rpdash: warning: .env: RPDASH_ALLOW_INSECURE_HTTP ignored: a .env file "
                    "cannot allow plain http (use --allow-insecure-http, the environment or "
                    "the config file)"]
    tally("bad_inputs", 2)
