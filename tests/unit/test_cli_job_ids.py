"""A job submitted to wait for its result (``rpdash run --sync``, the dashboard's runsync
mode) is never lost: its id is printed and in the history before the wait begins, so Ctrl-C,
``kill -9`` or quitting the dashboard leaves the user able to follow it."""

from __future__ import annotations

import asyncio
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from rpdash.core.models import JobStatus
from rpdash.store.history import HistoryStore
from tests.unit.test_cli import KEY, _env, ksim  # noqa: F401 - ksim is a fixture
from tests.unit.test_client import sim_job
from tests.unit.test_services_actions import Rig


def _start_sync_run(sim, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """``rpdash run --sync`` of a 60 s job; returns the process and the job id it printed
    on stderr (failing if none comes within 15 s)."""
    env = _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=sim.base_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpdash", "run", "--sync", "--endpoint", "mock",
         "--input", '{"mock_delay": 60}'],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    first = ""
    if sel.select(timeout=15):
        first = proc.stderr.readline()
    sel.close()
    m = re.search(r"rpdash: job (\S+) submitted to endpoint mock", first)
    if not m:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no job id on stderr within 15 s: {first!r}")
    return proc, m.group(1)


def _in_history(tmp_path: Path, job_id: str):
    with HistoryStore(tmp_path / "data" / "history.sqlite3") as h:
        return h.get(job_id)


def test_run_sync_killed_with_sigkill_keeps_the_id_in_the_history(ksim, tmp_path):  # noqa: F811
    proc, job_id = _start_sync_run(ksim, tmp_path)
    time.sleep(0.3)  # inside the wait for the result
    proc.kill()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    rec = _in_history(tmp_path, job_id)
    assert rec is not None and rec.mode == "runsync" and not rec.terminal
    assert sim_job(ksim, "mock", job_id).status in ("IN_QUEUE", "IN_PROGRESS")  # still billing


def test_run_sync_interrupted_prints_the_id_and_how_to_follow_it(ksim, tmp_path):  # noqa: F811
    proc, job_id = _start_sync_run(ksim, tmp_path)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(15)
    rest = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert rc == 130
    assert (f"interrupted; job {job_id} keeps running on endpoint mock; follow it with: "
            f"rpdash status {job_id} --endpoint mock --follow") in rest
    assert "Traceback" not in rest
    assert _in_history(tmp_path, job_id) is not None


async def test_dashboard_runsync_submit_stores_the_id_before_waiting(clock, store):
    """The submit is cancelled (the dashboard quits) while the job runs: the id is stored
    and the tracker follows the job to its end."""
    rig = Rig(clock, store)
    try:
        task = asyncio.ensure_future(
            rig.actions.submit("ep", {"mock_delay": 30}, mode="runsync"))
        await clock.advance(0.2, step=0.05)
        assert not task.done()  # waiting for the result
        ids = [r.job_id for r in store.recent()]
        assert len(ids) == 1 and store.get(ids[0]).mode == "runsync"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await clock.advance(40, step=0.5)
        assert rig.book.get(ids[0]).status is JobStatus.COMPLETED
        assert rig.api.calls.get("runsync", 0) == 0  # /run: the id came back at once
    finally:
        await rig.close()
