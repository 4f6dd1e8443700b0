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


# ---------------------------------------------------------------------- key latency


def send_key(app: Any, key: str) -> None:
    """Deliver one key press the way a terminal driver does (``Driver.send_message`` from
    the key name), without Pilot's waits: ``Pilot.press`` waits for CPU idle and then
    forces a repaint (``screen._on_timer_update()``), which would hide the real path
    (the screen's update timer, at most ``MAX_FPS`` frames a second)."""
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    original = REPLACED_KEYS.get(key, key)
    char: str | None
    try:
        char = unicodedata.lookup(_get_unicode_name_from_key(original))
    except KeyError:
        char = key if len(key) == 1 else None
    app._driver.send_message(events.Key(key, char))


def send_paste(app: Any, text: str) -> None:
    """A bracketed paste, as the terminal driver delivers it (one ``Paste`` event)."""
    from textual import events

    app._driver.send_message(events.Paste(text))


class FrameProbe:
    """Times "key press -> the frame that shows its result".

    ``expect(name, pred)`` arms a predicate on the app's state (the key's result: the
    cursor on the next job, a screen on top, the focus moved, ...). Every compositor
    refresh of the screen on top (``Screen._compositor_refresh``: the step that renders
    the dirty regions and hands them to ``App._display``) checks the armed predicates
    *before* it renders; the first refresh that finds one true is the frame that shows
    the result, and its end (after ``_display``, which ``honest_headless`` makes turn the
    frame into escape sequences) is the time recorded. A state change made before the
    refresh started is in that frame: widget state changes only in message handlers,
    never while the compositor runs. Predicates must be false before the key is sent.

    Use inside ``honest_headless()``; ``install()``/``uninstall()`` patch the class.
    """

    def __init__(self) -> None:
        self.pending: dict[str, Any] = {}
        self.armed: set[str] = set()
        self.done: dict[str, float] = {}
        self.state_at: dict[str, float] = {}
        self.frames = 0
        self._orig: Any = None
        self._waiter: Any = None

    def install(self) -> None:
        from textual.screen import Screen

        probe = self
        orig = self._orig = Screen._compositor_refresh

        def _compositor_refresh(screen: Any) -> None:
            top = screen.app.screen is screen
            if top and probe.pending:
                now = time.perf_counter()
                for name, pred in list(probe.pending.items()):
                    try:
                        ok = bool(pred())
                    except Exception:  # noqa: BLE001 - a widget not mounted yet
                        ok = False
                    if ok:
                        probe.armed.add(name)
                        probe.state_at[name] = now
                        del probe.pending[name]
            orig(screen)
            if top:
                probe.frames += 1
                if probe.armed:
                    t = time.perf_counter()
                    for name in probe.armed:
                        probe.done[name] = t
                    probe.armed.clear()
                    if probe._waiter is not None and not probe.pending:
                        probe._waiter.set()

        Screen._compositor_refresh = _compositor_refresh  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from textual.screen import Screen

        if self._orig is not None:
            Screen._compositor_refresh = self._orig  # type: ignore[method-assign]
            self._orig = None

    def expect(self, name: str, pred: Any) -> None:
        self.pending[name] = pred

    async def wait(self, timeout: float = 5.0) -> dict[str, float]:
        """Wait until every armed predicate has had its frame (or the timeout); returns
        name -> perf_counter time of the end of that frame (missing: timed out)."""
        import asyncio

        self._waiter = asyncio.Event()
        if not self.pending and not self.armed:
            self._waiter.set()
        try:
            await asyncio.wait_for(self._waiter.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        self._waiter = None
        self.pending.clear()
        self.armed.clear()
        done, self.done = self.done, {}
        return done


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank; p95 of 30 samples is the 29th smallest)."""
    import math

    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]
