"""The headless CLI, run as a user runs it: ``python -m rpdash ...`` in a subprocess, against
a simulator on 127.0.0.1. Asserts on what a user sees: stdout, stderr, exit code."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_client import park_jobs, sim_job

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-cli-test-DISTINCT-7f3a9c"


def _env(tmp: Path, **extra: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "RPDASH_DATA_DIR": str(tmp / "data"),
        "PYTHONPATH": str(ROOT),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for k, v in extra.items():
        if v is not None:
            env[k] = v
    return env


@pytest.fixture
def ksim(sim_factory):
    """A simulator whose key is distinctive, so a leak would be visible in any output."""
    return sim_factory(api_key=KEY)


@pytest.fixture
def cli(ksim, tmp_path):
    """cli(*args, input=None, **env) -> CompletedProcess; key and base URL from the env."""

    def run(*args: str, input: str | None = None, timeout: float = 60, **env: str | None):
        base = {"RUNPOD_API_KEY": KEY, "RUNPOD_BASE_URL": ksim.base_url}
        base.update(env)
        proc = subprocess.run(
            [sys.executable, "-m", "rpdash", *args],
            cwd=tmp_path, env=_env(tmp_path, **base), input=input,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert KEY not in proc.stdout and KEY not in proc.stderr, "the API key was printed"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    run.sim = ksim
    return run


def error_line(proc) -> str:
    # progress lines of transient failures being retried are not errors
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "; retrying in " not in ln]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rpdash: error: "), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------- run


def test_run_prints_only_the_job_id_then_status_follows_it(cli):
    p = cli("run", "--endpoint", "mock", "--input", '{"mock_return": "hello"}')
    assert p.returncode == 0 and p.stderr == ""
    job_id = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f-]+-u1", job_id)
    s = cli("status", job_id, "--endpoint", "mock", "--follow")
    assert s.returncode == 0
    assert f"id:        {job_id}" in s.stdout
    assert "status:    COMPLETED" in s.stdout and "hello" in s.stdout


def test_run_json_and_endpoint_from_environment(cli):
    p = cli("run", "--json", "--input", "{}", RUNPOD_ENDPOINT_ID="mock")
    assert p.returncode == 0
    doc = json.loads(p.stdout)
    assert doc["status"] == "IN_QUEUE" and doc["id"]


def test_run_sync_prints_output_and_reports_on_stderr(cli):
    p = cli("run", "--sync", "--endpoint", "mock", "--input", '{"mock_return": {"n": 5}}')
    assert p.returncode == 0
    assert json.loads(p.stdout) == {"n": 5}
    m = re.search(r"rpdash: job (\S+) submitted to endpoint mock", p.stderr)
    # submitted with /run (its id known at once, its result kept 30 min), not /runsync
    assert m and not m.group(1).startswith("sync-"), p.stderr
    assert "COMPLETED" in p.stderr


def test_run_sync_failed_job_exits_1_with_the_reason(cli):
    p = cli("run", "--sync", "--endpoint", "mock", "--input", '{"mock_error": true}')
    assert p.returncode == 1
    assert p.stdout == ""
    assert re.search(r"rpdash: job \S+ FAILED \(.*\): Exception: Mock error$", p.stderr.strip())


def test_run_sync_json_prints_the_job(cli):
    p = cli("run", "--sync", "--json", "--endpoint", "mock", "--input", '{"mock_error": true}')
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["status"] == "FAILED" and "Mock error" in doc["error"]


def test_run_stream_prints_chunks_as_they_arrive(cli):
    items = ["one", "two", {"three": 3}]
    p = cli("run", "--stream", "--endpoint", "mock-stream", "--input",
            json.dumps({"mock_return": items, "mock_delay": 0.05}))  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["one", "two", '{"three": 3}']
    assert "COMPLETED" in p.stderr


def test_run_stream_json_lines(cli):
    p = cli("run", "--stream", "--json", "--endpoint", "mock-stream",
            "--input", '{"mock_return": ["a", "b"]}')  # fmt: skip
    assert p.returncode == 0
    docs = [json.loads(line) for line in p.stdout.splitlines()]
    assert docs[:2] == [{"output": "a"}, {"output": "b"}]
    assert docs[2]["status"] == "COMPLETED" and docs[2]["output"] == ["a", "b"]


def test_run_stream_failed_generator_exits_1(cli):
    p = cli("run", "--stream", "--endpoint", "mock-stream",
            "--input", '{"mock_return": ["a", {"error": "kaput"}]}')  # fmt: skip
    assert p.returncode == 1
    assert p.stdout.splitlines() == ["a"]
    assert "FAILED" in p.stderr and "kaput" in p.stderr


def test_run_follow_timeout_exits_1_and_keeps_the_id(cli):
    p = cli("run", "--endpoint", "mock", "--follow", "--wait", "1000", "--timeout", "1",
            "--input", '{"mock_delay": 60}')  # fmt: skip
    assert p.returncode == 1
    m = re.search(r"job (\S+) submitted", p.stderr)
    assert m, p.stderr
    job_id = m.group(1)
    assert f"rpdash: error: job {job_id} on endpoint mock did not finish within 1 s" in p.stderr
    assert sim_job(cli.sim, "mock", job_id).status in ("IN_QUEUE", "IN_PROGRESS")


def test_run_input_from_file_and_stdin(cli, tmp_path):
    (tmp_path / "in.json").write_text('{"mock_return": "from-file"}')
    p = cli("run", "--sync", "--endpoint", "mock", "--input", "@in.json")
    assert p.returncode == 0 and p.stdout.strip() == "from-file"
    p = cli("run", "--sync", "--endpoint", "mock", "--input", "@-",
            input='{"mock_return": "from-stdin"}')  # fmt: skip
    assert p.returncode == 0 and p.stdout.strip() == "from-stdin"


def test_run_policy_and_webhook_reach_the_server(cli):
    p = cli("run", "--endpoint", "mock", "--input", "{}", "--execution-timeout", "60000",
            "--ttl", "600000", "--low-priority", "--webhook", "https://hook.example.invalid/x")  # fmt: skip
    assert p.returncode == 0
    job = sim_job(cli.sim, "mock", p.stdout.strip())
    assert job.exec_timeout_s == 60 and job.ttl_s == 600 and job.low_priority is True
    assert job.webhook == "https://hook.example.invalid/x"


def test_endpoint_name_from_config_file(cli, tmp_path):
    cfg = tmp_path / "rpdash.toml"
    cfg.write_text('[endpoints]\nfast = "mock"\n')
    cfg.chmod(0o600)
    p = cli("health", "--endpoint", "fast", "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("endpoint mock\n")


# ---------------------------------------------------------------------------- other commands


def test_status_of_unknown_job_is_exit_3_one_line(cli):
    p = cli("status", "nope-u1", "--endpoint", "mock")
    assert p.returncode == 3
    assert error_line(p).startswith("rpdash: error: job nope-u1 not found on endpoint mock")


def test_cancel_several_jobs(cli):
    park_jobs(cli.sim)
    ids = [cli("run", "--endpoint", "mock").stdout.strip() for _ in range(2)]
    p = cli("cancel", *ids, "--endpoint", "mock")
    assert p.returncode == 0
    assert p.stdout.splitlines() == [f"{i} CANCELLED" for i in ids]
    p = cli("cancel", ids[0], "missing-u1", "--endpoint", "mock", "--json")
    assert p.returncode == 3
    assert json.loads(p.stdout.splitlines()[0])["id"] == ids[0]
    assert "missing-u1 not found" in error_line(p)


def test_retry_failed_job(cli):
    p = cli("run", "--sync", "--json", "--endpoint", "mock", "--input", '{"mock_error": true}')
    job_id = json.loads(p.stdout)["id"]
    # /runsync results are kept 1 minute: plenty for the retry
    p = cli("retry", job_id, "--endpoint", "mock")
    assert p.returncode == 0 and p.stdout.strip() == f"{job_id} IN_QUEUE"
    p = cli("retry", job_id, "--endpoint", "mock", "--follow")  # fails again: exit 1
    assert p.returncode == 1 and "FAILED" in p.stderr
    ok = json.loads(cli("run", "--sync", "--json", "--endpoint", "mock").stdout)["id"]
    p = cli("retry", ok, "--endpoint", "mock")  # a COMPLETED job cannot be retried
    assert p.returncode == 3 and "only FAILED or TIMED_OUT" in error_line(p)


def test_health_text_and_json(cli):
    p = cli("health", "--endpoint", "mock")
    assert p.returncode == 0
    assert "jobs:    in queue 0" in p.stdout and "workers: idle" in p.stdout
    p = cli("health", "--endpoint", "mock", "--json")
    doc = json.loads(p.stdout)
    assert set(doc) >= {"jobs", "workers"}


def test_purge_needs_yes_without_a_terminal(cli):
    park_jobs(cli.sim)
    cli("run", "--endpoint", "mock")
    p = cli("purge", "--endpoint", "mock")
    assert p.returncode == 2
    assert "pass --yes" in error_line(p)
    assert cli.sim.call(lambda: cli.sim.engine.health("mock"))["jobs"]["inQueue"] == 1
    p = cli("purge", "--endpoint", "mock", "--yes")
    assert p.returncode == 0 and p.stdout.strip() == "removed 1 queued job from endpoint mock"


def _purge_on_a_terminal(sim, tmp_path, answer: bytes):
    """Run `rpdash purge` with a pseudo-terminal as stdin and type ``answer``."""
    import pty

    env = _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=sim.base_url)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpdash", "purge", "--endpoint", "mock"],
        stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
    )  # fmt: skip
    os.close(slave)
    try:
        prompt = b""
        deadline = time.monotonic() + 15
        while b"[y/N]" not in prompt and time.monotonic() < deadline:
            chunk = os.read(proc.stderr.fileno(), 1024)
            if not chunk:
                break
            prompt += chunk
        os.write(master, answer)
        out, err = proc.communicate(timeout=15)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, prompt.decode(), out.decode(), err.decode()


def test_purge_asks_on_a_terminal(ksim, tmp_path):
    park_jobs(ksim)
    ksim.call(lambda: ksim.engine.submit("mock", {"input": {}}))
    rc, prompt, out, err = _purge_on_a_terminal(ksim, tmp_path, b"n\n")
    assert "Purge every queued job of endpoint mock?" in prompt
    assert rc == 0 and out == "" and "nothing purged" in err
    assert ksim.call(lambda: ksim.engine.health("mock"))["jobs"]["inQueue"] == 1
    rc, prompt, out, err = _purge_on_a_terminal(ksim, tmp_path, b"y\n")
    assert rc == 0 and out.strip() == "removed 1 queued job from endpoint mock"


def test_readonly_refuses_changes(cli):
    p = cli("cancel", "x-u1", "--endpoint", "mock", RPDASH_READONLY="1")
    assert p.returncode == 2 and "read-only" in error_line(p)
    p = cli("--readonly", "run", "--endpoint", "mock")
    assert p.returncode == 2
    assert cli("health", "--endpoint", "mock", RPDASH_READONLY="1").returncode == 0


# ---------------------------------------------------------------------------- exit 2 / 3


@pytest.mark.parametrize(
    "args, env, fragment",
    [
        (["health"], {}, "no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID"),
        (["health", "--endpoint", "../etc"], {}, "not an endpoint id"),
        (["run", "--endpoint", "mock", "--input", "{nope"], {}, "--input is not valid JSON"),
        (["run", "--endpoint", "mock", "--input", "[1, 2]"], {}, "must be a JSON object"),
        (["run", "--endpoint", "mock", "--input", "@missing.json"], {}, "cannot read --input"),
        (["run", "--endpoint", "mock", "--ttl", "5"], {}, "--ttl must be"),
        (["run", "--endpoint", "mock", "--webhook", "ftp://x"], {}, "--webhook must be"),
        (["health", "--endpoint", "mock"], {"RUNPOD_API_KEY": ""}, "no API key"),
        (["health", "--endpoint", "mock"], {"RUNPOD_BASE_URL": "mock"}, "RUNPOD_BASE_URL"),
        (["health", "--endpoint", "mock", "--base-url", "http://api.example.com/v2"], {},
         "refusing to send the API key over plain http to api.example.com"),
        (["run", "--endpoint", "mock", "--input", "@big.json"], {}, "/run accepts at most 10 MB"),
    ],
)
def test_usage_and_config_errors_exit_2(cli, tmp_path, args, env, fragment):
    if "@big.json" in args:
        (tmp_path / "big.json").write_text(json.dumps({"b": "x" * 10_000_001}))
    before = cli.sim.call(lambda: cli.sim.app.requests)
    p = cli(*args, **env)
    assert p.returncode == 2
    assert fragment in error_line(p)
    assert cli.sim.call(lambda: cli.sim.app.requests) == before  # nothing was sent


def test_argparse_usage_error_exits_2(cli):
    p = cli("frobnicate")
    assert p.returncode == 2 and "invalid choice" in p.stderr
    p = cli("run", "--wait", "soon")
    assert p.returncode == 2


def test_wrong_key_exits_3_without_printing_it(cli):
    p = cli("health", "--endpoint", "mock", RUNPOD_API_KEY="sk-WRONG-but-secret")
    assert p.returncode == 3
    line = error_line(p)
    assert line == "rpdash: error: RunPod rejected the API key (401): check RUNPOD_API_KEY"
    assert "sk-WRONG-but-secret" not in p.stdout + p.stderr


def test_unreachable_exits_3(cli):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = cli("health", "--endpoint", "mock", RUNPOD_BASE_URL=f"http://127.0.0.1:{port}/v2")
    assert p.returncode == 3
    assert "cannot reach 127.0.0.1" in error_line(p)


def test_server_text_is_neutralised(cli):
    evil = "\x1b[2J\x1b]0;pwned\x07ok\x9b31m\u202e"
    p = cli("run", "--sync", "--endpoint", "mock", "--input", json.dumps({"mock_return": evil}))
    assert p.returncode == 0
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", p.stdout)
    assert "\\x1b[2J" in p.stdout and "\\x07ok" in p.stdout and "\\u202e" in p.stdout
    p = cli("run", "--sync", "--json", "--endpoint", "mock", "--input",
            json.dumps({"mock_return": evil}))  # fmt: skip
    assert p.stdout.isascii() and json.loads(p.stdout)["output"] == evil


# ---------------------------------------------------------------------------- start-up, signals

_PROBE = (
    "import sys\n"
    "from rpdash.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "heavy = [m for m in ('textual', 'httpx', 'pydantic') if m in sys.modules]\n"
    "print('MODULES=' + ','.join(heavy), file=sys.stderr)\n"
    "raise SystemExit(rc)\n"
)


def _probe(cli_env: dict[str, str], cwd: Path, *args: str) -> tuple[int, set[str]]:
    p = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=cwd, env=cli_env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    m = re.search(r"MODULES=(.*)", p.stderr)
    assert m, p.stderr
    return p.returncode, set(filter(None, m.group(1).split(",")))


def test_help_imports_nothing_heavy(tmp_path):
    rc, mods = _probe(_env(tmp_path), tmp_path, "--help")
    assert rc == 0 and mods == set()
    rc, mods = _probe(_env(tmp_path), tmp_path, "run", "--help")
    assert rc == 0 and mods == set()


def test_headless_commands_never_import_textual(ksim, tmp_path):
    env = _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=ksim.base_url)
    rc, mods = _probe(env, tmp_path, "health", "--endpoint", "mock")
    assert rc == 0 and "textual" not in mods and "httpx" in mods
    rc, mods = _probe(env, tmp_path, "run", "--sync", "--endpoint", "mock-stream")
    assert rc == 0 and "textual" not in mods


def test_ctrl_c_exits_130_and_prints_the_job_id(ksim, tmp_path):
    env = _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=ksim.base_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpdash", "run", "--endpoint", "mock", "--follow",
         "--input", '{"mock_delay": 60}'],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        first = proc.stderr.readline()
        m = re.search(r"job (\S+) submitted", first)
        assert m, first
        time.sleep(0.3)  # now inside a /status-sync long-poll
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(15)
        rest = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 130
    assert f"interrupted; job {m.group(1)} keeps running" in rest
    assert "Traceback" not in rest


def test_sim_command_serves_until_interrupted(tmp_path):
    env = _env(tmp_path, RUNPOD_API_KEY="k-sim")
    sim = subprocess.Popen(
        [sys.executable, "-m", "rpdash", "sim", "--port", "0", "--api-key", "k-sim"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = sim.stdout.readline()
        m = re.search(r"(http://127\.0\.0\.1:\d+/v2)", line)
        assert m, line + sim.stderr.read()
        p = subprocess.run(
            [sys.executable, "-m", "rpdash", "health", "--endpoint", "mock", "--base-url", m.group(1)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert p.returncode == 0 and "jobs:" in p.stdout
        sim.send_signal(signal.SIGINT)
        assert sim.wait(15) == 0
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()


# ---------------------------------------------------------------------------- dashboard entry


def test_dashboard_is_started_with_settings_and_endpoints(monkeypatch, tmp_path):
    """`rpdash --endpoint a --endpoint b --demo` hands settings and endpoints to run_tui
    (a stand-in module here: the real one belongs to the TUI and its own tests)."""
    import types

    from rpdash import cli as cli_mod

    for k, v in _env(tmp_path).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    calls = []
    fake = types.ModuleType("rpdash.tui.app")
    fake.run_tui = lambda settings, *, demo=False, endpoints=None: calls.append(
        (settings, demo, endpoints)
    ) or 0
    monkeypatch.setitem(sys.modules, "rpdash.tui.app", fake)
    monkeypatch.chdir(tmp_path)
    assert cli_mod.main(["--endpoint", "ep1", "--endpoint", "ep2", "--demo", "--readonly"]) == 0
    settings, demo, endpoints = calls[0]
    assert demo is True and endpoints == ["ep1", "ep2"] and settings.readonly is True
