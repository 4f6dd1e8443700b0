"""The Prometheus exporter, scraped over HTTP on 127.0.0.1 and parsed like Prometheus does."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rpdash.core.errors import InvalidInput
from rpdash.core.models import Health
from rpdash.services.metrics import EndpointMetrics, LatencyStats
from rpdash.services.prometheus import EndpointSnapshot, Exporter, SnapshotBoard, loopback_host
from rpdash.services.verdict import Verdict


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - loopback test server
        text = r.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(series: dict, metric: str, **labels: str) -> float:
    matches = [v for lab, v in series.get(metric, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (metric, labels, series.get(metric))
    return matches[0]


def test_scrape_shows_health_verdict_and_job_metrics() -> None:
    board = SnapshotBoard()
    health = Health.model_validate({"jobs": {"inQueue": 7, "inProgress": 2, "completed": 40, "failed": 3,
                                             "retried": 1},
                                    "workers": {"running": 2, "unhealthy": 3, "throttled": 1}})  # fmt: skip
    metrics = EndpointMetrics("ep1", 3600.0, 0.0, 3600.0, finished=10, completed=8, failed=2, failure_rate=0.2,
                              delay=LatencyStats(count=10, p50=1500.0, p90=9000.0),
                              execution=LatencyStats(count=10, p50=250.0, p90=2000.0))  # fmt: skip
    board.put(EndpointSnapshot("ep1", "my-ep", health, Verdict("crash_loop", "critical", "crash-looping"),
                               metrics, answering=True))  # fmt: skip
    board.put(EndpointSnapshot("ep2", answering=False))
    with Exporter(board, host="127.0.0.1", port=0) as exp:
        assert exp.port > 0 and exp.url.startswith("http://127.0.0.1:")
        s = scrape(exp.url)
        assert value(s, "rpdash_endpoint_jobs", endpoint="ep1", state="in_queue") == 7
        assert value(s, "rpdash_endpoint_jobs", endpoint="ep1", state="retried") == 1
        assert value(s, "rpdash_endpoint_workers", endpoint="ep1", state="unhealthy") == 3
        assert value(s, "rpdash_endpoint_workers", endpoint="ep1", state="idle") == 0
        assert value(s, "rpdash_endpoint_verdict", endpoint="ep1", kind="crash_loop") == 3
        assert value(s, "rpdash_job_delay_seconds", endpoint="ep1", quantile="0.9") == 9.0
        assert value(s, "rpdash_job_execution_seconds", endpoint="ep1", quantile="0.5") == 0.25
        assert value(s, "rpdash_job_failure_ratio", endpoint="ep1") == 0.2
        assert value(s, "rpdash_metrics_window_seconds", endpoint="ep1") == 3600
        assert value(s, "rpdash_endpoint_info", endpoint="ep1", name="my-ep") == 1
        assert value(s, "rpdash_endpoint_up", endpoint="ep2") == 0
        assert not [lab for lab, _ in s.get("rpdash_endpoint_jobs", []) if lab["endpoint"] == "ep2"]
        # a later scrape sees the board as it is then
        board.put(EndpointSnapshot("ep1", "my-ep", health, Verdict("ok", "ok", "ok"), answering=True))
        s = scrape(exp.url)
        assert value(s, "rpdash_endpoint_verdict", endpoint="ep1", kind="ok") == 0
        assert "rpdash_job_failure_ratio" not in s
        assert not any(n.startswith("process_") or n.startswith("python_") for n in s)  # own registry


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "", "127.0.0.1.nip.io"])
def test_refuses_non_loopback_addresses(host: str) -> None:
    with pytest.raises(InvalidInput, match="loopback"):
        Exporter(SnapshotBoard(), host=host, port=0)


def test_loopback_forms() -> None:
    assert loopback_host("localhost") == "127.0.0.1"
    assert loopback_host("[::1]") == "::1"
    assert loopback_host("127.0.0.2") == "127.0.0.2"


def test_prometheus_client_stays_out_of_the_start_up_imports() -> None:
    import subprocess
    import sys

    code = ("import sys, rpdash.cli, rpdash.services.verdict, rpdash.services.alerts, rpdash.services.notify, "
            "rpdash.services.cost, rpdash.services.incidents, rpdash.store.alerts; print('prometheus_client' in sys.modules)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
