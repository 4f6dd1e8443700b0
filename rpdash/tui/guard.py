"""The error guard: an unexpected exception in a handler becomes a notification.

Textual stops a widget's message loop after an unhandled exception in one of its handlers
(and the app exits with a traceback). rpdash is kept open all day and leaned on during
incidents, so the handlers that react to data and to keys are wrapped: the exception is
reported through ``App.report_error`` (a notification, and the error kept for tests) and
the widget goes on working with what it knows.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rpdash.tui.format import inert

F = TypeVar("F", bound=Callable[..., Any])


def _report(node: Any, exc: Exception) -> None:
    app = getattr(node, "app", None)
    report = getattr(app, "report_error", None)
    if report is None:
        raise exc
    report(exc)


def guarded(fn: F) -> F:
    """Wrap a (sync or async) method so its exceptions are reported, not raised."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - that is the point
                _report(self, exc)
                return None

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            _report(self, exc)
            return None

    return wrapper  # type: ignore[return-value]


class ErrorGuard:
    """Mixed into the app (before ``App``): every key binding and palette command runs
    through :meth:`run_action`, so a failing action is reported and the app keeps going;
    ``strict_errors`` (tests) lets errors through."""

    strict_errors: bool
    internal_errors: list[BaseException]
    _last_error_note: float
    _return_code: int | None

    async def run_action(self, action: Any, default_namespace: Any = None) -> bool:
        """Every key binding and palette command runs through here: a failing action is
        reported, the app keeps running."""
        try:
            return await super().run_action(action, default_namespace)
        except Exception as exc:  # noqa: BLE001
            if self.strict_errors:
                raise
            self.report_error(exc)
            return True

    def report_error(self, error: Exception) -> None:
        """Show an unexpected error as a notification (at most one every 3 s)."""
        if self.strict_errors:
            raise error
        self.internal_errors.append(error)
        self.log.error("internal error", error)
        now = time.monotonic()
        if now - self._last_error_note > 3:
            self._last_error_note = now
            self.notify(
                inert(f"Internal error ({type(error).__name__}: {error}). rpdash keeps running; "
                      "please report it.", one_line=True),
                severity="error", timeout=8, markup=False,
            )

    def _handle_exception(self, error: Exception) -> None:
        """Last resort, for an error outside the guarded handlers: Textual has already
        stopped the failing widget's message loop, so leave cleanly with one line
        instead of a traceback. ``strict_errors`` (tests) keeps Textual's behaviour."""
        if self.strict_errors:
            super()._handle_exception(error)
            return
        self.internal_errors.append(error)
        self._return_code = 1
        self.exit(return_code=1, message=inert(
            f"rpdash stopped after an internal error: {type(error).__name__}: {error}",
            one_line=True))
