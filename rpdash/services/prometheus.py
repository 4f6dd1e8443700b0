"""A Prometheus exporter for what rpdash sees: health counts, verdicts and job metrics.

Imported only when the exporter is asked for (``prometheus_client`` is not loaded at
start-up). It serves ``/metrics`` on a loopback address only: the numbers describe a
RunPod account, and nothing here authenticates the scraper, so :func:`loopback_host`
refuses any other address (a remote Prometheus can scrape through an ssh tunnel or a local
agent).

Series, per endpoint (label ``endpoint`` = the endpoint id):

- ``rpdash_endpoint_info{endpoint, name} 1``: the name rpdash knows it by;
- ``rpdash_endpoint_up{endpoint}``: 1 while RunPod answers rpdash, 0 while it does not;
- ``rpdash_endpoint_jobs{endpoint, state}``: ``/health`` jobs: ``in_queue``,
  ``in_progress``, ``completed``, ``failed``, ``retried`` (the last three are RunPod's own
  totals over its window, not counters: they go down, so they are gauges);
- ``rpdash_endpoint_workers{endpoint, state}``: ``/health`` workers: ``idle``, ``running``,
  ``initializing``, ``throttled``, ``unhealthy``;
- ``rpdash_endpoint_verdict{endpoint, kind}``: the verdict's severity, 0 ok, 1 info, 2 warn,
  3 critical (one series, labelled with the current kind);
- ``rpdash_job_delay_seconds{endpoint, quantile}`` and ``rpdash_job_execution_seconds``
  (quantile ``0.5``, ``0.9``), ``rpdash_job_failure_ratio{endpoint}`` (0-1),
  ``rpdash_jobs_finished{endpoint}`` and ``rpdash_metrics_window_seconds{endpoint}``: from
  the jobs rpdash itself saw (:mod:`rpdash.services.metrics`), over its window.

The collector reads a ``source`` callable on the HTTP server's thread at each scrape; a
:class:`~rpdash.services.snapshots.SnapshotBoard` is such a source (``Incidents.board``
keeps one up to date).
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from rpdash.core.errors import InvalidInput
from rpdash.services.snapshots import EndpointSnapshot, SnapshotBoard

__all__ = ["DEFAULT_PORT", "EndpointSnapshot", "Exporter", "RpdashCollector", "SnapshotBoard", "loopback_host",
           "serve"]  # fmt: skip

DEFAULT_PORT = 9464
JOB_STATES = (("in_queue", "inQueue"), ("in_progress", "inProgress"), ("completed", "completed"),
              ("failed", "failed"), ("retried", "retried"))  # fmt: skip
WORKER_STATES = ("idle", "running", "initializing", "throttled", "unhealthy")
QUANTILES = (("0.5", "p50"), ("0.9", "p90"))


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class RpdashCollector(Collector):
    """A custom collector: builds every series from ``source()`` at each scrape."""

    def __init__(self, source: Callable[[], Iterable[EndpointSnapshot]]) -> None:
        self.source = source

    def describe(self) -> Iterable[Metric]:
        return []  # the series depend on the endpoints: nothing to announce up front

    def collect(self) -> Iterator[Metric]:
        info = _gauge("rpdash_endpoint_info", "The name rpdash knows the endpoint by.", ["endpoint", "name"])
        up = _gauge("rpdash_endpoint_up", "1 while RunPod answers rpdash about the endpoint, else 0.", ["endpoint"])
        jobs = _gauge("rpdash_endpoint_jobs", "Jobs by state as /health reports them.", ["endpoint", "state"])
        workers = _gauge("rpdash_endpoint_workers", "Workers by state as /health reports them.", ["endpoint", "state"])
        verdict = _gauge("rpdash_endpoint_verdict",
                         "The endpoint's verdict: 0 ok, 1 info, 2 warn, 3 critical.", ["endpoint", "kind"])  # fmt: skip
        delay = _gauge("rpdash_job_delay_seconds", "Queue delay of the jobs rpdash saw finish in its window.",
                       ["endpoint", "quantile"])  # fmt: skip
        execution = _gauge("rpdash_job_execution_seconds", "Execution time of the jobs rpdash saw finish.",
                           ["endpoint", "quantile"])  # fmt: skip
        failure = _gauge("rpdash_job_failure_ratio", "Failed or timed out / finished (0-1), in the window.",
                         ["endpoint"])  # fmt: skip
        finished = _gauge("rpdash_jobs_finished", "Jobs rpdash saw finish in its window.", ["endpoint"])
        window = _gauge("rpdash_metrics_window_seconds", "The window of the job metrics.", ["endpoint"])
        for snap in self.source():
            ep = snap.endpoint_id
            info.add_metric([ep, snap.name or ep], 1)
            if snap.answering is not None:
                up.add_metric([ep], 1 if snap.answering else 0)
            if snap.health is not None:
                for label, attr in JOB_STATES:
                    jobs.add_metric([ep, label], getattr(snap.health.jobs, attr))
                for state in WORKER_STATES:
                    workers.add_metric([ep, state], getattr(snap.health.workers, state))
            if snap.verdict is not None:
                verdict.add_metric([ep, snap.verdict.kind], snap.verdict.rank)
            m = snap.metrics
            if m is not None:
                for q, attr in QUANTILES:
                    for family, stats in ((delay, m.delay), (execution, m.execution)):
                        value = getattr(stats, attr, None)
                        if value is not None:
                            family.add_metric([ep, q], value / 1000.0)
                if m.failure_rate is not None:
                    failure.add_metric([ep], m.failure_rate)
                finished.add_metric([ep], m.finished)
                window.add_metric([ep], m.window_s)
        yield from (info, up, jobs, workers, verdict, delay, execution, failure, finished, window)


def loopback_host(host: str) -> str:
    """``host`` as an address to bind, if it is a loopback one (``localhost`` is
    127.0.0.1); anything else raises ``InvalidInput``. Names are not resolved."""
    h = host.strip().removeprefix("[").removesuffix("]")
    if h.lower() == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(h)
    except ValueError:
        raise InvalidInput(f"the exporter listens on a loopback address only (127.0.0.1 or ::1), "
                           f"not {host[:60]!r}") from None  # fmt: skip
    if not ip.is_loopback:
        raise InvalidInput(f"the exporter listens on a loopback address only (127.0.0.1 or ::1), not {ip}: "
                           "its numbers describe your RunPod account and scrapes are not authenticated")  # fmt: skip
    return str(ip)


class Exporter:
    """``/metrics`` over HTTP on a loopback address, on a background thread."""

    def __init__(self, source: Callable[[], Iterable[EndpointSnapshot]], *, host: str = "127.0.0.1",
                 port: int = DEFAULT_PORT) -> None:  # fmt: skip
        self.host = loopback_host(host)
        if not 0 <= port <= 65535:
            raise InvalidInput(f"port {port} is not a TCP port (0-65535)")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(RpdashCollector(source))
        self._want_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (the one the OS chose when asked for 0)."""
        return int(self._server.server_port) if self._server is not None else self._want_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> Exporter:
        if self._server is None:
            try:
                self._server, self._thread = start_http_server(self._want_port, addr=self.host,
                                                               registry=self.registry)  # fmt: skip
            except OSError as e:
                raise InvalidInput(f"cannot serve metrics on {self.host}:{self._want_port}: "
                                   f"{e.strerror or e}") from None  # fmt: skip
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(source: Callable[[], Iterable[EndpointSnapshot]], *, host: str = "127.0.0.1",
          port: int = DEFAULT_PORT) -> Exporter:  # fmt: skip
    """Start an :class:`Exporter` and return it (``stop()`` it when done)."""
    return Exporter(source, host=host, port=port).start()
