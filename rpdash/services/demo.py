"""``rpdash --demo``: the simulator's "demo" scenario on a free loopback port, and a little
traffic of our own so that the job list and the output viewer move.

The scenario already has background traffic *inside* the simulator (other "users" of the
endpoints: queues grow and drain, workers cold-start and idle out). Those jobs show in the
health pane only, as another user's jobs would. ``DemoTraffic`` adds jobs submitted through
the Session, so they are tracked, stored and shown like the user's own: quick ones, ones
with progress updates, streamed tokens, and some that fail.

Cheap at idle: one task that sleeps between submissions, never more than ``max_live`` of
its jobs alive at once, nothing submitted while the session is paused.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from typing import Any

from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import RpdashError

log = logging.getLogger("rpdash.services.demo")

DEMO_API_KEY = "demo-key"


@dataclass
class DemoEnv:
    """A running simulator for the demo. ``stop()`` shuts it down (idempotent)."""

    sim: Any
    base_url: str
    api_key: str | None
    endpoints: list[str]
    clock: Clock = field(default_factory=RealClock)

    def stop(self) -> None:
        self.sim.stop()


def start_demo(
    scenario: str = "demo",
    time_scale: float = 1.0,
    seed: int | None = None,
    *,
    pickup: str | None = None,
    api_key: str | None = DEMO_API_KEY,
    port: int = 0,
) -> DemoEnv:
    """Start ``SimServer(scenario)`` on 127.0.0.1 (a free port unless ``port`` is given).

    ``pickup`` (fifo, batch, random; None = the scenario's own) is how the simulated
    workers take queued jobs. ``seed`` fixes the scenario's behaviour (faults, workers,
    background traffic; random when None), but job and worker ids are fresh in every run
    even with a fixed seed: the demo history keeps earlier runs' jobs, and an id seen again
    would mix an old run's job with a new one (and retrying an old one would 404).

    ``time_scale`` > 1 makes the simulated endpoints run faster than real time. The
    Session polls on real time, so the default 1.0 keeps what it learns (execution times)
    in the same units as its clock; the scenario's durations are short enough to watch.
    Blocking (it waits for the server to listen): call it in a thread from async code.
    """
    from rpdash.sim.server import SimServer

    sim = SimServer(
        port=port,
        api_key=api_key,
        scenario=scenario,
        seed=random.randrange(1 << 30) if seed is None else seed,
        time_scale=time_scale,
        pickup=pickup,
    )
    # ids from a run-unique seed (before the server thread starts: no race)
    sim.engine._rng_ids = random.Random(os.urandom(16))
    sim.start()
    return DemoEnv(sim=sim, base_url=sim.base_url, api_key=api_key, endpoints=list(sim.endpoints))


# (endpoint, mode, weight, input builder) — every builder uses the mock-worker keys
def _asr(rng: random.Random) -> dict[str, Any]:
    return {
        "audio": f"s3://demo/clip-{rng.randrange(1000):03d}.wav",
        "mock_delay": round(rng.uniform(0.5, 3.0), 1),
        "mock_return": {"text": rng.choice(("hello world", "ship it", "queues are fun"))},
    }


def _asr_fail(rng: random.Random) -> dict[str, Any]:
    return {"audio": "s3://demo/broken.wav", "mock_delay": 0.8, "mock_error": True}


def _images(rng: random.Random) -> dict[str, Any]:
    steps = rng.choice((4, 6, 8))
    return {
        "prompt": rng.choice(("a red fox in snow", "a tiny robot", "a lighthouse at dusk")),
        "mock_delay": 0.5,
        "mock_progress": {
            "updates": [f"step {i}/{steps}" for i in range(1, steps + 1)],
            "wait_time": round(rng.uniform(0.5, 1.0), 2),
        },
        "mock_return": {"image_url": f"https://example.invalid/{rng.getrandbits(24):06x}.png"},
    }


def _chat(rng: random.Random) -> dict[str, Any]:
    return {
        "prompt": rng.choice(("Tell me about queues", "A haiku on GPUs", "Explain cold starts")),
        "max_tokens": rng.randrange(30, 90),
    }


def _batch(rng: random.Random) -> dict[str, Any]:
    return {"table": f"events_{rng.randrange(50)}", "mock_delay": round(rng.uniform(5, 15), 1),
            "mock_return": {"rows": rng.randrange(1000, 90000)}}  # fmt: skip


_KINDS: tuple[tuple[str, str, float, Any], ...] = (
    ("whisper-asr", "run", 4.0, _asr),
    ("whisper-asr", "run", 1.0, _asr_fail),
    ("sdxl-images", "run", 2.5, _images),
    ("llm-chat", "stream", 2.5, _chat),
    ("etl-batch", "run", 0.7, _batch),
)


class DemoTraffic:
    """Submits a tracked job now and then across the demo endpoints."""

    def __init__(
        self,
        session: Any,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        *,
        every: tuple[float, float] = (2.0, 6.0),
        max_live: int = 12,
    ) -> None:
        self.session = session
        self.clock: Clock = clock or RealClock()
        self.rng = rng or random.Random()
        self.every = every
        self.max_live = max_live
        self.submitted: list[str] = []
        self._stopped = False
        eps = set(getattr(session, "endpoints", []) or [])
        # only kinds whose endpoint is watched (another scenario may lack some)
        self.kinds = [k for k in _KINDS if not eps or k[0] in eps]
        if not self.kinds and eps:  # another scenario's endpoints: quick jobs on each
            self.kinds = [(ep, "run", 1.0, _asr) for ep in sorted(eps)]

    def stop(self) -> None:
        self._stopped = True

    def _live(self) -> int:
        jobs = self.session.jobs
        return sum(1 for j in self.submitted[-50:] if j in jobs and not jobs[j].terminal)

    def pick(self) -> tuple[str, str, dict[str, Any]]:
        weights = [k[2] for k in self.kinds]
        ep, mode, _, build = self.rng.choices(self.kinds, weights=weights)[0]
        return ep, mode, build(self.rng)

    async def submit_one(self) -> str | None:
        ep, mode, inp = self.pick()
        try:
            rec = await self.session.submit(ep, inp, mode=mode)
        except RpdashError as e:  # rate limited, read-only, ...: skip this one
            log.info("demo submit skipped: %s", e)
            return None
        self.submitted.append(rec.job_id)
        return rec.job_id

    async def run(self) -> None:
        await self.clock.sleep(0.5)  # let the dashboard draw first
        while not self._stopped:
            paused = getattr(self.session, "paused", False) or getattr(
                self.session, "readonly", False
            )
            if not paused and self._live() < self.max_live:
                await self.submit_one()
            await self.clock.sleep(self.rng.uniform(*self.every))


__all__ = ["DEMO_API_KEY", "DemoEnv", "DemoTraffic", "start_demo"]
