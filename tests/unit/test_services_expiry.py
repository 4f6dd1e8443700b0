"""How long RunPod keeps a result depends on the request that created the job: "runsync"
mode sends /run (kept 30 min) unless the input is over /run's 10 MB (then /runsync, 1 min)."""

from __future__ import annotations

import asyncio

from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.services.expiry import ResultState, result_remaining, result_state
from tests.unit.test_services_actions import Rig


def unfetched(rec: JobRecord, ended: float) -> JobRecord:
    """The record as if the job ended at ``ended`` and rpdash never saw its output."""
    return rec.copy(status=JobStatus.COMPLETED, output=None, finished_at=ended)


async def test_runsync_mode_sent_with_run_keeps_its_result_30_min(clock, store) -> None:
    rig = Rig(clock, store)
    task = asyncio.ensure_future(rig.actions.submit("ep", {"mock_delay": 0.5}, mode="runsync"))
    await clock.advance(1, step=0.05)
    rec = unfetched(task.result(), clock.time())
    assert rec.mode == "runsync"
    later = clock.time() + 5 * 60
    assert result_state(rec, later) is ResultState.AVAILABLE
    assert 25 * 60 - 2 <= (result_remaining(rec, later) or 0) <= 25 * 60  # not 0: not 1 min
    await rig.close()


async def test_input_too_big_for_run_is_sent_with_runsync_and_kept_1_min(clock, store) -> None:
    rig = Rig(clock, store)
    big = {"blob": "x" * 11_000_000}  # over /run's 10 MB, within /runsync's 20 MB
    task = asyncio.ensure_future(rig.actions.submit("ep", big, mode="runsync"))
    await clock.advance(3, step=0.05)
    assert rig.api.calls["runsync"] == 1 and rig.api.calls["run"] == 0
    rec = unfetched(task.result(), clock.time())
    assert rig.store.get(rec.job_id).extra.get("sent_with") == "/runsync"  # kept in the history
    assert 0 < (result_remaining(rec, clock.time() + 30) or 0) <= 30
    assert result_state(rec, clock.time() + 90) is ResultState.EXPIRED_UNSEEN
    await rig.close()


def test_run_mode_record_keeps_30_min() -> None:
    rec = JobRecord("j", "e", JobStatus.COMPLETED, mode="run", submitted_at=1e3, finished_at=1e3)
    assert result_remaining(rec, 1000.0 + 60) == 29 * 60
