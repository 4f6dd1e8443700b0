"""Shared fixtures: a running simulator over loopback.

Kept small and generic on purpose; each part adds its own fixtures in its own test files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpdash.sim.server import SimServer


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A started simulator: scenario "default" (endpoints ``mock`` and ``mock-stream``),
    real clock, key ``sim.api_key``; stopped after the test."""
    server = SimServer(scenario="default").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimServer]]:
    """``sim_factory(**kw)`` starts a SimServer with any constructor arguments; every one
    started is stopped at teardown."""
    started: list[SimServer] = []

    def make(**kw: Any) -> SimServer:
        server = SimServer(**kw).start()
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()
