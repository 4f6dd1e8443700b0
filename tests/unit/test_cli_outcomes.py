"""What the headless commands answer at the edges: exit codes of ended jobs, the overall
deadline, bad input, a URL where an endpoint id belongs, the simulator's host, plurals, and
the history that ``rpdash metrics`` counts."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.unit.test_cli import KEY, _env, cli, error_line, ksim  # noqa: F401 - fixtures
from tests.unit.test_client import park_jobs


def _job_id(p) -> str:
    import re

    m = re.search(r"job (\S+) submitted", p.stderr)
    assert m, p.stderr
    return m.group(1)


# ---------------------------------------------------------------------------- 13.16


def test_status_exits_1_for_a_failed_or_cancelled_job_and_0_otherwise(cli):  # noqa: F811
    failed = _job_id(cli("run", "--sync", "--endpoint", "mock", "--input", '{"mock_error": true}'))
    for extra in ([], ["--follow"], ["--json"]):
        p = cli("status", failed, "--endpoint", "mock", *extra)
        assert p.returncode == 1, (extra, p.stderr)
        assert "FAILED" in p.stdout
    queued = cli("run", "--endpoint", "mock", "--input", '{"mock_delay": 30}').stdout.strip()
    assert cli("status", queued, "--endpoint", "mock").returncode == 0  # not ended yet
    assert cli("cancel", queued, "--endpoint", "mock").returncode == 0
    p = cli("status", queued, "--endpoint", "mock")
    assert p.returncode == 1 and "status:    CANCELLED" in p.stdout


# ---------------------------------------------------------------------------- 13.17


@pytest.fixture
def silent_server() -> Iterator[str]:
    """127.0.0.1:PORT accepts connections (the kernel completes them) and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    try:
        yield f"127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def test_a_silent_server_is_given_up_on_at_the_timeout(cli, silent_server):  # noqa: F811
    base = f"http://{silent_server}/v2"
    t0 = time.monotonic()
    p = cli("health", "--endpoint", "mock", "--timeout", "1", RUNPOD_BASE_URL=base)
    took = time.monotonic() - t0
    assert p.returncode == 3 and took < 15
    line = error_line(p)
    assert f"`rpdash health` ran out of time: no answer from {silent_server} within --timeout 1 s" in line
    p = cli("workers", "--endpoint", "mock", "--timeout", "1", "--control-url",
            f"http://{silent_server}", RUNPOD_BASE_URL=base)  # fmt: skip
    assert p.returncode == 3 and "`rpdash workers` ran out of time" in error_line(p)
    # following a job: the job did not finish in time (exit 1), with how to follow it
    p = cli("status", "j-u1", "--endpoint", "mock", "--follow", "--timeout", "1",
            RUNPOD_BASE_URL=base)  # fmt: skip
    assert p.returncode == 1
    assert "job j-u1 on endpoint mock did not finish within --timeout 1 s" in error_line(p)
    assert "rpdash status j-u1 --endpoint mock --follow" in p.stderr


def test_reads_stop_at_the_default_deadline(ksim, tmp_path, silent_server, monkeypatch,  # noqa: F811
                                            capsys):
    import rpdash.cli
    from rpdash.cli import deadline

    monkeypatch.setattr(deadline, "READ_TIMEOUT_S", 1.0)
    for k, v in _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=f"http://{silent_server}/v2").items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    assert rpdash.cli.main(["health", "--endpoint", "mock"]) == 3
    err = capsys.readouterr().err
    assert "within --timeout 1 s (the overall deadline of the command, the default for reads" in err


# ---------------------------------------------------------------------------- 17.8


@pytest.mark.parametrize("text", [
    "[" * 100_000,                                    # unclosed
    '{"a": ' + "[" * 5000 + "]" * 5000 + "}",         # valid JSON, too deep to handle
], ids=["unclosed-100000", "closed-5000"])  # fmt: skip
def test_deeply_nested_input_is_bad_input_not_a_bug(cli, tmp_path, text):  # noqa: F811
    (tmp_path / "deep.json").write_text(text)
    before = cli.sim.call(lambda: cli.sim.app.requests)
    p = cli("run", "--endpoint", "mock", "--input", "@deep.json")
    assert p.returncode == 2
    assert "deep.json nests lists and objects more than 500 levels deep" in error_line(p)
    assert "bug" not in p.stderr
    assert cli.sim.call(lambda: cli.sim.app.requests) == before  # nothing was sent


# ---------------------------------------------------------------------------- 13.18, sim host


def test_a_url_given_as_endpoint_is_explained(cli):  # noqa: F811
    p = cli("health", "--endpoint", "http://127.0.0.1:8000/v2/mock")
    assert p.returncode == 2
    line = error_line(p)
    assert "looks like a URL" in line and "RUNPOD_BASE_URL" in line
    assert "--base-url http://127.0.0.1:8000/v2 --endpoint mock" in line
    p = cli("health", RUNPOD_ENDPOINT_ID="https://api.runpod.ai/v2/abc123")
    assert p.returncode == 2 and "RUNPOD_ENDPOINT_ID" in error_line(p)


def test_sim_on_a_public_address_says_it_binds_loopback_only(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rpdash", "sim", "--host", "0.0.0.0", "--port", "0"],
                       cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert p.returncode == 2
    assert "binds loopback addresses only" in error_line(p)
    assert "allow_remote" not in p.stderr


# ---------------------------------------------------------------------------- 13.22


def test_counts_are_worded_in_singular_and_plural(cli):  # noqa: F811
    park_jobs(cli.sim)
    for _ in range(2):
        cli("run", "--endpoint", "mock")
    p = cli("purge", "--endpoint", "mock", "--yes")
    assert p.stdout.strip() == "removed 2 queued jobs from endpoint mock"
    p = cli("purge", "--endpoint", "mock", "--yes")
    assert p.stdout.strip() == "removed 0 queued jobs from endpoint mock"


def test_metrics_count_every_job_that_ended_through_the_cli(cli):  # noqa: F811
    def ran(*args: str) -> str:
        p = cli("run", "--endpoint", "mock", *args)
        assert p.returncode in (0, 1), p.stderr
        return p.stdout.strip() if p.stdout.strip() and "--sync" not in args else _job_id(p)

    ran("--sync")                                                   # 1 completed
    assert cli("run", "--stream", "--endpoint", "mock-stream", "--input",
               '{"mock_return": ["a"]}').returncode == 0              # 2 completed (stream)
    followed = ran()
    assert cli("status", followed, "--endpoint", "mock", "--follow").returncode == 0  # 3
    cancelled = ran("--input", '{"mock_delay": 30}')
    assert cli("cancel", cancelled, "--endpoint", "mock").returncode == 0         # 4 cancelled
    failed = ran("--sync", "--input", '{"mock_error": true}')                     # 5 failed
    assert cli("retry", failed, "--endpoint", "mock", "--follow").returncode == 1  # (the same job)
    looked = ran()
    deadline = time.monotonic() + 20
    while cli("status", looked, "--endpoint", "mock").stdout.count("COMPLETED") == 0:  # 6
        assert time.monotonic() < deadline
        time.sleep(0.2)
    p = cli("metrics", "--json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert sum(m["finished"] for m in got) == 6
    assert sum(m["cancelled"] for m in got) == 1 and sum(m["failed"] for m in got) == 1
