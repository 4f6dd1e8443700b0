"""Per-endpoint, per-operation rate and concurrency limits of the simulator.

Defaults follow runpod-api.md section 7.1 (requests per 10 s, concurrent requests):

==============================  ==========  ==========
operation                       per 10 s    concurrent
==============================  ==========  ==========
run                             1000        200
runsync                         2000        400
status, status-sync, stream     2000        400
cancel                          100         20
purge-queue                     2           -
health   [unconfirmed, choice]  2000        400   (as the read-only status family)
retry    [unconfirmed, choice]  100         20    (as cancel: a mutating call on one job)
==============================  ==========  ==========

The window is a sliding log over the engine's clock (simulated seconds), so limits are exact
under a fake clock. Over the limit the server answers 429 with ``Retry-After``: whole
seconds, rounded up, until the oldest counted request leaves the window (at least 1).
Over the concurrency bound it answers 429 with ``Retry-After: 1``. The documented
"larger of the base and running_workers x requests_per_worker" rule is not modelled (the
per-worker figure is not published).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class Limit:
    count: int
    window: float = WINDOW_S
    concurrent: int | None = None


DEFAULT_LIMITS: dict[str, Limit] = {
    "run": Limit(1000, WINDOW_S, 200),
    "runsync": Limit(2000, WINDOW_S, 400),
    "status": Limit(2000, WINDOW_S, 400),
    "status-sync": Limit(2000, WINDOW_S, 400),
    "stream": Limit(2000, WINDOW_S, 400),
    "cancel": Limit(100, WINDOW_S, 20),
    "purge-queue": Limit(2, WINDOW_S, None),
    "health": Limit(2000, WINDOW_S, 400),
    "retry": Limit(100, WINDOW_S, 20),
}


class RateLimiter:
    """Sliding-window counters keyed by (endpoint, operation)."""

    def __init__(self, now: Callable[[], float], *, enabled: bool = True) -> None:
        self._now = now
        self.enabled = enabled
        self.limits: dict[str, Limit] = dict(DEFAULT_LIMITS)
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._inflight: dict[tuple[str, str], int] = {}

    def set_limit(
        self, operation: str, count: int, window: float = WINDOW_S, concurrent: int | None = None
    ) -> None:
        if count < 0 or window <= 0:
            raise ValueError("count must be >= 0 and window > 0")
        self.limits[operation] = Limit(int(count), float(window), concurrent)
        self.reset()

    def reset(self) -> None:
        """Forget what was counted (limits stay)."""
        self._hits.clear()

    def restore_defaults(self) -> None:
        self.limits = dict(DEFAULT_LIMITS)
        self.reset()

    def hit(self, endpoint: str, operation: str) -> float | None:
        """Count one request; ``None`` if allowed, else seconds until one would be."""
        if not self.enabled:
            return None
        lim = self.limits.get(operation)
        if lim is None:
            return None
        key = (endpoint, operation)
        q = self._hits.get(key)
        if q is None:
            q = self._hits[key] = deque()
        now = self._now()
        edge = now - lim.window
        while q and q[0] <= edge:
            q.popleft()
        if len(q) >= lim.count:
            wait = (q[0] + lim.window - now) if q else lim.window
            return max(1.0, float(math.ceil(wait - 1e-9)))
        q.append(now)
        return None

    def enter(self, endpoint: str, operation: str) -> bool:
        """Start an in-flight request; False when the concurrency bound is reached."""
        key = (endpoint, operation)
        n = self._inflight.get(key, 0)
        if self.enabled:
            lim = self.limits.get(operation)
            if lim is not None and lim.concurrent is not None and n >= lim.concurrent:
                return False
        self._inflight[key] = n + 1
        return True

    def leave(self, endpoint: str, operation: str) -> None:
        key = (endpoint, operation)
        n = self._inflight.get(key, 0) - 1
        if n <= 0:
            self._inflight.pop(key, None)
        else:
            self._inflight[key] = n

    def snapshot(self) -> dict[str, object]:
        return {
            "enabled": self.enabled,
            "limits": {
                op: {"count": lim.count, "window": lim.window, "concurrent": lim.concurrent}
                for op, lim in self.limits.items()
            },
        }
