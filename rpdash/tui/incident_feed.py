"""The dashboard's incident state: "incidents are states", "be told" (issue 15).

:class:`IncidentFeed` owns one :class:`~rpdash.services.incidents.Incidents` (the same
verdicts and alert rules as ``rpdash watch``) and feeds it what the dashboard already
receives: each health event, with the worker list and settings the control plane has in
its cache (the workers view, the diagnosis and the endpoint picker fill it; no polling of
its own), and the tracked job records now and then. Its outlets:

- the terminal: the bell and a desktop notification (OSC 9 / 777,
  :mod:`rpdash.services.notify`) written through ``write`` (the app's driver), once per
  FIRED event, a notification without the bell on RECOVERED;
- ``news``: one line for the flash line (never a toast over the data);
- the alert history (:class:`~rpdash.store.alerts.AlertStore`), written through ``defer``
  (a thread: no database I/O on the UI thread).

No Textual here: the screen calls it from its handlers and shows what it returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

from rpdash.core.clock import Clock
from rpdash.services.alerts import AlertEvent, AlertKind, AlertRules
from rpdash.services.events import HealthEvent
from rpdash.services.incidents import IncidentUpdate, Incidents, store_outlet, terminal_outlet
from rpdash.services.verdict import Verdict, severity_rank

#: alert events of this session kept for the alerts view
KEEP = 500


class _TerminalStream:
    """A text stream for :func:`rpdash.services.notify.send` that hands the bytes to
    ``write`` (the app's driver)."""

    mode = "w"

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def write(self, data: str) -> int:
        self._write(data)
        return len(data)

    def flush(self) -> None:
        pass


def alert_line(ev: AlertEvent, label: str) -> str:
    """The flash line of one alert event (its message names the endpoint already)."""
    what = ev.message if ev.message.startswith(label) else f"{label}: {ev.message}"
    if ev.kind is AlertKind.RECOVERED:
        return f"✓ recovered: {what}"
    return f"⚠ alert: {what}"


class IncidentFeed:
    """Verdicts and alerts of the dashboard's endpoints; see the module docstring."""

    def __init__(
        self,
        rules: AlertRules | None,
        clock: Clock,
        *,
        write: Callable[[str], None],
        news: Callable[[AlertEvent], None],
        store: Any = None,
        defer: Callable[[Callable[[], None]], None] | None = None,
        secret: str | None = None,
        control: Any = None,
        drained: Callable[[str], bool] | None = None,
    ) -> None:
        self.control = control
        #: whether an endpoint is drained from here (its scale saved for a restore)
        self.drained = drained or (lambda endpoint_id: False)
        self.store = store
        self.events: list[AlertEvent] = []
        self._defer = defer or (lambda fn: fn())
        outlets: list[Callable[[AlertEvent], None]] = [
            self.events.append,
            terminal_outlet(_TerminalStream(write), secret=secret),  # type: ignore[arg-type]
            news,
        ]
        if store is not None:
            record = store_outlet(store)
            outlets.append(lambda ev: self._defer(lambda: record(ev)))
        self.incidents = Incidents(rules, clock, outlets=outlets)

    # ------------------------------------------------------------------ feeding
    def on_health(self, ev: HealthEvent, name: str | None = None) -> IncidentUpdate:
        workers, info = self._control_inputs(ev.endpoint_id, ev.health)
        cap = self.control.account_cap() if hasattr(self.control, "account_cap") else None
        update = self.incidents.on_health(ev, name=name, workers=workers, endpoint_info=info,
                                          account_cap=cap, drained=self.drained(ev.endpoint_id))
        del self.events[:-KEEP]
        return update

    def on_jobs(self, endpoint_id: str, jobs: Iterable[Any], name: str | None = None) -> None:
        self.incidents.on_jobs(endpoint_id, jobs, name=name)

    def tick(self) -> list[AlertEvent]:
        return self.incidents.tick()

    # ------------------------------------------------------------------ reading
    def verdict(self, endpoint_id: str) -> Verdict | None:
        return self.incidents.verdict(endpoint_id)

    def worst(self, endpoint_ids: Iterable[str]) -> tuple[str, Verdict] | None:
        """The endpoint with the worst verdict (None when none is worse than ``ok``)."""
        found = [(ep, v) for ep in endpoint_ids if (v := self.verdict(ep)) is not None]
        found = [(ep, v) for ep, v in found if severity_rank(v.severity) > 0 and v.kind != "unknown"]
        if not found:
            return None
        return max(found, key=lambda item: severity_rank(item[1].severity))

    def cost_per_s(self, endpoint_id: str, prices: Any, health: Any) -> float | None:
        """USD per second the running workers cost, when the GPU type is known from the
        control plane (its cached settings or worker list), else None."""
        from rpdash.services.cost import endpoint_cost_per_s

        workers, info = self._control_inputs(endpoint_id)
        if prices is None or (info is None and workers is None):
            return None
        with contextlib.suppress(Exception):
            return endpoint_cost_per_s(prices, info, health, workers)
        return None

    def job_cost(self, rec: Any, prices: Any) -> float | None:
        """A finished job's execution cost in USD (its worker's GPU when the cached worker
        list has it, else the endpoint's first priced GPU pool), None when unknown."""
        from rpdash.services.cost import job_cost

        workers, info = self._control_inputs(rec.endpoint_id)
        if prices is None or rec.execution_ms is None:
            return None
        wl = getattr(workers, "workers", workers) or ()
        worker = next((w for w in wl if getattr(w, "id", None) == rec.worker_id), None)
        gpu = getattr(worker, "gpu_type", None) or tuple(getattr(info, "gpus", ()) or ())
        if not gpu:
            return None
        with contextlib.suppress(Exception):
            return job_cost(prices, rec.execution_ms, gpu, getattr(info, "gpu_count", None) or 1)
        return None

    # ------------------------------------------------------------------ inside
    def _control_inputs(self, endpoint_id: str, health: Any = None) -> tuple[Any, Any]:
        """The cached worker list (when fresh, and unless it lists unhealthy workers that
        ``health`` no longer counts: it is older than the health answer, e.g. read before a
        drain) and the endpoint's cached settings."""
        cp = self.control
        if cp is None:
            return None, None
        workers = info = None
        with contextlib.suppress(Exception):
            cp.want_info(endpoint_id)  # the settings (GPU, for the cost) in the background
            if cp.workers_fresh(endpoint_id):
                workers = cp.cached_workers(endpoint_id)
            if health is not None and workers is not None and \
                    unhealthy_listed(workers) and not health.workers.unhealthy:
                workers = None
            info = cp.cached_info(endpoint_id)
        return workers, info


def unhealthy_listed(workers: Any) -> int:
    """Unhealthy workers in a worker list (a ``WorkerList`` or a list of ``WorkerInfo``)."""
    wl = getattr(workers, "workers", workers) or ()
    return sum(1 for w in wl if str(getattr(w, "status", "")).upper() == "UNHEALTHY")
