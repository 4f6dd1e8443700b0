"""Pilot test of ``rpdash --local-worker URL`` against the REAL runpod-python dev server
(``python tests/fixtures/dev_handler.py --rp_serve_api``): the dashboard submits and shows
jobs, and says plainly what that server lacks (cancel, retry, purge, /health, endpoint
list, workers, logs) instead of failing on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rpdash.config import Settings
from rpdash.core.models import JobStatus
from rpdash.tui.app import RpdashApp
from rpdash.tui.screens.metrics import MetricsScreen
from rpdash.tui.screens.picker import EndpointPicker
from rpdash.tui.widgets.bars import TopBar
from rpdash.tui.widgets.health import HealthTable
from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.output import OutputViewer

from .conftest import started, submit_json, text_of, wait_for

pytest.importorskip("runpod")

from tests.unit.test_local_worker import _start  # noqa: E402 - after the importorskip

SIZE = (160, 48)


@pytest.fixture(scope="module")
def dev_server() -> Iterator[str]:
    yield from _start()


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_local_worker_mode_against_the_real_dev_server(dev_server, tmp_path: Path):
    settings = Settings(history_path=tmp_path / "history.db", health_interval=1.0,
                        status_interval=0.5)
    app = RpdashApp(settings, local_worker=dev_server, strict_errors=True)
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        # no key or endpoint was needed; the local history file is separate
        assert app.backend.local_url == dev_server
        assert (tmp_path / "local-history.db").exists()
        top = dash.query_one(TopBar)
        assert dev_server.split("//")[1] in text_of(top)
        assert "LOCAL DEV WORKER" in text_of(top) and "DEMO" not in text_of(top)
        # it says plainly what the dev server lacks
        await wait_for(pilot, lambda: any("Local dev worker at" in n for n in notes(app)),
                       what="the local-mode notice")
        lacks = app.unsupported_actions
        assert {"cancel", "retry", "purge", "pick_endpoint", "show_workers", "show_logs"} <= set(lacks)
        assert "/cancel" in lacks["cancel"] and "/purge-queue" in lacks["purge"]
        health = dash.query_one(HealthTable)
        assert list(health.views) == ["local"]
        await wait_for(pilot, lambda: "ok" in text_of(health), what="the local row")
        assert app.session.pollers == {}  # no /health requests at all

        # a /run job runs when its status is read: the tracker reads it, it completes
        job_id = await submit_json(app, pilot, {"mock_return": {"answer": 42}}, endpoint="local")
        jobs = dash.query_one(JobTable)
        await wait_for(pilot, lambda: jobs.records[job_id].status is JobStatus.COMPLETED,
                       what="COMPLETED", timeout=20)
        assert jobs.records[job_id].output == {"answer": 42}
        await wait_for(pilot, lambda: dash.query_one(OutputViewer).job is not None
                       and dash.query_one(OutputViewer).job.job_id == job_id, what="shown")
        # runsync, and a failing handler
        sync_id = await submit_json(app, pilot, {"hello": "there"}, mode="runsync", endpoint="local")
        await wait_for(pilot, lambda: jobs.records[sync_id].status is JobStatus.COMPLETED,
                       what="runsync COMPLETED")
        assert jobs.records[sync_id].output == {"echo": {"hello": "there"}}
        bad_id = await submit_json(app, pilot, {"mock_error": True}, endpoint="local")
        await wait_for(pilot, lambda: jobs.records[bad_id].status is JobStatus.FAILED,
                       what="FAILED", timeout=20)
        assert "Mock error" in (jobs.records[bad_id].error or "")

        # cancel/retry/purge are disabled (in the footer too), with the reason on demand
        await pilot.press("alt+2")
        assert jobs.check_action("retry", ()) is None and jobs.check_action("cancel", ()) is None
        assert health.check_action("purge", ()) is None
        await pilot.press("r")  # retry on a FAILED job: nothing is sent, nothing breaks
        await pilot.press("ctrl+e")  # no endpoint list on a dev server
        await pilot.pause()
        assert not isinstance(app.screen, EndpointPicker)
        app.run_registry_action("retry")
        app.run_registry_action("workers")
        await wait_for(pilot, lambda: any("has no /retry" in n for n in notes(app))
                       and any("no control plane" in n for n in notes(app)),
                       what="the reasons")
        assert jobs.records[bad_id].status is JobStatus.FAILED
        # the metrics view works with what exists (the jobs rpdash saw)
        await pilot.press("M")
        screen = await wait_for(pilot, lambda: isinstance(app.screen, MetricsScreen)
                                and app.screen.is_mounted and app.screen, what="metrics")
        view = screen.query("EndpointMetricsView").first()
        await wait_for(pilot, lambda: view.metrics is not None, what="metrics read")
        assert view.metrics.finished >= 3 and view.metrics.failed >= 1
        await pilot.press("escape")
        assert app.internal_errors == []


def test_cli_local_worker_flag(monkeypatch, tmp_path):
    import rpdash.tui.app as tui_app
    from rpdash import cli

    seen = {}

    def fake_run_tui(settings, **kw):
        seen.update(kw)
        return 0

    monkeypatch.setattr(tui_app, "run_tui", fake_run_tui)
    monkeypatch.setenv("RPDASH_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    (tmp_path / "none.toml").chmod(0o600)
    assert cli.main(["--local-worker", "http://127.0.0.1:8123"]) == 0
    assert seen == {"local_worker": "http://127.0.0.1:8123"}
    seen.clear()
    assert cli.main(["--local-worker"]) == 0
    assert seen == {"local_worker": "http://localhost:8000"}
    assert cli.main(["--local-worker", "http://x:1", "--demo"]) == 2
    assert cli.main(["--local-worker", "http://x:1", "health", "--endpoint", "e"]) == 2
