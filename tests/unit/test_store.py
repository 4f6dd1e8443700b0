"""The job history store: what a user would notice (data kept across restarts, private
files, clear errors instead of tracebacks, nothing lost when rpdash is killed)."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpdash.core.clock import FakeClock
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.store import HistoryStore, StoreError
from rpdash.store.schema import SCHEMA_VERSION
from tests.helpers import as_user_who_cannot_write

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture
def store(db: Path, clock: FakeClock):
    s = HistoryStore(db, clock=clock)
    yield s
    s.close()


def rec(job_id: str = "job-1", endpoint_id: str = "ep1", **kw: Any) -> JobRecord:
    kw.setdefault("submitted_at", 1_800_000_000.0)
    kw.setdefault("updated_at", kw["submitted_at"])
    return JobRecord(job_id=job_id, endpoint_id=endpoint_id, **kw)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- round trips


def test_record_round_trip_keeps_every_field(store: HistoryStore) -> None:
    r = rec(
        status=JobStatus.COMPLETED,
        mode="runsync",
        input={"prompt": "héllo ✓", "n": [1, 2.5, None, True], "lone": "\ud800x"},
        submitted_at=1_800_000_000.5,
        updated_at=1_800_000_010.25,
        finished_at=1_800_000_010.25,
        delay_ms=1200,
        execution_ms=3400,
        retries=2,
        progress={"step": 3},
        output=[{"text": "done"}, "\udfff", 1e300],
        error=None,
        worker_id="w-7",
        extra={"webhook": "https://example.invalid/hook"},
    )
    store.record_submitted(r)
    assert store.get("job-1") == r
    assert store.get("nope") is None


def test_update_upserts_a_job_never_seen_before(store: HistoryStore, clock: FakeClock) -> None:
    watched = JobRecord(job_id="w-1", endpoint_id="ep1", status=JobStatus.IN_PROGRESS)
    store.update(watched, raw={"id": "w-1", "status": "IN_PROGRESS"})
    got = store.get("w-1")
    assert got is not None and got.status is JobStatus.IN_PROGRESS
    # no submit time known: "first seen" stands in, so it sorts among recent jobs
    assert got.submitted_at == pytest.approx(clock.time())
    assert store.raw("w-1") == {"id": "w-1", "status": "IN_PROGRESS"}
    assert [s for _, s in store.status_log("w-1")] == ["IN_PROGRESS"]


def test_status_log_records_each_change_once(store: HistoryStore, clock: FakeClock) -> None:
    r = rec()
    store.record_submitted(r)
    clock.advance_sync(2)
    store.update(r.copy(status=JobStatus.IN_PROGRESS, updated_at=clock.time()))
    clock.advance_sync(1)
    store.update(r.copy(status=JobStatus.IN_PROGRESS, progress={"p": 50}))  # same status
    clock.advance_sync(3)
    store.update(r.copy(status=JobStatus.COMPLETED, output={"ok": 1}))
    log = store.status_log("job-1")
    assert [s for _, s in log] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    times = [t for t, _ in log]
    assert times == sorted(times) and times[-1] - times[0] == pytest.approx(6)
    final = store.get("job-1")
    assert final is not None and final.finished_at is not None  # filled in for a terminal job


def test_update_never_erases_what_it_does_not_know(store: HistoryStore) -> None:
    store.record_submitted(rec(input={"a": 1}))
    store.update(
        rec(status=JobStatus.COMPLETED, output={"big": "x" * 1000}, worker_id="w1", delay_ms=5),
        raw={"id": "job-1", "status": "COMPLETED"},
    )
    light = store.recent(10, with_output=False)[0]
    assert light.output is None
    # a later update made from a list row (no input, no output) or a 404 "expired" update
    store.update(light.copy(input=None, worker_id=None, delay_ms=None, expired=True))
    got = store.get("job-1")
    assert got is not None
    assert got.input == {"a": 1} and got.output == {"big": "x" * 1000}
    assert got.worker_id == "w1" and got.delay_ms == 5 and got.expired
    assert store.raw("job-1") == {"id": "job-1", "status": "COMPLETED"}


def test_retry_back_in_queue_clears_the_old_output(store: HistoryStore) -> None:
    store.record_submitted(rec())
    store.update(rec(status=JobStatus.FAILED, error="boom", output={"partial": 1}))
    store.update(rec(status=JobStatus.IN_QUEUE, retries=1))
    got = store.get("job-1")
    assert got is not None
    assert got.status is JobStatus.IN_QUEUE and got.output is None and got.error is None
    assert got.finished_at is None and got.retries == 1


def test_update_many_is_one_transaction(store: HistoryStore) -> None:
    store.update_many([(rec(f"j{i}"), {"id": f"j{i}"}) for i in range(50)])
    assert store.count() == 50 and store.raw("j7") == {"id": "j7"}


def test_large_output_round_trips(store: HistoryStore) -> None:
    big = {"image": "A" * 10_000_000, "list": list(range(1000))}
    store.record_submitted(rec())
    store.update(rec(status=JobStatus.COMPLETED, output=big))
    got = store.get("job-1")
    assert got is not None and got.output == big


_TEXT = st.text(
    alphabet=st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(output=_JSON, chunk=_JSON, inp=st.dictionaries(_TEXT, _JSON, max_size=4))
def test_any_json_round_trips_even_lone_surrogates(output: Any, chunk: Any, inp: dict) -> None:
    with HistoryStore(None) as s:
        s.record_submitted(rec(input=inp))
        s.update(rec(status=JobStatus.COMPLETED, output=output), raw={"output": output})
        s.append_chunks("job-1", 0, [chunk, chunk])
        got = s.get("job-1")
        assert got is not None
        assert got.input == inp
        # JSON null is stored as "no output": a completed job's output None stays None
        assert got.output == output
        assert s.chunks("job-1") == [chunk, chunk]
        assert s.raw("job-1") == {"output": output}


# ---------------------------------------------------------------- chunks


def test_chunks_are_ordered_and_idempotent_per_seq(store: HistoryStore) -> None:
    store.record_submitted(rec(mode="stream"))
    store.append_chunks("job-1", 0, ["a", "b", "c", "d", "e"])
    store.append_chunks("job-1", 3, ["X", "Y", "f", "g"])  # 3, 4 re-delivered: ignored
    store.append_chunks("job-1", 0, ["a"])
    store.append_chunks("job-1", 7, [])
    assert store.chunks("job-1") == ["a", "b", "c", "d", "e", "f", "g"]
    assert store.chunks("job-1", start=2, limit=3) == ["c", "d", "e"]
    assert store.chunks("job-1", start=99) == []
    got = store.get("job-1")
    assert got is not None and got.chunk_count == 7
    # the stream follower's in-memory record may lag behind: the count never goes down
    store.update(rec(mode="stream", status=JobStatus.IN_PROGRESS, chunk_count=2))
    got = store.get("job-1")
    assert got is not None and got.chunk_count == 7


def test_chunks_stored_before_the_job_row_are_counted(store: HistoryStore) -> None:
    store.append_chunks("early", 0, [{"t": 1}, {"t": 2}, {"t": 3}])
    store.update(rec("early", mode="stream", status=JobStatus.IN_PROGRESS))
    got = store.get("early")
    assert got is not None and got.chunk_count == 3
    assert store.chunks("early") == [{"t": 1}, {"t": 2}, {"t": 3}]


def test_many_chunks_go_in_fast(store: HistoryStore) -> None:
    store.record_submitted(rec(mode="stream"))
    t0 = time.perf_counter()
    for seq in range(0, 20_000, 100):
        store.append_chunks("job-1", seq, [{"token": f"t{seq + i}"} for i in range(100)])
    elapsed = time.perf_counter() - t0
    assert len(store.chunks("job-1")) == 20_000
    assert elapsed < 2.0, f"20,000 chunks took {elapsed:.2f} s"  # bench: ~0.06 s


# ---------------------------------------------------------------- queries


def test_recent_newest_first_with_limit_and_endpoint(store: HistoryStore) -> None:
    for i in range(10):
        store.record_submitted(rec(f"j{i}", endpoint_id=f"ep{i % 2}", submitted_at=1000.0 + i))
    assert [r.job_id for r in store.recent()] == [f"j{i}" for i in range(9, -1, -1)]
    assert [r.job_id for r in store.recent(3)] == ["j9", "j8", "j7"]
    assert [r.job_id for r in store.recent(10, endpoint_id="ep0")] == ["j8", "j6", "j4", "j2", "j0"]
    assert store.count("ep1") == 5


def test_active_lists_only_live_jobs(store: HistoryStore) -> None:
    store.record_submitted(rec("queued", submitted_at=1))
    store.record_submitted(rec("running", status=JobStatus.IN_PROGRESS, submitted_at=2))
    store.record_submitted(rec("odd", status=JobStatus.UNKNOWN, submitted_at=3))
    for done in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMED_OUT):
        store.record_submitted(rec(done.value, status=done))
    store.record_submitted(rec("gone", status=JobStatus.IN_QUEUE, expired=True))
    assert [r.job_id for r in store.active()] == ["odd", "running", "queued"]


def test_recent_inputs_are_distinct_newest_first(store: HistoryStore) -> None:
    inputs = [{"p": 1}, {"p": 2}, {"p": 1}, {"p": 3}]
    for i, inp in enumerate(inputs):
        store.record_submitted(rec(f"j{i}", input=inp, submitted_at=10.0 + i))
    store.record_submitted(rec("none", input=None, submitted_at=99))
    assert store.recent_inputs() == [{"p": 3}, {"p": 1}, {"p": 2}]
    assert store.recent_inputs(limit=1) == [{"p": 3}]


def test_prune_deletes_old_finished_jobs_with_their_chunks_and_log(
    store: HistoryStore, clock: FakeClock
) -> None:
    now = clock.time()
    store.record_submitted(
        rec("old-done", status=JobStatus.COMPLETED, submitted_at=now - 9000, finished_at=now - 8000)
    )
    store.append_chunks("old-done", 0, ["x", "y"])
    store.record_submitted(
        rec("old-expired", submitted_at=now - 9000, updated_at=now - 9000, expired=True)
    )
    store.record_submitted(rec("old-live", status=JobStatus.IN_PROGRESS, submitted_at=now - 9000))
    store.record_submitted(
        rec("new-done", status=JobStatus.FAILED, submitted_at=now - 100, finished_at=now - 50)
    )
    assert store.prune(3600) == 2
    assert {r.job_id for r in store.recent()} == {"old-live", "new-done"}
    assert store.chunks("old-done") == [] and store.status_log("old-done") == []
    assert store.prune(3600) == 0


# ---------------------------------------------------------------- files


def test_restart_shows_the_same_data(db: Path, clock: FakeClock) -> None:
    s = HistoryStore(db, clock=clock)
    s.record_submitted(rec(input={"x": 1}))
    s.update(rec(status=JobStatus.COMPLETED, output="done"))
    s.append_chunks("job-1", 0, [1, 2, 3])
    before = (s.recent(), s.status_log("job-1"), s.chunks("job-1"))
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.get("job-1")
    s2 = HistoryStore(db, clock=clock)
    assert (s2.recent(), s2.status_log("job-1"), s2.chunks("job-1")) == before
    s2.close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "history.sqlite3"
    old = os.umask(0)
    try:
        s = HistoryStore(path)
        s.record_submitted(rec())
    finally:
        os.umask(old)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    for side in ("-wal", "-shm"):
        sidecar = Path(str(path) + side)
        assert sidecar.exists() and mode(sidecar) == 0o600
    s.close()


def test_loose_existing_files_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    HistoryStore(path).close()
    os.chmod(path, 0o644)
    Path(str(path) + "-wal").write_bytes(b"")
    os.chmod(str(path) + "-wal", 0o666)
    s = HistoryStore(path)
    assert mode(path) == 0o600 and mode(Path(str(path) + "-wal")) == 0o600
    s.close()


def test_two_stores_on_one_file_write_concurrently(db: Path) -> None:
    a, b = HistoryStore(db), HistoryStore(db)
    errors: list[BaseException] = []

    def writer(s: HistoryStore, prefix: str) -> None:
        try:
            for i in range(150):
                s.record_submitted(rec(f"{prefix}{i}", submitted_at=1000.0 + i))
                s.append_chunks(f"{prefix}{i}", 0, [i])
                s.update(rec(f"{prefix}{i}", status=JobStatus.COMPLETED, submitted_at=1000.0 + i))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(s, p)) for s, p in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for s in (a, b):
        assert s.count() == 300 and not s.active()
        assert s.chunks("a149") == [149] and s.chunks("b0") == [0]
    a.close()
    b.close()


def test_one_store_shared_by_threads(store: HistoryStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                store.update(rec(f"t{n}-{i}", status=JobStatus.IN_PROGRESS))
                store.recent(20)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and store.count() == 400


def test_memory_store_needs_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = HistoryStore(None)
    s.record_submitted(rec())
    assert s.get("job-1") is not None and s.writable
    assert list(tmp_path.iterdir()) == []
    s.close()


# ---------------------------------------------------------------- errors


def _one_line_error(err: StoreError, *parts: str) -> None:
    msg = str(err)
    assert "\n" not in msg and "Traceback" not in msg
    # raised `from None` (or outside any except): no chained traceback to show
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    for p in parts:
        assert p in msg, msg


def test_locked_by_another_process_is_a_clear_error(db: Path) -> None:
    s = HistoryStore(db, busy_timeout=0.2)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError) as ei:
            s.record_submitted(rec())
        _one_line_error(
            ei.value, "cannot write job history at", str(db), "locked by another process"
        )
        assert s.recent() == []  # WAL: reading still works while the other one writes
    finally:
        other.execute("ROLLBACK")
        other.close()
    s.record_submitted(rec())
    assert s.count() == 1
    s.close()


def test_disk_full_is_a_clear_error_and_nothing_half_written(store: HistoryStore) -> None:
    store.record_submitted(rec())
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # what a full disk looks like
    with pytest.raises(StoreError) as ei:
        store.update(rec(status=JobStatus.COMPLETED, output="x" * 1_000_000))
    _one_line_error(ei.value, "cannot write job history at", "disk is full")
    got = store.get("job-1")
    assert got is not None and got.status is JobStatus.IN_QUEUE and got.output is None
    assert [s for _, s in store.status_log("job-1")] == ["IN_QUEUE"]


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(StoreError) as ei:
        HistoryStore(path)
    _one_line_error(ei.value, "cannot open job history at", "damaged or not an rpdash history")


def test_damage_found_while_reading_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    s = HistoryStore(path)
    s.update_many(
        [(rec(f"j{i}", output="x" * 3000, status=JobStatus.COMPLETED), None) for i in range(200)]
    )
    s.close()
    data = bytearray(path.read_bytes())
    for off in range(4096 * 3, len(data), 4096):  # scribble over every page but the first two
        data[off : off + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as ei:
        s2 = HistoryStore(path)
        s2.recent(1000)
        s2.close()
    _one_line_error(ei.value, "job history at", "damaged")


def test_directory_in_the_way_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.mkdir()
    with pytest.raises(StoreError) as ei:
        HistoryStore(path)
    _one_line_error(ei.value, "cannot write job history at")


def test_file_from_a_newer_rpdash_opens_read_only(db: Path) -> None:
    HistoryStore(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    s = HistoryStore(db)
    assert not s.writable and s.problem is not None and "newer rpdash" in str(s.problem)
    assert s.recent() == []
    with pytest.raises(StoreError, match="newer rpdash"):
        s.record_submitted(rec())
    s.close()


# A read-only file, checked by a user who cannot write it (tests/helpers.py).



@pytest.mark.parametrize("dir_writable", [False, True], ids=["ro-dir", "rw-dir"])
def test_read_only_file_is_a_clear_error_and_still_readable(dir_writable: bool) -> None:
    # Not tmp_path: as root its parents are 0700, and the check runs as another user.
    base = Path(tempfile.mkdtemp(prefix="rpdash-ro-"))
    try:
        os.chmod(base, 0o755)
        path = base / "history.sqlite3"
        s = HistoryStore(path)
        s.record_submitted(rec(input={"k": "v"}))
        s.append_chunks("job-1", 0, ["c0"])
        s.close()
        os.chmod(path, 0o444)
        os.chmod(base, 0o777 if dir_writable else 0o555)

        def check() -> dict[str, Any]:
            out: dict[str, Any] = {}
            ro = HistoryStore(path)
            out["writable"] = ro.writable
            out["problem"] = str(ro.problem)
            out["get"] = ro.get("job-1").input  # type: ignore[union-attr]
            out["chunks"] = ro.chunks("job-1")
            try:
                ro.update(rec(status=JobStatus.COMPLETED))
            except StoreError as e:
                out["write_error"] = str(e)
            ro.close()
            try:
                HistoryStore(path, readonly_fallback=False)
            except StoreError as e:
                out["strict_error"] = str(e)
            return out

        out = as_user_who_cannot_write(check)
    finally:
        os.chmod(base, 0o755)
        for p in base.iterdir():
            p.unlink()
        base.rmdir()
    assert "child_error" not in out, out
    assert out["writable"] is False
    assert out["get"] == {"k": "v"} and out["chunks"] == ["c0"]
    for key in ("problem", "write_error", "strict_error"):
        msg = out[key]
        assert msg.startswith(f"cannot write job history at {path}"), msg
        assert "read-only" in msg and "\n" not in msg
    assert out["problem"].endswith("showing it read-only")


# ---------------------------------------------------------------- crash safety

_WRITER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    from rpdash.store import HistoryStore
    from rpdash.core.records import JobRecord
    from rpdash.core.models import JobStatus
    s = HistoryStore({path!r})
    deadline = time.monotonic() + 30  # stops by itself if never killed
    i = 0
    while time.monotonic() < deadline:
        r = JobRecord(job_id=f"k{{i}}", endpoint_id="ep", input={{"i": i}},
                      submitted_at=1000.0 + i)
        s.record_submitted(r)
        s.append_chunks(r.job_id, 0, [{{"tok": n}} for n in range(50)])
        s.update(r.copy(status=JobStatus.COMPLETED, output={{"i": i, "pad": "x" * 2000}}))
        print(i, flush=True)
        i += 1
    """
)


def test_kill_9_during_writes_leaves_a_sound_file(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER.format(root=str(ROOT), path=str(path)))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    last = -1
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            last = int(line)
            if last >= 300:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert last >= 300 and proc.returncode == -signal.SIGKILL

    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    s = HistoryStore(path)
    # every job the writer reported as done is there, complete (synchronous=NORMAL in WAL
    # mode loses nothing committed when only the process dies)
    for i in (0, last // 2, last):
        got = s.get(f"k{i}")
        assert got is not None and got.status is JobStatus.COMPLETED and got.output["i"] == i
        assert len(s.chunks(f"k{i}")) == 50 and got.chunk_count == 50
    s.record_submitted(rec("after-crash"))  # and it is writable again
    s.close()


def test_history_in_a_read_only_directory_is_a_clear_error() -> None:
    base = Path(tempfile.mkdtemp(prefix="rpdash-ro-"))
    try:
        os.chmod(base, 0o555)
        path = base / "history.sqlite3"

        def check() -> dict[str, Any]:
            try:
                HistoryStore(path)
            except StoreError as e:
                return {"error": str(e)}
            return {"error": None}

        out = as_user_who_cannot_write(check)
    finally:
        os.chmod(base, 0o755)
        base.rmdir()
    assert out["error"] == (
        f"cannot write job history at {path}: cannot create the file "
        "(its directory is not writable)"
    )


def _open_and_write_at_once(path: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    store = HistoryStore(path)
    try:
        if not store.writable:
            results.put(store.problem.message if store.problem else "read-only")
            return
        store.record_submitted(JobRecord(job_id=f"job-{os.getpid()}", endpoint_id="ep"))
        results.put(None)
    finally:
        store.close()


def test_two_processes_creating_a_new_history_at_once_both_can_write(tmp_path: Path):
    """Two rpdash started together on a new history: SQLite answers the switch to WAL with
    "database is locked" at once (no busy wait) while the other converts the file; neither
    may fall back to read-only. (Before the fix, about 4 starts in 10 failed.)"""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    failures: list[str] = []
    for trial in range(25):
        path = str(tmp_path / f"t{trial}" / "history.sqlite3")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_open_and_write_at_once, args=(path, barrier, results))
                 for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        failures += [o for o in outcomes if o is not None]
        with HistoryStore(path) as store:
            assert len(store.recent(10)) == 2
    assert failures == []
