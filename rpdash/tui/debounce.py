"""Leading-edge debounce for the output pane following the job cursor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class LeadingDebounce:
    """``push(value)`` calls ``apply(value)`` at once when nothing was pushed in the last
    ``wait`` seconds; pushes closer than that (a held key) coalesce, and the last one is
    applied once they pause. So one j shows its job in the same frame, and holding j over
    a long list does not load every job's output on the way."""

    def __init__(self, set_timer: Callable[..., Any], wait: float,
                 apply: Callable[[Any], None]) -> None:
        self._set_timer = set_timer
        self.wait = wait
        self._apply = apply
        self.timer: Any = None
        self._pending: Any = None

    @property
    def settling(self) -> bool:
        return self.timer is not None

    def push(self, value: Any) -> None:
        self._pending = value
        leading = self.timer is None
        if not leading:
            self.timer.stop()
        self.timer = self._set_timer(self.wait, self._settled)
        if leading:
            self._apply(value)

    def _settled(self) -> None:
        self.timer = None
        self._apply(self._pending)
