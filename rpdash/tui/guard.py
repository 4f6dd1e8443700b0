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
from collections.abc import Callable
from typing import Any, TypeVar

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
