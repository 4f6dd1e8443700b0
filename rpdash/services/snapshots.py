"""What rpdash last knew of each endpoint, for readers on other threads (the Prometheus
exporter's scrapes). Kept apart from the exporter so that filling a board never loads
``prometheus_client``: the app can keep one whether or not an exporter ever reads it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from rpdash.core.models import Health
from rpdash.services.verdict import Verdict


@dataclass(frozen=True, slots=True)
class EndpointSnapshot:
    """What the exporter shows of one endpoint; any part may be unknown (None)."""

    endpoint_id: str
    name: str | None = None
    health: Health | None = None
    verdict: Verdict | None = None
    #: an ``EndpointMetrics`` (rpdash.services.metrics)
    metrics: Any = None
    #: True while RunPod answers rpdash, False while it does not, None unknown
    answering: bool | None = None


class SnapshotBoard:
    """The latest snapshot per endpoint, safe to fill from the app and read from scrapes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, EndpointSnapshot] = {}

    def put(self, snapshot: EndpointSnapshot) -> None:
        with self._lock:
            self._by_id[snapshot.endpoint_id] = snapshot

    def remove(self, endpoint_id: str) -> None:
        with self._lock:
            self._by_id.pop(endpoint_id, None)

    def __call__(self) -> list[EndpointSnapshot]:
        with self._lock:
            return list(self._by_id.values())
