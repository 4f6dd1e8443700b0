"""Shared tools of the reliability suite (issue 4): a simulator with a distinctive key, the
headless CLI run in-process on a clock that never sleeps, a TCP relay that can take the API
away and bring it back, and the tally behind the counts in the issue note.

The tally is printed at the end of a run that includes this suite ("reliability: faults
tried N, bad inputs tried M, crashes 0, ids lost 0"): every test adds what it really did.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rpdash.sim.server import SimServer

#: distinctive, so that a leak is visible anywhere it lands
KEY = "rp_RELIABILITY0SECRET0key0a1b2c3d4e5f"

TALLY: dict[str, int] = {"faults": 0, "bad_inputs": 0, "crashes": 0, "ids_checked": 0,
                         "ids_lost": 0, "unknowable": 0}


def tally(kind: str, n: int = 1) -> None:
    TALLY[kind] += n


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TALLY["faults"] or TALLY["bad_inputs"]:
        terminalreporter.write_line(
            f"reliability: faults tried {TALLY['faults']}, bad inputs tried "
            f"{TALLY['bad_inputs']}, crashes {TALLY['crashes']}, submitted ids checked "
            f"{TALLY['ids_checked']}, ids lost {TALLY['ids_lost']} (plus "
            f"{TALLY['unknowable']} whose /run answer an injected drop destroyed: rpdash never "
            "learned them, said so, and did not resend)"
        )


# ---------------------------------------------------------------------------- clocks


class InstantClock:
    """A fake clock for the CLI: every wait returns at once and is recorded, and time moves
    on by the amount waited (so deadlines still work)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += max(0.0, seconds)
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------- simulator


@pytest.fixture
def rsim(sim_factory: Callable[..., SimServer]) -> SimServer:
    """Scenario "default" (endpoints ``mock`` and ``mock-stream``), key ``KEY``, fixed seed."""
    return sim_factory(api_key=KEY, seed=4)


def engine_status(sim: SimServer, endpoint: str, job_id: str) -> str | None:
    return sim.call(lambda: (j := sim.engine.find_job(endpoint, job_id)) and j.status)


def sim_ids(sim: SimServer, endpoint: str) -> list[str]:
    return sim.call(lambda: list(sim.engine.endpoint(endpoint).jobs))


def requests_seen(sim: SimServer) -> int:
    return sim.call(lambda: sim.app.requests)


def history_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as c:
        return {r[0] for r in c.execute("SELECT job_id FROM jobs")}


def check_ids_kept(submitted: list[str] | set[str], path: Path) -> None:
    """Every id the simulator accepted is in the history (counted for the issue note)."""
    have = history_ids(path)
    lost = [i for i in submitted if i not in have]
    tally("ids_checked", len(submitted))
    tally("ids_lost", len(lost))
    assert not lost, f"ids missing from the history: {lost}"


# ---------------------------------------------------------------------------- the CLI


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    clock: InstantClock
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lines = [ln for ln in self.err.splitlines() if ln.strip()]

    @property
    def errors(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("rpdash: error: ")]

    @property
    def retry_notes(self) -> list[str]:
        return [ln for ln in self.lines if "; retrying in " in ln]


@pytest.fixture
def cli(rsim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """``cli(*argv, **env)``: ``rpdash`` run in this process (same code path as the console
    script) with the key and base URL of ``rsim``, data in tmp_path, and an InstantClock,
    so retries and Retry-After waits cost no real time. Checks on every run: no traceback,
    the key nowhere in the output."""
    import rpdash.cli as cli_mod

    monkeypatch.chdir(tmp_path)
    for k in ("RUNPOD_ENDPOINT_ID", "RPDASH_HISTORY_PATH", "RPDASH_READONLY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RPDASH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("RPDASH_DATA_DIR", str(tmp_path / "data"))

    def run(*argv: str, stdin: str = "", **env: str | None) -> CliResult:
        base: dict[str, str | None] = {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": rsim.base_url}
        base.update(env)
        for k, v in base.items():
            if v is None:
                monkeypatch.delenv(k, raising=False)
            else:
                monkeypatch.setenv(k, v)
        clock = InstantClock()
        monkeypatch.setattr(cli_mod, "CLOCK", clock)
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_mod.main(list(argv))
            except BaseException as exc:  # noqa: BLE001 - that is a crash
                tally("crashes")
                raise AssertionError(f"rpdash crashed: {exc!r}") from exc
        res = CliResult(code, out.getvalue(), err.getvalue(), clock)
        assert "Traceback" not in res.err and "Traceback" not in res.out, res.err
        assert KEY not in res.out and KEY not in res.err, "the API key was printed"
        if res.code == cli_mod.EXIT_API and any("this is a bug in rpdash" in ln for ln in res.errors):
            tally("crashes")
            raise AssertionError(f"an unexpected exception reached the last resort: {res.err}")
        return res

    run.sim = rsim  # type: ignore[attr-defined]
    run.history = tmp_path / "data" / "history.sqlite3"  # type: ignore[attr-defined]
    return run


# ---------------------------------------------------------------------------- outages


class Relay:
    """A TCP relay on 127.0.0.1 in front of the simulator. ``down()`` closes the listener and
    cuts every open connection (the API went away: connection refused); ``up()`` listens
    on the same port again."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def up(self) -> Relay:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(50):
            try:
                ls.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        ls.listen(64)
        self._listener = ls
        self._thread = threading.Thread(target=self._accept, args=(ls,), daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        ls, self._listener = self._listener, None
        if ls is not None:
            with contextlib.suppress(OSError):
                ls.shutdown(socket.SHUT_RDWR)
            ls.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        if self._thread is not None:
            self._thread.join(2)

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def relay(rsim: SimServer) -> Iterator[Relay]:
    r = Relay(rsim.port).up()
    try:
        yield r
    finally:
        r.down()
