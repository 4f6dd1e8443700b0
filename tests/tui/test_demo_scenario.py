"""``rpdash --demo --scenario NAME [--pickup ORDER]``: the dashboard's simulator runs the
chosen scenario (an incident drill) and its endpoints are the ones on screen."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from rpdash.cli.app import main
from rpdash.cli.parser import build_parser
from rpdash.cli.state import State
from rpdash.config import Settings
from rpdash.tui.app import RpdashApp
from rpdash.tui.widgets.health import HealthTable

from .conftest import started, text_of, wait_for

SIZE = (160, 48)


@pytest.fixture
def demo_home(tmp_path, monkeypatch):
    """The demo's history file and any config under tmp_path, not the user's."""
    monkeypatch.setenv("RPDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("RPDASH_CONFIG", raising=False)
    return tmp_path


def _rpdash(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpdash", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_demo_scenario_and_pickup_are_parsed():
    args = build_parser().parse_args(["--demo", "--scenario", "crashloop", "--pickup", "random"])
    assert (args.demo, args.scenario, args.pickup) == (True, "crashloop", "random")
    plain = build_parser().parse_args(["--demo"])
    assert (plain.scenario, plain.pickup) == (None, None)


def test_the_cli_hands_scenario_and_pickup_to_the_dashboard(demo_home, monkeypatch):
    seen: dict = {}

    def fake_run_tui(settings, **kw):
        seen.update(kw)
        return 0

    monkeypatch.setattr("rpdash.tui.app.run_tui", fake_run_tui)
    assert main(["--demo", "--scenario", "crashloop", "--pickup", "batch"], State()) == 0
    assert seen["demo"] is True
    assert (seen["scenario"], seen["pickup"]) == ("crashloop", "batch")


@pytest.mark.parametrize(("args", "says"), [
    (("--scenario", "crashloop"), "--scenario goes with --demo"),
    (("--pickup", "random"), "--pickup goes with --demo"),
    (("--demo", "--scenario", "nope"), "unknown --scenario nope; choose one of: default, demo"),
    (("--demo", "--pickup", "lifo"), "unknown --pickup lifo; choose one of: fifo, batch, random"),
    (("--demo", "--scenario", "crashloop", "status", "j1"), "does not apply to headless commands"),
])  # fmt: skip
def test_a_wrong_demo_option_is_one_line_and_exit_2(demo_home, args, says):
    p = _rpdash(demo_home, *args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr
    assert "Traceback" not in p.stderr


async def test_demo_crashloop_shows_the_crashloop_endpoints(demo_home):
    app = RpdashApp(Settings(), demo=True, scenario="crashloop", pickup="random",
                    strict_errors=True)  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        health = dash.query_one(HealthTable)
        await wait_for(pilot, lambda: "broken" in text_of(health), what="crashloop's endpoint")
        shown = text_of(health)
        assert "mock" in shown
        assert "whisper-asr" not in shown and "llm-chat" not in shown  # not the demo's world
        sim = app.backend.demo_env.sim
        assert sim.call(lambda: sim.engine.endpoint("broken").cfg.pickup) == "random"
        assert not app.internal_errors
        # a drill keeps its own history (another scenario's jobs would say "not found")
        assert app.backend.store.path.name.startswith("crashloop-")
        # the simulated account's cap is known: the worker-cap verdict can be given
        assert app.settings.account_worker_cap == sim.engine.account_max_workers


async def test_every_demo_run_gets_fresh_job_ids_even_with_one_seed():
    """The demo history keeps earlier runs' jobs: a new run must not reuse their ids."""
    from rpdash.services.demo import start_demo

    ids = []
    for _ in range(2):
        env = await asyncio.to_thread(start_demo, "crashloop", seed=7)
        try:
            async with httpx.AsyncClient(headers={"Authorization": env.api_key}) as http:
                r = await http.post(f"{env.base_url}/mock/run", json={"input": {"n": 1}})
                ids.append(r.json()["id"])
        finally:
            await asyncio.to_thread(env.stop)
    assert ids[0] != ids[1]
