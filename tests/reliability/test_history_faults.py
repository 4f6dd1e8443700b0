"""Row 10 of the fault matrix in depth: the history under two writers, ``kill -9`` in the
middle of a write, a read-only file or directory and a full disk. The history stays
consistent and readable, rpdash says why it cannot write, and the command or the dashboard
goes on working."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from rpdash.store.history import HistoryStore, StoreError
from tests.helpers import as_user_who_cannot_write

from .conftest import KEY, check_ids_kept, history_ids, sim_ids, tally

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp: Path, sim) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
            "RPDASH_CONFIG": str(tmp / "none.toml"), "RPDASH_DATA_DIR": str(tmp / "data"),
            "PYTHONPATH": str(ROOT), "RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": sim.base_url,
            "LANG": "C.UTF-8"}


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def test_two_cli_processes_share_one_history(rsim, tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c",
             "import sys\nfrom rpdash.cli import main\n"
             "for i in range(12):\n"
             "    rc = main(['run', '--endpoint', 'mock', '--input', '{\"n\": %d}' % i])\n"
             "    assert rc == 0\n"],
            env=_env(tmp_path, rsim), cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and err == "", err
    printed = [ln for out, _ in outs for ln in out.split()]
    assert len(printed) == 24 and set(printed) == set(sim_ids(rsim, "mock"))
    db = tmp_path / "data" / "history.sqlite3"
    check_ids_kept(printed, db)
    assert integrity(db) == "ok"
    tally("faults")


def test_kill_9_during_a_streamed_history_write(rsim, tmp_path):
    """``rpdash run --stream`` writes chunks in batches while it prints them; killed with
    SIGKILL in the middle, the file stays sound, holds the job id, and the next rpdash
    writes to it again."""
    text = "x" * 60_000
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpdash", "run", "--stream", "--endpoint", "mock-stream",
         "--input", json.dumps({"mock_return": text, "mock_delay": 0.0001})],
        env=_env(tmp_path, rsim), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    announced = proc.stderr.readline()  # "rpdash: job ID submitted to endpoint mock-stream"
    job = announced.split()[2]
    n = 0
    while n < 2000:  # a few chunk batches are in the history by now
        n += len(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    tally("faults")
    db = tmp_path / "data" / "history.sqlite3"
    assert integrity(db) == "ok"
    check_ids_kept([job], db)
    with HistoryStore(db) as h:
        chunks = h.chunks(job)
        assert chunks == ["x"] * len(chunks)  # a prefix, in order, nothing torn
        assert h.writable
    r = subprocess.run([sys.executable, "-m", "rpdash", "run", "--endpoint", "mock"],
                       env=_env(tmp_path, rsim), cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    check_ids_kept([job, r.stdout.strip()], db)




def _cli_in_child(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    import rpdash.cli as cli_mod

    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_mod.main(argv)
    return {"code": code, "out": out.getvalue(), "err": err.getvalue()}


def test_read_only_history_file_and_directory(rsim, cli):
    # everything the child needs is imported before it loses access to site-packages:
    # one run here does it
    import importlib.readers  # noqa: F401

    assert cli("run", "--endpoint", "mock", "--sync").code == 0
    import rpdash.api.client  # noqa: F401
    import rpdash.cli  # noqa: F401
    import rpdash.config  # noqa: F401
    import rpdash.core.records  # noqa: F401
    import rpdash.store.history  # noqa: F401

    base = Path(tempfile.mkdtemp(prefix="rpdash-rel-ro-"))
    data = base / "data"
    try:
        os.chmod(base, 0o755)
        data.mkdir(mode=0o755)
        db = data / "history.sqlite3"
        with HistoryStore(db):  # an existing history, made by root
            pass
        os.chmod(db, 0o644)
        old = history_ids(db)
        env = {"HOME": str(base), "RPDASH_CONFIG": str(base / "none.toml"),
               "RPDASH_DATA_DIR": str(data), "RUNPOD_API_KEY": KEY,
               "RUNPOD_BASE_URL": rsim.base_url}
        ro_file = as_user_who_cannot_write(lambda: _cli_in_child(["run", "--endpoint", "mock"], env))
        os.chmod(data, 0o555)
        env2 = dict(env, RPDASH_DATA_DIR=str(data / "sub"))
        ro_dir = as_user_who_cannot_write(lambda: _cli_in_child(["run", "--endpoint", "mock"], env2))
    finally:
        os.chmod(data, 0o755)
        for p in sorted(base.rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        base.rmdir()
    tally("faults", 2)
    for res in (ro_file, ro_dir):
        assert "child_error" not in res, res
        assert res["code"] == 0, res
        assert res["out"].strip() in sim_ids(rsim, "mock")  # the command worked
        warn = [ln for ln in res["err"].splitlines() if ln.startswith("rpdash: warning:")]
        assert len(warn) == 1, res["err"]
        assert "cannot write job history at" in warn[0]
        assert "not recorded in the history" in warn[0]
    assert "read-only" in ro_file["err"]
    assert "not writable" in ro_dir["err"] or "read-only" in ro_dir["err"]
    assert old == set()


def test_full_disk_mid_stream_keeps_printing_and_says_it_once(cli, monkeypatch):
    from rpdash.store import history

    class FillsUp(history.HistoryStore):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            self._conn.execute(f"PRAGMA max_page_count = {pages + 30}")

    monkeypatch.setattr(history, "HistoryStore", FillsUp)
    chunks = [{"tok": i, "pad": "p" * 400} for i in range(2000)]
    r = cli("run", "--stream", "--json", "--endpoint", "mock-stream", "--input",
            json.dumps({"mock_return": chunks}))
    tally("faults")
    assert r.code == 0
    lines = r.out.splitlines()  # one JSON line per chunk, then the final job
    assert [json.loads(ln)["output"]["tok"] for ln in lines[:-1]] == list(range(2000))
    warn = [ln for ln in r.lines if ln.startswith("rpdash: warning:")]
    assert len(warn) == 1 and "disk is full" in warn[0]
    job = r.lines[0].split()[2]  # "rpdash: job ID submitted to endpoint mock-stream"
    check_ids_kept([job], cli.history)  # the id alone went in though the input did not fit
    assert "the job id is recorded in the history, its input and results are not" in warn[0]
    assert integrity(cli.history) == "ok"


def _io_error(*_a: Any, **_k: Any) -> Any:
    """What SQLite raises when the WAL or its shared memory cannot grow on a full disk:
    an I/O error (SQLITE_IOERR_WRITE), not SQLITE_FULL; Python does not pass on ENOSPC."""
    e = sqlite3.OperationalError("disk I/O error")
    e.sqlite_errorcode = 778  # type: ignore[attr-defined]
    raise e


class _FailingWrites:
    """A connection whose batch writes fail with ``_io_error``; the rest goes through."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def executemany(self, *a: Any, **k: Any) -> Any:
        _io_error()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_an_io_error_with_almost_no_space_left_says_the_disk_is_full(tmp_path, monkeypatch):
    """Under ~65 KB free, SQLite's error is "disk I/O error": the history says "disk is
    full" (what the user can fix), when it opens and when a write fails."""
    from rpdash.store import reasons

    db = tmp_path / "history.sqlite3"
    with HistoryStore(db):
        pass
    monkeypatch.setattr(reasons, "free_bytes", lambda _p: 40_000)
    with HistoryStore(db) as h:  # writing fails mid-session
        h._conn = _FailingWrites(h._conn)  # type: ignore[assignment]
        with pytest.raises(StoreError) as e:
            h.append_chunks("job-1", 0, ["a"])
        assert str(e.value) == f"cannot write job history at {db}: disk is full"
        h._conn = h._conn._conn  # type: ignore[attr-defined]
    monkeypatch.setattr(HistoryStore, "_migrate", _io_error)  # opening fails
    with HistoryStore(db) as h:
        assert not h.writable
        assert str(h.problem) == (f"cannot write job history at {db}: disk is full; "
                                  "showing it read-only")
    # with room on the disk an I/O error stays an I/O error
    monkeypatch.setattr(reasons, "free_bytes", lambda _p: 50 << 30)
    with HistoryStore(db) as h:
        assert str(h.problem).endswith(": disk I/O error; showing it read-only")
    tally("faults", 3)
