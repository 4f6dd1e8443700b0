"""Helpers shared by the benchmarks (not a benchmark itself)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from typing import Any


class Timed:
    """Wraps a callable, recording ``(start, duration)`` of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def wrap(self, fn: Any) -> Any:
        calls = self.calls

        def timed(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                calls.append((t0, time.perf_counter() - t0))

        return timed

    def total(self, since: float = 0.0) -> float:
        return sum(d for t, d in self.calls if t >= since)


@contextlib.contextmanager
def honest_headless() -> Iterator[list[tuple[float, float, str]]]:
    """Make headless frames cost what real ones do.

    Under ``App.run_test`` the compositor renders every update, but ``App._display`` skips
    turning it into terminal escape sequences (there is no terminal). This patch does that
    step too (into a string that is thrown away), and records ``(start, duration, screen
    class name)`` of every frame, so frame costs measured headless include it.
    """
    from textual.app import App
    from textual._compositor import CompositorUpdate

    frames: list[tuple[float, float, str]] = []
    orig = App._display

    def _display(self: Any, screen: Any, renderable: Any) -> None:
        t0 = time.perf_counter()
        try:
            if renderable is not None and self.is_headless and not self._batch_count:
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(self.console)
            orig(self, screen, renderable)
        finally:
            if renderable is not None:
                frames.append((t0, time.perf_counter() - t0, type(screen).__name__))

    App._display = _display  # type: ignore[method-assign]
    try:
        yield frames
    finally:
        App._display = orig  # type: ignore[method-assign]


def null_console_file() -> io.StringIO:
    return io.StringIO()
