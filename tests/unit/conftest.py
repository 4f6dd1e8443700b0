"""Fixtures of the unit tests: a fake clock and an in-memory history on it. A module that
needs something else defines its own fixture of the same name, which wins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rpdash.core.clock import FakeClock
from rpdash.store.history import HistoryStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> Iterator[HistoryStore]:
    s = HistoryStore(None, clock=clock)
    yield s
    s.close()
