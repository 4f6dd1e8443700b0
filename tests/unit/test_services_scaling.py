"""Scale, drain and restore as services: over real HTTP against the simulator (on a fake
clock that never moves, so queued jobs stay queued), with the drained scale kept in a real
SQLite history file that a "restart" (a new HistoryStore on the same file) reads back."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rpdash.api.client import RunPodClient
from rpdash.api.control import ControlClient
from rpdash.core.clock import FakeClock
from rpdash.services.actions import ReadOnly
from rpdash.services.scaling import NothingSaved, Scaling
from rpdash.sim.server import SimServer
from rpdash.store.history import HistoryStore
from rpdash.store.scale_memory import ScaleMemory


@pytest.fixture
def fsim() -> Iterator[SimServer]:
    server = SimServer(scenario="default", clock=FakeClock()).start()
    server.call(server.control.updates.apply, "mock", scaler=("QUEUE_DELAY", 4))
    try:
        yield server
    finally:
        server.stop()


def queue_jobs(sim: SimServer, n: int) -> None:
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        for _ in range(n):
            assert c.post("/mock/run", json={"input": {"mock_delay": 30}}).status_code == 200


async def act(sim: SimServer, path: Path | None, fn: str, *args: Any, readonly: bool = False,
              **kw: Any) -> Any:  # fmt: skip
    history = HistoryStore(path) if path is not None else None
    try:
        async with ControlClient(sim.api_key, sim.control_url, max_retries=0) as control, \
                RunPodClient(sim.api_key, sim.base_url, max_retries=0) as data:  # fmt: skip
            memory = ScaleMemory(history) if history is not None else None
            svc = Scaling(control, data, memory, readonly=readonly)
            result = getattr(svc, fn)(*args, **kw)
            return await result if inspect.isawaitable(result) else result
    finally:
        if history is not None:
            history.close()


async def test_drain_then_restore_survives_a_restart(fsim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    await act(fsim, db, "scale", "mock", workers_min=1, idle_timeout=45, scaler_value=7)
    queue_jobs(fsim, 5)
    drained = await act(fsim, db, "drain", "mock")
    assert drained.removed is not None and drained.removed >= 1
    assert (drained.after.workers_min, drained.after.workers_max) == (0, 0)
    assert (drained.before.workers_min, drained.before.workers_max) == (1, 3)
    assert fsim.call(fsim.engine.health, "mock")["jobs"]["inQueue"] == 0
    assert "-> workers 0-0" in drained.summary and "removed" in drained.summary

    # a second drain (already at 0) must not overwrite the saved scale with zeros
    again = await act(fsim, db, "drain", "mock")
    assert "already drained" in (again.note or "")

    saved = await act(fsim, db, "saved", "mock")
    assert saved is not None and (saved.workers_min, saved.workers_max, saved.idle_timeout) == (1, 3, 45)
    restored = await act(fsim, db, "restore", "mock")  # a new HistoryStore: a restart
    after = restored.after
    assert (after.workers_min, after.workers_max, after.idle_timeout_s) == (1, 3, 45)
    assert (after.scaler_type, after.scaler_value) == ("QUEUE_DELAY", 7)
    with pytest.raises(NothingSaved, match="no saved scale for endpoint mock"):
        await act(fsim, db, "restore", "mock")


async def test_scale_reports_before_and_after(fsim: SimServer, tmp_path: Path) -> None:
    res = await act(fsim, None, "scale", "mock", workers_max=6)
    assert res.before.workers_max == 3 and res.after.workers_max == 6
    assert res.summary == "mock: workers 0-3, idle 5 s, QUEUE_DELAY 4 -> workers 0-6, idle 5 s, QUEUE_DELAY 4"


@pytest.mark.parametrize("fn", ["scale", "drain", "restore"])
async def test_read_only_refuses_before_any_request(fsim: SimServer, tmp_path: Path, fn: str) -> None:
    kw = {"workers_max": 1} if fn == "scale" else {}
    with pytest.raises(ReadOnly, match=f"read-only mode: {fn} is disabled") as err:
        await act(fsim, tmp_path / "h.sqlite3", fn, "mock", readonly=True, **kw)
    assert "\n" not in str(err.value)
    assert fsim.call(fsim.control.endpoint_rest, "mock")["workers"]["max"] == 3
