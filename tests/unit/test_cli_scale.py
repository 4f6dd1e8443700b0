"""``rpdash scale | drain | restore`` as a user runs them: ``python -m rpdash ...`` in a
subprocess against a simulator on 127.0.0.1 (its clock frozen, so queued jobs stay queued).
Asserts on stdout, stderr and the exit code, and on what the simulator now has."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rpdash.core.clock import FakeClock
from rpdash.sim.server import SimServer
from tests.unit.test_cli import KEY, _env


@pytest.fixture
def fsim() -> Iterator[SimServer]:
    server = SimServer(scenario="default", clock=FakeClock(), api_key=KEY).start()
    server.call(server.control.updates.apply, "mock", scaler=("QUEUE_DELAY", 4))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cli(fsim: SimServer, tmp_path: Path) -> Any:
    def run(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
        base = {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": fsim.base_url, **env}
        proc = subprocess.run([sys.executable, "-m", "rpdash", *args], cwd=tmp_path,
                              env=_env(tmp_path, **base), capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert KEY not in proc.stdout and KEY not in proc.stderr, "the API key was printed"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    return run


def workers(sim: SimServer) -> dict[str, Any]:
    return sim.call(sim.control.endpoint_rest, "mock")["workers"]


def test_scale_prints_before_and_after_read_back(cli: Any, fsim: SimServer) -> None:
    p = cli("scale", "--endpoint", "mock", "--min", "1", "--max", "5", "--idle-timeout", "20")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ("mock: workers 0-3, idle 5 s, QUEUE_DELAY 4 -> "
                                "workers 1-5, idle 20 s, QUEUE_DELAY 4")  # fmt: skip
    assert workers(fsim) == {"min": 1, "max": 5, "idleTimeout": 20}
    p = cli("scale", "--endpoint", "mock", "--scaler", "request-count", "--scaler-value", "2", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["after"]["scaler_type"] == "REQUEST_COUNT"
    p = cli("scale", "--endpoint", "mock", "--min", "9")
    assert p.returncode == 2 and "min workers (9) must not be more than max workers (5)" in p.stderr
    p = cli("scale", "--endpoint", "mock")
    assert p.returncode == 2 and "nothing to change" in p.stderr
    p = cli("scale", "--endpoint", "mock", "--idle-timeout", "0")
    assert p.returncode == 2 and "1 to 3600" in p.stderr
    assert (workers(fsim)["min"], workers(fsim)["max"]) == (1, 5)


def test_drain_then_restore_end_to_end(cli: Any, fsim: SimServer) -> None:
    with httpx.Client(base_url=fsim.base_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        for _ in range(4):
            c.post("/mock/run", json={"input": {}})
    p = cli("drain", "--endpoint", "mock", "--confirm", "mock")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ("mock: workers 0-3, idle 5 s, QUEUE_DELAY 4 -> workers 0-0, "
                                "idle 5 s, QUEUE_DELAY 4; 4 queued jobs removed")  # fmt: skip
    assert "rpdash restore --endpoint mock" in p.stderr
    assert workers(fsim)["max"] == 0
    p = cli("restore", "--endpoint", "mock")  # a new process: the scale came from SQLite
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().endswith("-> workers 0-3, idle 5 s, QUEUE_DELAY 4")
    assert workers(fsim) == {"min": 0, "max": 3, "idleTimeout": 5}
    p = cli("restore", "--endpoint", "mock")
    assert p.returncode == 2 and "no saved scale for endpoint mock" in p.stderr


@pytest.mark.parametrize("confirm", [None, "mock-stream", "MOCK"])
def test_drain_refuses_a_wrong_or_missing_name(cli: Any, fsim: SimServer, confirm: str | None) -> None:
    args = ["drain", "--endpoint", "mock"] + (["--confirm", confirm] if confirm else [])
    p = cli(*args)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.startswith("rpdash: error: ") and len(p.stderr.splitlines()) == 1
    assert workers(fsim)["max"] == 3  # nothing changed


@pytest.mark.parametrize("args", [["scale", "--max", "0"], ["drain", "--confirm", "mock"], ["restore"]])
def test_read_only_refuses_every_scaling_command(cli: Any, fsim: SimServer, args: list[str]) -> None:
    p = cli(*args, "--endpoint", "mock", "--readonly")
    assert p.returncode == 2 and "read-only mode" in p.stderr and f"`{args[0]}`" in p.stderr
    p = cli(*args, "--endpoint", "mock", RPDASH_READONLY="1")
    assert p.returncode == 2 and "read-only mode" in p.stderr
    assert workers(fsim)["max"] == 3


def test_scale_above_the_account_cap_is_runpods_refusal_and_names_the_setting(cli: Any, fsim: SimServer) -> None:
    p = cli("scale", "--endpoint", "mock", "--max", "11")  # the default scenario's cap is 10
    assert p.returncode == 3, p.stderr  # EXIT_API: RunPod said no
    error, hint = p.stderr.splitlines()
    assert error.startswith("rpdash: error: RunPod refused the request for the update of endpoint mock (400): "
                            "Your worker concurrency cannot go beyond the maximum limit of (10).")
    assert error.endswith("(the account's worker cap is 10: lower another endpoint's max workers first)")
    assert hint == ("rpdash: the account's worker cap is 10: put `account_worker_cap = 10` in the config "
                    "file so the dashboard and `rpdash watch` can say when it holds an endpoint back")
    assert workers(fsim)["max"] == 3
    p = cli("scale", "--endpoint", "mock", "--max", "11", RPDASH_ACCOUNT_WORKER_CAP="10")
    assert p.returncode == 3 and len(p.stderr.splitlines()) == 1  # known already: no hint
