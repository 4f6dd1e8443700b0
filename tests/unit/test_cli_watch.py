"""``rpdash watch``: the dashboard's alert rules from the command line, against a simulator
over loopback. ``--once`` runs as a user (or Nagios) runs it, ``python -m rpdash`` in a
subprocess, asserting on the summary line and the exit code; the continuous watch runs in
process on a clock that does not really wait, so hold times of minutes pass in a moment."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rpdash.cli.parser import build_parser
from rpdash.cli.state import State
from rpdash.cli.watch import cmd_watch
from rpdash.config import Settings
from rpdash.core.clock import FakeClock
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.store.alerts import AlertStore
from rpdash.store.history import HistoryStore
from rpdash.store.metrics_store import MetricsStore
from tests.unit.test_cli import KEY, _env, cli, error_line, ksim  # noqa: F401

CRASH_LOOP = {"unhealthy": 3, "running": 0, "idle": 0, "initializing": 0}


def crash_loop(endpoint: str) -> Any:
    """A simulator mutator: ``endpoint``'s /health shows 3 unhealthy workers, none running."""

    def mutate(ep: str, op: str, payload: Any) -> Any:
        if ep == endpoint and op == "health" and isinstance(payload, dict):
            return {**payload, "workers": {**payload.get("workers", {}), **CRASH_LOOP}}
        return None

    return mutate


def backlog(endpoint: str, queued: int) -> Any:
    def mutate(ep: str, op: str, payload: Any) -> Any:
        if ep == endpoint and op == "health" and isinstance(payload, dict):
            return {**payload, "jobs": {**payload.get("jobs", {}), "inQueue": queued}}
        return None

    return mutate


# ---------------------------------------------------------------------------- --once


def test_once_on_a_calm_endpoint_is_ok_and_exits_0(cli) -> None:
    p = cli("watch", "--once", "--endpoint", "mock")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "OK - mock: ok\n"


def test_once_with_the_key_rejected_is_critical(cli) -> None:
    p = cli("watch", "--once", "--endpoint", "mock", RUNPOD_API_KEY="sk-not-the-right-one")
    assert p.returncode == 2
    assert p.stdout == "CRITICAL - mock: key rejected\n"


def test_once_crash_looping_endpoint_is_critical_naming_it(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "rpdash.toml"
    cfg.write_text('[endpoints]\nllm-chat = "mock"\nwhisper = "mock-stream"\n')
    cli.sim.set_mutator(crash_loop("mock"))
    p = cli("watch", "--once", "--config", str(cfg))  # every configured endpoint
    assert p.returncode == 2, p.stderr
    assert p.stdout == "CRITICAL - llm-chat: crash-looping (3 unhealthy, 0 running); whisper: ok\n"


def test_once_backlog_is_a_warning(cli) -> None:
    cli.sim.set_mutator(backlog("mock", 30))
    p = cli("watch", "--once", "--endpoint", "mock", "--endpoint", "mock-stream")
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.startswith("WARNING - mock: ") and "30 jobs queued (over 20)" in p.stdout
    assert p.stdout.rstrip().endswith("; mock-stream: ok")


def test_once_unreachable_is_unknown_and_json_says_the_same(cli) -> None:
    p = cli("watch", "--once", "--endpoint", "mock", "--json", RUNPOD_BASE_URL="http://127.0.0.1:9/v2")
    assert p.returncode == 3
    doc = json.loads(p.stdout)
    assert doc["status"] == "UNKNOWN" and doc["exit_code"] == 3
    assert doc["summary"] == "UNKNOWN - mock: no answer (unreachable)"
    assert doc["endpoints"][0]["endpoint_id"] == "mock" and doc["endpoints"][0]["health"] is None


def test_once_retries_a_server_error_once_before_saying_unknown(cli) -> None:
    cli.sim.set_faults(endpoint="mock", operation="health", error_rate=1.0, burst=1)
    p = cli("watch", "--once", "--endpoint", "mock")
    assert (p.returncode, p.stdout) == (0, "OK - mock: ok\n")  # a blip is not an outage
    cli.sim.set_faults(endpoint="mock", operation="health", error_rate=1.0, error_codes=[503])
    p = cli("watch", "--once", "--endpoint", "mock")
    assert (p.returncode, p.stdout) == (3, "UNKNOWN - mock: no answer (server error)\n")


def test_once_a_configuration_error_is_unknown_not_critical(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "rpdash.toml"
    cfg.write_text("[alerts]\nqueue_above = -1\n")
    p = cli("watch", "--once", "--endpoint", "mock", "--config", str(cfg))
    assert p.returncode == 3 and p.stdout == ""
    assert error_line(p).endswith("alerts.queue_above: input should be greater than or equal to 0")
    p = cli("watch", "--endpoint", "mock", "--config", str(cfg))  # not a check: the usual exit 2
    assert p.returncode == 2


def test_prometheus_refuses_a_non_loopback_address(cli) -> None:
    p = cli("watch", "--endpoint", "mock", "--prometheus", "0.0.0.0:9464")
    assert p.returncode == 2
    assert "loopback" in error_line(p)


def test_ctrl_c_ends_a_watch_with_exit_0(ksim, tmp_path: Path) -> None:
    env = _env(tmp_path, RUNPOD_API_KEY=KEY, RUNPOD_BASE_URL=ksim.base_url)
    argv = [sys.executable, "-m", "rpdash", "watch", "--endpoint", "mock", "--interval", "1"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert re.fullmatch(r"\S+ VERDICT OK mock: ok\n", first), first
        proc.send_signal(2)  # SIGINT, as ctrl+c
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "Traceback" not in err and KEY not in out + err


# ---------------------------------------------------------------------------- continuous


class StepClock(FakeClock):
    """A clock whose sleep moves time on instead of waiting."""

    async def sleep(self, seconds: float) -> None:
        self.advance_sync(seconds)
        await asyncio.sleep(0)


def watch(argv: list[str], settings: Settings, stop: Any, clock: FakeClock | None = None) -> int:
    args = build_parser().parse_args(["watch", *argv])
    return cmd_watch(args, settings, State(), clock=clock or StepClock(wall=time.time()), stop=stop)


def sim_settings(sim: Any, tmp_path: Path) -> Settings:
    return Settings(api_key=sim.api_key, base_url=sim.base_url, history_path=tmp_path / "history.db")


def test_a_watch_prints_fired_then_recovered_once_each_and_records_them(
    sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sim_settings(sim, tmp_path)

    def script(w: Any) -> bool:  # default rules: unhealthy 60 s, verdict 30 s, recover 30 s
        if w.cycles == 2:
            sim.set_mutator(crash_loop("mock"))
        if w.cycles == 20:  # 90 s of crash loop later
            sim.set_mutator(None)
        return w.cycles >= 40

    assert watch(["--endpoint", "mock", "--interval", "5"], settings, script) == 0
    lines = capsys.readouterr().out.splitlines()
    stamps, events = zip(*(ln.split(" ", 1) for ln in lines), strict=True)
    # the hold times are the rules' own: the verdict fires 30 s after it turned, the
    # unhealthy rule 60 s after, both recover 30 s after the crash loop ended
    held = [datetime.fromisoformat(t).timestamp() - datetime.fromisoformat(stamps[1]).timestamp() for t in stamps]
    assert held[2:] == [30, 60, 90, 120, 120]
    assert list(events) == [
        "VERDICT OK mock: ok",
        "VERDICT CRITICAL mock: crash-looping (3 unhealthy, 0 running) (was: ok)",
        "FIRED CRITICAL mock: crash-looping (3 unhealthy, 0 running) [verdict]",
        "FIRED WARN mock: 3 unhealthy workers [unhealthy]",
        "VERDICT OK mock: ok (was: crash-looping (3 unhealthy, 0 running))",
        "RECOVERED WARN mock: 3 unhealthy workers - recovered after 1 min [unhealthy]",
        "RECOVERED CRITICAL mock: crash-looping (3 unhealthy, 0 running) - recovered after 1 min 30 s [verdict]",
    ], "\n".join(lines)
    with HistoryStore(tmp_path / "history.db") as store:
        history = [(r.kind, r.rule) for r in reversed(AlertStore(store).recent())]
        samples = MetricsStore(store).health_samples("mock", 0)
    assert history == [("fired", "verdict"), ("fired", "unhealthy"), ("recovered", "unhealthy"),
                       ("recovered", "verdict")]  # fmt: skip
    # every answer is a health sample, as the dashboard keeps them (its charts, rpdash metrics)
    assert len(samples) == 40 and max(s.unhealthy for s in samples) == 3


def test_a_watch_with_json_prints_one_object_per_change(
    sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def script(w: Any) -> bool:
        sim.set_mutator(crash_loop("mock") if w.cycles == 1 else None)
        return w.cycles >= 2

    assert watch(["--endpoint", "mock", "--json"], sim_settings(sim, tmp_path), script) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(d["event"], d["endpoint_id"], d["severity"], d["message"]) for d in docs] == [
        ("verdict", "mock", "ok", "ok"), ("verdict", "mock", "critical", "crash-looping (3 unhealthy, 0 running)")]
    assert docs[1]["verdict"]["kind"] == "crash_loop" and docs[1]["verdict"]["reasons"]


def test_a_history_that_cannot_be_written_is_one_warning_and_the_watch_goes_on(
    sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(api_key=sim.api_key, base_url=sim.base_url, history_path=tmp_path / "no" / "such" / "dir")
    (tmp_path / "no").write_text("a file where a directory should be")
    assert watch(["--endpoint", "mock"], settings, lambda w: w.cycles >= 3) == 0
    out, err = capsys.readouterr()
    assert out.split(" ", 1)[1] == "VERDICT OK mock: ok\n"
    (line,) = err.splitlines()
    assert line.startswith("rpdash: warning: ")
    assert line.endswith("alerts and health samples are not recorded in the history")


def test_prometheus_page_while_watching(sim, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clock = StepClock(wall=time.time())
    now = clock.time()
    with HistoryStore(tmp_path / "history.db") as store:
        for i in range(10):
            status = JobStatus.FAILED if i < 3 else JobStatus.COMPLETED
            store.update(JobRecord(f"j{i}", "mock", status, submitted_at=now - 300 + i, finished_at=now - 200 + i,
                                   delay_ms=1000 * (i + 1), execution_ms=2000, worker_id="w1"))  # fmt: skip
    sim.set_mutator(crash_loop("mock"))
    page: dict[str, Any] = {}

    def scrape(w: Any) -> bool:
        url = re.search(r"serving Prometheus metrics at (\S+)", capsys.readouterr().err)
        assert url and url.group(1).startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url.group(1), timeout=10) as r:
            page["text"] = r.read().decode()
        return True

    assert watch(["--endpoint", "mock", "--prometheus", "0"], sim_settings(sim, tmp_path), scrape, clock) == 0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(page["text"]) for s in fam.samples}  # fmt: skip
    assert samples[("rpdash_endpoint_workers", (("endpoint", "mock"), ("state", "unhealthy")))] == 3
    assert samples[("rpdash_endpoint_jobs", (("endpoint", "mock"), ("state", "in_queue")))] == 0
    assert samples[("rpdash_endpoint_verdict", (("endpoint", "mock"), ("kind", "crash_loop")))] == 3
    assert samples[("rpdash_endpoint_up", (("endpoint", "mock"),))] == 1
    assert samples[("rpdash_jobs_finished", (("endpoint", "mock"),))] == 10
    assert samples[("rpdash_job_failure_ratio", (("endpoint", "mock"),))] == pytest.approx(0.3)


def held_by_other(starved: str, other: str) -> Any:
    """``starved`` has jobs waiting and 1 worker; ``other`` runs 4: a cap of 5 is used."""

    def mutate(ep: str, op: str, payload: Any) -> Any:
        if op == "health" and isinstance(payload, dict) and ep in (starved, other):
            running, queued = (1, 6) if ep == starved else (4, 0)
            return {**payload, "workers": {**payload.get("workers", {}), "running": running, "idle": 0},
                    "jobs": {**payload.get("jobs", {}), "inQueue": queued, "inProgress": running}}
        return None

    return mutate


@pytest.mark.parametrize("cap, verdict", [(5, "account worker cap (5) used by other endpoints"), (None, None)])
def test_a_watch_with_the_account_worker_cap_names_it(sim, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      cap: int | None, verdict: str | None) -> None:  # fmt: skip
    settings = sim_settings(sim, tmp_path)
    settings.account_worker_cap = cap
    sim.set_mutator(held_by_other("mock", "mock-stream"))
    assert watch(["--endpoint", "mock-stream", "--endpoint", "mock"], settings, lambda w: w.cycles >= 2) == 0
    out = capsys.readouterr().out
    if verdict is None:  # unknown cap: no guess
        assert "account worker cap" not in out, out
    else:
        assert f"VERDICT WARN mock: {verdict}" in out, out
        assert "mock-stream: account worker cap" not in out
