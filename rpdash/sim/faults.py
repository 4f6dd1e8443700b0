"""Fault injection for the simulator: what a flaky network or gateway does to answers.

A :class:`FaultSpec` says, for one (endpoint, operation) pair, how often each fault happens.
Specs are looked up most specific first: ``(endpoint, operation)``, ``(endpoint, "*")``,
``("*", operation)``, ``("*", "*")``; a spec replaces the less specific ones (no merging).
Each request draws one number from a seeded ``random.Random``, so a test with a fixed seed
and a fixed request order sees the same faults every run.

When each fault acts (the server applies them):

- ``latency`` (+ uniform ``latency_jitter``) seconds of *real* time before the request is
  handled (it models the network, so it is not scaled by the simulation clock);
- before the operation runs, so nothing happens to the queue:
  ``throttle_rate`` -> 429, with ``Retry-After: <retry_after>`` unless ``retry_after`` is
  None; ``error_rate`` -> one of ``error_codes`` (5xx) with a JSON error body;
- after the operation ran (a job *was* submitted / cancelled; only the answer is damaged):
  ``drop_rate`` -> the status line, headers and part of the body are sent, then the
  connection is closed; ``garbage_rate`` -> 200 with a non-JSON body (an HTML error page or
  truncated JSON); ``wrong_shape_rate`` -> 200 with valid JSON of the wrong shape.
  Exception: a damaged ``/stream`` answer does not drain the chunks it would have carried
  (they stay pending for the next call), so a client that re-polls loses none.

The rates are shares of requests in [0, 1]; their sum must not exceed 1. ``burst`` limits a
spec to the next N requests it applies to (a 429 burst, a short outage): after N draws the
spec removes itself, so a test can say "the next 3 /health calls fail" without timing.

``Faults.mutate`` (Python only, not on the admin API) is a hook for tests: a callable
``(endpoint, operation, payload) -> payload | bytes | None`` applied to every successful
answer; a returned value replaces the JSON payload (bytes are sent as they are), ``None``
keeps it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

OPERATIONS = (
    "run", "runsync", "status", "status-sync", "stream", "cancel", "retry", "purge-queue",
    "health",
    # control plane (sim/control.py): REST v2 endpoint list/get, worker list, log tails, GraphQL
    "serverless", "workers", "logs", "graphql",
)  # fmt: skip
ANY = "*"

GARBAGE_BODIES: tuple[bytes, ...] = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>cloudflare</center></body></html>",
    b'{"id": "8f2e1c4a-3b5d-4e6f-9a7b-1c2d3e4f5a6b-u1", "status": "IN_PR',
    b"upstream connect error or disconnect/reset before headers. reset reason: overflow",
    b"\x00\x9f\x92\x96garbage\xff\xfe",
)
WRONG_SHAPES: tuple[Any, ...] = (
    [],
    "OK",
    {"unexpected": True},
    {"status": 42, "id": None},
    {"jobs": "many", "workers": [1, 2, 3], "stream": "not-a-list"},
    None,
)


@dataclass(frozen=True)
class FaultSpec:
    latency: float = 0.0
    latency_jitter: float = 0.0
    error_rate: float = 0.0
    error_codes: tuple[int, ...] = (500, 502, 503)
    throttle_rate: float = 0.0
    retry_after: float | None = 1.0
    drop_rate: float = 0.0
    garbage_rate: float = 0.0
    wrong_shape_rate: float = 0.0
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.burst is not None and int(self.burst) < 1:
            raise ValueError("burst must be >= 1 (or None for no limit)")
        rates = (self.error_rate, self.throttle_rate, self.drop_rate, self.garbage_rate,
                 self.wrong_shape_rate)  # fmt: skip
        if any(not 0.0 <= r <= 1.0 for r in rates):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        if self.latency < 0 or self.latency_jitter < 0:
            raise ValueError("latency must be >= 0")
        codes = tuple(int(c) for c in self.error_codes)
        if not codes or any(not 100 <= c <= 599 for c in codes):
            raise ValueError("error_codes must be HTTP status codes")
        object.__setattr__(self, "error_codes", codes)
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0 or None")

    @property
    def quiet(self) -> bool:
        return not (self.latency or self.latency_jitter or self.error_rate or self.throttle_rate
                    or self.drop_rate or self.garbage_rate or self.wrong_shape_rate)  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        kw = dict(data)
        if "error_codes" in kw:
            codes = kw["error_codes"]
            kw["error_codes"] = tuple(codes) if isinstance(codes, list | tuple) else (int(codes),)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error_codes"] = list(self.error_codes)
        return d


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do to one request. ``kind``: "ok", "throttle", "error", "drop", "garbage",
    "wrong_shape"."""

    kind: str = "ok"
    latency: float = 0.0
    status: int = 200
    retry_after: float | None = None
    body: Any = None  # garbage bytes or the wrong-shape JSON value


OK = Decision()


class Faults:
    """The fault table of one simulator. Use it from the server's loop thread
    (``SimServer.set_faults`` marshals calls there)."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._specs: dict[tuple[str, str], FaultSpec] = {}
        self.active = False
        self.injected = 0  # how many requests were hit by a fault (not counting latency)
        self._left: dict[tuple[str, str], int] = {}  # draws left of a burst spec
        #: test hook: (endpoint, operation, payload) -> new payload, bytes, or None
        self.mutate: Any = None

    def set(self, spec: FaultSpec | dict[str, Any] | None = None, *, endpoint: str | None = None,
            operation: str | None = None, **fields_: Any) -> FaultSpec:  # fmt: skip
        """Set the spec for (endpoint, operation) (``None`` or ``"*"`` = any), replacing
        what was there. Give a FaultSpec, a dict, or the fields as keywords; a spec with
        no fault removes the entry."""
        ep = endpoint or ANY
        op = operation or ANY
        if op != ANY and op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}; one of {', '.join(OPERATIONS)}")
        if spec is None:
            spec = FaultSpec.from_dict(fields_)
        elif isinstance(spec, dict):
            spec = FaultSpec.from_dict({**spec, **fields_})
        elif fields_:
            raise TypeError("give a FaultSpec or keyword fields, not both")
        self._left.pop((ep, op), None)
        if spec.quiet:
            self._specs.pop((ep, op), None)
        else:
            self._specs[(ep, op)] = spec
            if spec.burst is not None:
                self._left[(ep, op)] = int(spec.burst)
        self.active = bool(self._specs)
        return spec

    def clear(self) -> None:
        self._specs.clear()
        self._left.clear()
        self.active = False

    def get(self, endpoint: str, operation: str) -> FaultSpec | None:
        key = self._key(endpoint, operation)
        return None if key is None else self._specs[key]

    def _key(self, endpoint: str, operation: str) -> tuple[str, str] | None:
        s = self._specs
        for key in ((endpoint, operation), (endpoint, ANY), (ANY, operation), (ANY, ANY)):
            if key in s:
                return key
        return None

    def decide(self, endpoint: str, operation: str) -> Decision:
        """Draw the fate of one request (one draw, plus one for jitter when set)."""
        if not self.active:
            return OK
        key = self._key(endpoint, operation)
        if key is None:
            return OK
        spec = self._specs[key]
        if key in self._left:
            self._left[key] -= 1
            if self._left[key] <= 0:  # the burst's last request: the spec goes after it
                del self._left[key]
                del self._specs[key]
                self.active = bool(self._specs)
        rng = self._rng
        latency = spec.latency
        if spec.latency_jitter:
            latency += rng.uniform(0.0, spec.latency_jitter)
        r = rng.random()
        edge = spec.throttle_rate
        if r < edge:
            self.injected += 1
            return Decision("throttle", latency, 429, spec.retry_after)
        edge += spec.error_rate
        if r < edge:
            self.injected += 1
            return Decision("error", latency, rng.choice(spec.error_codes))
        edge += spec.drop_rate
        if r < edge:
            self.injected += 1
            return Decision("drop", latency)
        edge += spec.garbage_rate
        if r < edge:
            self.injected += 1
            return Decision("garbage", latency, 200, None, rng.choice(GARBAGE_BODIES))
        edge += spec.wrong_shape_rate
        if r < edge:
            self.injected += 1
            return Decision("wrong_shape", latency, 200, None, rng.choice(WRONG_SHAPES))
        return Decision("ok", latency) if latency else OK

    def snapshot(self) -> list[dict[str, Any]]:
        return [
            {"endpoint": ep, "operation": op, **spec.to_dict()}
            for (ep, op), spec in sorted(self._specs.items())
        ]
