"""Named simulator presets for the demo and the tests.

Every endpoint runs the mock-worker contract (worker.py), so any ``mock_*`` input works on
any of them; ``handler`` says whether it streams. Durations are simulated seconds (the
demo is meant to run with a time scale > 1).

================  ==========================================================================
name              endpoints
================  ==========================================================================
default           ``mock`` (standard, 0..3 workers, 0.25 s cold start, 5 s idle timeout),
                  ``mock-stream`` (generator: one chunk per item, output = list of items;
                  same sizing). Rate limits on (documented values).
demo              ``llm-chat`` (streams word tokens), ``sdxl-images`` (progress updates,
                  throttled workers), ``whisper-asr`` (quick jobs, one warm worker, some
                  errors), ``etl-batch`` (slow, low-priority share, crashes, timeouts).
                  Background traffic in waves: queues grow and drain, cold starts,
                  idle-outs, failures.
backlog           ``backlog`` (0..50 workers, 3-6 s cold start) preloaded with 400 jobs of
                  2-20 s, plus ``mock``.
flaky             ``mock``, ``mock-stream`` as default, with faults on every operation:
                  8 % 5xx, 4 % 429 (Retry-After 1), 3 % dropped, 3 % garbage, 2 % wrong
                  shape, 20-100 ms latency.
cold              ``mock``, ``mock-stream``: 0..2 workers, 20-30 s cold start, 30 % of new
                  workers throttled for 15 s first, 5 s idle timeout.
firehose          ``firehose`` (2..20 workers x 2 slots, ~8 jobs/s of 0.2-3 s) and
                  ``firehose-stream`` (~1 job/s of fast tokens): a busy account.
idle5             ``idle-1`` .. ``idle-5``: five endpoints with one warm worker each and no
                  traffic at all (the idle-cost benchmark, bench/idle_bench.py).
crashloop         ``broken``: every worker fails its start-up checks; jobs stay IN_QUEUE,
                  workers UNHEALTHY, max workers halved; ``mock`` stays healthy.
retry-storm       ``oom``: a quarter of the jobs kill their worker and run again; one preloaded
                  job kills every worker it meets (it loops until its TTL).
gpu-shortage      ``sdxl``: no capacity for the first 120 s (workers THROTTLED, unplaced).
stuck-progress    ``render``: progress-reporting jobs, 30 % left IN_PROGRESS by a late update.
bad-release       ``api`` (2 warm workers): a bad release at 30 s crash-loops its new
                  workers; the outdated ones keep serving.
worker-cap        ``cap-a``, ``cap-b``: both busy, max 4 each, sharing an account cap of 5.
================  ==========================================================================

Every scenario has a one-line ``description`` (``scenario_catalog()``) and an account
worker cap (``account_max_workers``: RunPod's default 5, or a higher balance tier where its
endpoints need more). ``apply_scenario(..., pickup=...)`` sets every endpoint's pickup
order (``pickup_orders()``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rpdash.core.errors import ConfigError
from rpdash.sim.engine import Engine, EndpointConfig, SimError, TrafficSpec
from rpdash.sim.faults import FaultSpec, Faults
from rpdash.sim.model import ACCOUNT_MAX_WORKERS_DEFAULT, PICKUP_ORDERS

Body = Callable[[random.Random], dict[str, Any]]


@dataclass(frozen=True)
class Preload:
    """``count`` jobs submitted (as /run) when the scenario starts."""

    endpoint: str
    count: int
    body: Body


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    endpoints: tuple[EndpointConfig, ...]
    rate_limits: bool = True
    #: (endpoint or "*", operation or "*", spec)
    faults: tuple[tuple[str, str, FaultSpec], ...] = ()
    traffic: tuple[TrafficSpec, ...] = ()
    preload: tuple[Preload, ...] = ()
    tags: tuple[str, ...] = field(default_factory=tuple)
    #: the account's worker cap over every endpoint (RunPod: 5 by default, more by balance)
    account_max_workers: int = ACCOUNT_MAX_WORKERS_DEFAULT
    #: (seconds after start, action on the engine): releases, capacity changes...
    actions: tuple[tuple[float, Callable[[Engine], Any]], ...] = ()

    @property
    def endpoint_ids(self) -> list[str]:
        return [e.id for e in self.endpoints]


# ------------------------------------------------------------------ job bodies


def _sdxl_body(rng: random.Random) -> dict[str, Any]:
    steps = rng.choice((4, 5, 6, 8))
    inp: dict[str, Any] = {
        "prompt": rng.choice(("a lighthouse at dusk", "a cat astronaut", "foggy forest", "neon city")),
        "mock_delay": round(rng.uniform(0.2, 1.0), 2),
        "mock_progress": {
            "updates": [f"step {i}/{steps}" for i in range(1, steps + 1)],
            "wait_time": round(rng.uniform(0.5, 1.2), 2),
        },
        "mock_return": {"image_url": f"https://example.invalid/img/{rng.getrandbits(32):08x}.png"},
    }
    r = rng.random()
    if r < 0.04:
        inp["mock_error"] = True
    return {"input": inp}


def _whisper_body(rng: random.Random) -> dict[str, Any]:
    inp: dict[str, Any] = {
        "audio": f"s3://bucket/clip-{rng.randrange(10_000):04d}.wav",
        "mock_delay": round(rng.uniform(0.4, 2.2), 2),
        "mock_return": {"text": rng.choice(("hello there", "the quick brown fox", "ok computer")),
                        "language": "en"},  # fmt: skip
        "mock_logs": [{"level": "info", "message": "transcribing"}],
    }
    if rng.random() < 0.06:
        inp["mock_error"] = True
    return {"input": inp}


def _llm_body(rng: random.Random) -> dict[str, Any]:
    return {
        "input": {
            "prompt": rng.choice(("Explain queues", "Write a haiku about GPUs", "Summarise the logs")),
            "max_tokens": rng.randrange(20, 80),
        }
    }


def _etl_body(rng: random.Random) -> dict[str, Any]:
    inp: dict[str, Any] = {"table": f"events_{rng.randrange(100)}",
                           "mock_delay": round(rng.uniform(8, 35), 1),
                           "mock_return": {"rows": rng.randrange(1_000, 900_000)}}  # fmt: skip
    body: dict[str, Any] = {"input": inp}
    r = rng.random()
    if r < 0.03:
        inp["mock_crash"] = True
    elif r < 0.10:
        inp["mock_error"] = True
    elif r < 0.14:
        inp["mock_delay"] = 90
        body["policy"] = {"executionTimeout": 60_000}
    if rng.random() < 0.3:
        body.setdefault("policy", {})["lowPriority"] = True
    return body


def _backlog_body(rng: random.Random) -> dict[str, Any]:
    return {"input": {"mock_delay": round(rng.uniform(2, 20), 1), "mock_return": "done"}}


def _firehose_body(rng: random.Random) -> dict[str, Any]:
    inp: dict[str, Any] = {"mock_delay": round(rng.uniform(0.2, 3.0), 2)}
    if rng.random() < 0.02:
        inp["mock_error"] = True
    return {"input": inp}


def _firehose_stream_body(rng: random.Random) -> dict[str, Any]:
    return {"input": {"prompt": "go", "max_tokens": rng.randrange(10, 40), "mock_delay": 0.03}}


# ------------------------------------------------------------------ presets


def _default_endpoints(cold: float = 0.25, **kw: Any) -> tuple[EndpointConfig, ...]:
    base = {"workers_min": 0, "workers_max": 3, "cold_start": cold, "idle_timeout": 5.0}
    base.update(kw)
    return (
        EndpointConfig("mock", handler="mock", **base),
        EndpointConfig("mock-stream", handler="stream", **base),
    )


def _build() -> dict[str, Scenario]:
    out: dict[str, Scenario] = {}

    out["default"] = Scenario(
        "default",
        "mock and mock-stream, 0..3 workers, short cold start",
        _default_endpoints(),
        account_max_workers=10,
    )
    out["demo"] = Scenario(
        "demo",
        "four lively endpoints with background traffic in waves",
        (
            EndpointConfig("llm-chat", handler="llm", workers_min=0, workers_max=2, cold_start=6,
                           cold_start_jitter=4, idle_timeout=20, pickup_delay=0.1,
                           defaults={"mock_delay": 0.08}),
            EndpointConfig("sdxl-images", workers_min=0, workers_max=4, cold_start=10,
                           cold_start_jitter=5, idle_timeout=15, throttle_chance=0.15,
                           throttle_time=12, pickup_delay=0.15),
            EndpointConfig("whisper-asr", workers_min=1, workers_max=3, cold_start=4,
                           cold_start_jitter=2, idle_timeout=10, pickup_delay=0.05),
            EndpointConfig("etl-batch", workers_min=0, workers_max=2, cold_start=15,
                           idle_timeout=8, unhealthy_time=20, pickup_delay=0.2),
        ),  # fmt: skip
        traffic=(
            TrafficSpec("llm-chat", 0.08, _llm_body, period=300, amplitude=0.9),
            TrafficSpec("sdxl-images", 0.35, _sdxl_body, period=240, amplitude=1.3),
            TrafficSpec("whisper-asr", 0.6, _whisper_body, period=90, amplitude=0.7, phase=1.0),
            TrafficSpec("etl-batch", 0.05, _etl_body, period=400, amplitude=1.0, phase=2.0),
        ),
        account_max_workers=20,
    )
    out["backlog"] = Scenario(
        "backlog",
        "400 queued jobs on an endpoint that scales to 50 workers",
        (
            EndpointConfig("backlog", workers_min=0, workers_max=50, cold_start=3,
                           cold_start_jitter=3, idle_timeout=10),  # fmt: skip
            EndpointConfig("mock", workers_min=0, workers_max=3, cold_start=0.25, idle_timeout=5),
        ),
        preload=(Preload("backlog", 400, _backlog_body),),
        account_max_workers=60,
    )
    out["flaky"] = Scenario(
        "flaky",
        "default endpoints behind a flaky gateway (5xx, 429, drops, garbage, latency)",
        _default_endpoints(),
        faults=(
            ("*", "*", FaultSpec(latency=0.02, latency_jitter=0.08, error_rate=0.08,
                                 error_codes=(500, 502, 503), throttle_rate=0.04, retry_after=1,
                                 drop_rate=0.03, garbage_rate=0.03, wrong_shape_rate=0.02)),
        ),  # fmt: skip
        account_max_workers=10,
    )
    out["cold"] = Scenario(
        "cold",
        "long cold starts and throttled workers",
        _default_endpoints(cold=20.0, workers_max=2, cold_start_jitter=10.0,
                           throttle_chance=0.3, throttle_time=15.0),  # fmt: skip
    )
    out["firehose"] = Scenario(
        "firehose",
        "a busy account: ~8 jobs/s on 20 workers, plus a token stream",
        (
            EndpointConfig("firehose", workers_min=2, workers_max=20, concurrency=2, cold_start=2,
                           cold_start_jitter=2, idle_timeout=10),
            EndpointConfig("firehose-stream", handler="llm", workers_min=1, workers_max=4,
                           cold_start=2, idle_timeout=10),
        ),  # fmt: skip
        traffic=(
            TrafficSpec("firehose", 8.0, _firehose_body, period=60, amplitude=0.5),
            TrafficSpec("firehose-stream", 1.0, _firehose_stream_body, period=45, amplitude=0.5),
        ),
        account_max_workers=30,
    )
    out["idle5"] = Scenario(
        "idle5",
        "five quiet endpoints, one warm worker each, no traffic (idle cost)",
        tuple(EndpointConfig(f"idle-{i}", workers_min=1, workers_max=3, cold_start=1.0,
                             idle_timeout=60.0) for i in range(1, 6)),  # fmt: skip
        account_max_workers=20,
    )
    out.update(_incident_scenarios())
    return out


def _quick_body(rng: random.Random) -> dict[str, Any]:
    return {"input": {"mock_delay": round(rng.uniform(0.5, 3.0), 2), "mock_return": "ok"}}


def _crashy_body(rng: random.Random) -> dict[str, Any]:
    inp: dict[str, Any] = {"mock_delay": round(rng.uniform(1.0, 4.0), 2), "mock_return": "ok"}
    if rng.random() < 0.25:
        inp["mock_crash"] = True  # kills its worker; the platform runs it again (and again)
    return {"input": inp}


def _poison_body(rng: random.Random) -> dict[str, Any]:
    return {"input": {"mock_crash": True, "mock_delay": 2.0}}


def _progress_body(rng: random.Random) -> dict[str, Any]:
    n = rng.randrange(3, 6)
    return {"input": {"mock_delay": 0.5, "mock_return": {"frames": n},
                      "mock_progress": {"updates": [f"frame {i}/{n}" for i in range(1, n + 1)],
                                        "wait_time": 0.6}}}  # fmt: skip


def _bad_release(engine: Engine) -> None:
    engine.release("api", bad=True, note="image api:2.0 (missing CUDA library)")


def _incident_scenarios() -> dict[str, Scenario]:
    """Bad days (runpod-api.md 5.2), seeded, for ``--scenario NAME``."""
    out: dict[str, Scenario] = {}
    out["crashloop"] = Scenario(
        "crashloop",
        "workers fail start-up checks: jobs stay IN_QUEUE, workers UNHEALTHY, max workers cut back",
        (
            EndpointConfig("broken", workers_max=4, cold_start=3, unhealthy_time=20, start_failure=1.0),
            EndpointConfig("mock", workers_max=2, cold_start=1, idle_timeout=10),
        ),  # fmt: skip
        traffic=(TrafficSpec("broken", 0.2, _quick_body), TrafficSpec("mock", 0.3, _quick_body)),
        preload=(Preload("broken", 5, _quick_body),),
    )
    out["retry-storm"] = Scenario(
        "retry-storm",
        "workers die mid-job: jobs go back to the queue and run again; one job kills every worker",
        (EndpointConfig("oom", workers_max=4, cold_start=2, idle_timeout=10, unhealthy_time=15,
                        crashloop_limit=1000),),  # fmt: skip
        traffic=(TrafficSpec("oom", 0.5, _crashy_body, period=120, amplitude=0.5),),
        preload=(Preload("oom", 1, _poison_body),),
    )
    out["gpu-shortage"] = Scenario(
        "gpu-shortage",
        "no GPUs of the endpoint's type for the first 2 minutes: workers THROTTLED, jobs wait",
        (EndpointConfig("sdxl", workers_max=3, cold_start=4, idle_timeout=15,
                        capacity_short_for=120),),  # fmt: skip
        traffic=(TrafficSpec("sdxl", 0.3, _quick_body),),
    )
    out["stuck-progress"] = Scenario(
        "stuck-progress",
        "a late progress update leaves some finished jobs IN_PROGRESS for good (issue 250)",
        (EndpointConfig("render", workers_max=3, cold_start=2, idle_timeout=15,
                        late_progress_chance=0.3),),  # fmt: skip
        traffic=(TrafficSpec("render", 0.4, _progress_body),),
    )
    out["bad-release"] = Scenario(
        "bad-release",
        "a release at 30 s crash-loops its new workers while outdated workers keep serving",
        (EndpointConfig("api", workers_min=2, workers_max=3, cold_start=3, idle_timeout=20,
                        unhealthy_time=15),),  # fmt: skip
        traffic=(TrafficSpec("api", 0.6, _quick_body),),
        actions=((30.0, _bad_release),),
    )
    out["worker-cap"] = Scenario(
        "worker-cap",
        "two busy endpoints (max 4 workers each) share the account's cap of 5 workers",
        (
            EndpointConfig("cap-a", workers_max=4, cold_start=2, idle_timeout=10),
            EndpointConfig("cap-b", workers_max=4, cold_start=2, idle_timeout=10),
        ),
        traffic=(TrafficSpec("cap-a", 1.5, _crashless_long), TrafficSpec("cap-b", 1.5, _crashless_long)),
        account_max_workers=5,
    )
    return out


def _crashless_long(rng: random.Random) -> dict[str, Any]:
    return {"input": {"mock_delay": round(rng.uniform(3.0, 8.0), 2), "mock_return": "ok"}}


SCENARIOS: dict[str, Scenario] = _build()


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(
            f"unknown simulator scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None


def scenario_catalog() -> list[tuple[str, str]]:
    """(name, one-line description) of every scenario, for ``rpdash sim --list-scenarios``."""
    return [(sc.name, sc.description) for sc in SCENARIOS.values()]


def pickup_orders() -> tuple[str, ...]:
    """The values of the pickup option (``rpdash sim --pickup``); see pickup.py."""
    return PICKUP_ORDERS


def apply_scenario(engine: Engine, faults: Faults, scenario: Scenario | str, *,
                   rate_limits: bool | None = None, pickup: str | None = None) -> Scenario:  # fmt: skip
    """Reset ``engine`` and ``faults`` to ``scenario`` (``rate_limits`` overrides its
    choice; ``pickup`` sets every endpoint's pickup order). Call from the engine's thread."""
    sc = get_scenario(scenario) if isinstance(scenario, str) else scenario
    if pickup is not None and pickup not in PICKUP_ORDERS:
        raise ConfigError(f"unknown pickup order {pickup!r}; choose one of: {', '.join(PICKUP_ORDERS)}")
    engine.reset()
    faults.clear()
    engine.limiter.enabled = sc.rate_limits if rate_limits is None else rate_limits
    engine.limiter.restore_defaults()
    engine.account_max_workers = sc.account_max_workers
    for cfg in sc.endpoints:
        engine.add_endpoint(cfg if pickup is None else replace(cfg, pickup=pickup))
    for at, action in sc.actions:
        engine.schedule(at, action, engine)
    for ep, op, spec in sc.faults:
        faults.set(spec, endpoint=ep, operation=op)
    for spec in sc.traffic:
        engine.add_traffic(spec)
    rng = random.Random(f"{engine.seed}:preload")
    limiter_on = engine.limiter.enabled
    engine.limiter.enabled = False  # preloads are not requests
    try:
        for pre in sc.preload:
            for _ in range(pre.count):
                try:
                    engine.submit(pre.endpoint, pre.body(rng))
                except SimError:
                    break
    finally:
        engine.limiter.enabled = limiter_on
    return sc
