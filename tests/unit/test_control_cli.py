"""``rpdash endpoints | workers | logs | metrics | diagnose`` (rpdash.cli.ops) against the
simulator over loopback, through ``add_subcommands`` + ``dispatch`` as cli.py will call them."""

from __future__ import annotations

import argparse
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from rpdash.cli import ops as cli_ops
from rpdash.config import Settings
from rpdash.core.models import JobStatus
from rpdash.core.records import JobRecord
from rpdash.sim.server import SimServer
from rpdash.store.history import HistoryStore
from rpdash.store.metrics_store import MetricsStore


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("RUNPOD_", "RPDASH_")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(cli_ops, "LOG_IDLE_S", 0.3)  # a tail without --follow ends sooner


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rpdash")
    sub = p.add_subparsers(dest="command")
    cli_ops.add_subcommands(sub)
    return p


def settings(sim: SimServer | None, tmp_path: Path, key: str | None = None, **kw: Any) -> Settings:
    base = sim.base_url if sim is not None else "https://api.runpod.ai/v2"
    return Settings(api_key=key or (sim.api_key if sim else None), base_url=base,
                    history_path=tmp_path / "history.db", **kw)  # fmt: skip


def run(argv: list[str], st: Settings) -> int:
    return cli_ops.dispatch(parser().parse_args(argv), st)


def runsync(sim: SimServer, **inp: Any) -> None:
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        c.post("/mock/runsync", json={"input": inp}, timeout=10)


def test_endpoints_table_json_and_all(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = settings(sim, tmp_path)
    assert run(["endpoints"], st) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["NAME", "ID", "WORKERS", "GPU", "IDLE", "TIMEOUT"]
    assert out[1].split()[:3] == ["mock", "mock", "0-3"] and "5 s" in out[1]
    assert not any("lb-gateway" in line for line in out)
    assert run(["endpoints", "--all", "--json"], st) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["type"] for e in data] == ["QUEUE", "QUEUE", "LOAD_BALANCER"]


def test_endpoints_fall_back_to_graphql_and_say_so(sim: SimServer, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    sim.call(setattr, sim.control, "rest_status", 404)
    assert run(["endpoints", "--json"], settings(sim, tmp_path)) == 0
    cap = capsys.readouterr()
    assert [e["id"] for e in json.loads(cap.out)] == ["mock", "mock-stream"]
    assert "GraphQL" in cap.err


def test_server_text_is_made_inert(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim.call(sim.control.configure, {"meta": {"mock": {"name": "\x1b[2Jevil\x07"}}})
    assert run(["endpoints"], settings(sim, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2Jevil\\x07" in out


def test_workers(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runsync(sim)
    assert run(["workers", "--endpoint", "mock"], settings(sim, tmp_path)) == 0
    out = capsys.readouterr().out.splitlines()
    assert "1 worker: running 0, idle 1" in out[0]
    assert out[1].split()[:2] == ["ID", "STATUS"] and out[2].split()[1] == "IDLE"
    assert run(["workers", "--json"], settings(sim, tmp_path, endpoint_id="mock")) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["idle"] == 1


def test_logs_filters_json_and_save(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runsync(sim, mock_logs=[{"level": "error", "message": "GPU fell off the bus"},
                            {"level": "info", "message": "all good"}])  # fmt: skip
    st = settings(sim, tmp_path, endpoint_id="mock")
    assert run(["logs", "--level", "error"], st) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "ERROR" in out[0] and "GPU fell off the bus" in out[0] and "[sync-" in out[0]
    assert run(["logs", "--grep", "ALL GOOD", "--json"], st) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["message"] for x in lines] == ["all good"] and lines[0]["worker_id"]
    assert run(["logs", "--tail", "2", "--source", "system"], st) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    path = tmp_path / "saved.log"
    assert run(["logs", "--save", str(path)], st) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "saved" in cap.err
    assert "GPU fell off the bus" in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert run(["logs", "--grep", "nothing-like-this"], st) == 0
    assert "no log lines match" in capsys.readouterr().err


def test_logs_of_one_worker(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runsync(sim)
    st = settings(sim, tmp_path, endpoint_id="mock")
    assert run(["workers", "--json"], st) == 0
    wid = json.loads(capsys.readouterr().out)["workers"][0]["id"]
    assert run(["logs", "--worker", wid, "--tail", "1"], st) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and wid not in out[0] and "COMPLETED" in out[0]
    assert run(["logs", "--worker", "nosuch"], st) == 3
    assert "not found" in capsys.readouterr().err


def test_errors_are_one_line_with_exit_codes(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["workers", "--endpoint", "mock"], settings(sim, tmp_path, key="sk-wrong-secret")) == 3
    err = capsys.readouterr().err
    assert err.startswith("rpdash: error: ") and err.count("\n") == 1 and "sk-wrong-secret" not in err
    assert run(["workers"], settings(sim, tmp_path)) == 2  # no endpoint
    assert "no endpoint" in capsys.readouterr().err
    assert run(["endpoints"], settings(None, tmp_path, key="k", allow_insecure_http=False)
               .model_copy(update={"base_url": "http://example.com/v2"})) == 2  # fmt: skip
    assert "plain http" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["logs", "--tail", "9999"])


def test_metrics_from_the_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    st = settings(None, tmp_path, key="k")
    assert run(["metrics"], st) == 0
    assert "no job history yet" in capsys.readouterr().err and not (tmp_path / "history.db").exists()
    now = time.time()
    with HistoryStore(tmp_path / "history.db") as store:
        for i in range(10):
            status = JobStatus.FAILED if i == 9 else JobStatus.COMPLETED
            store.update(JobRecord(f"j{i}", "ep1", status, submitted_at=now - 300 + i,
                                   finished_at=now - 200 + i, delay_ms=100 * (i + 1),
                                   execution_ms=1000, worker_id=f"w{i % 2}"))  # fmt: skip
        from rpdash.core.models import Health

        MetricsStore(store).record_health("ep1", Health.model_validate({"jobs": {"inQueue": 4}}), at=now - 30)
    assert run(["metrics", "--window", "1h", "--json"], st) == 0
    (m,) = json.loads(capsys.readouterr().out)
    assert m["endpoint_id"] == "ep1" and m["finished"] == 10 and m["failure_rate"] == pytest.approx(0.1)
    assert m["delay"]["p50"] == 500 and m["delay"]["p90"] == 900 and m["cold_starts"] == 2
    assert m["health"]["samples"] == 1 and m["health"]["in_queue_max"] == 4
    assert run(["metrics", "--endpoint", "ep1"], st) == 0
    text = capsys.readouterr().out
    assert "failure rate 10.0 %" in text and "p50 500 ms" in text
    assert run(["metrics", "--window", "soon"], st) == 2


def test_diagnose(sim: SimServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sim.call(sim.engine.update_endpoint, "mock", workers_max=0)
    with httpx.Client(base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.api_key}"}) as c:
        job_id = c.post("/mock/run", json={"input": {}}).json()["id"]
    assert run(["diagnose", "--endpoint", "mock", job_id, "--json"], settings(sim, tmp_path)) == 0
    findings = json.loads(capsys.readouterr().out)
    assert findings[0]["cause"] == "max_zero" and "max workers is 0" in findings[0]["text"]
