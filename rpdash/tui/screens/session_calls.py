"""Session calls from the dashboard (submit, cancel, retry, purge) run in workers.

A worker only awaits the Session and posts an :class:`OpDone`; the screen's
``_done_<op>`` handler changes the widgets. The workers are in the group "ops", which
nothing else cancels (a poller never cancels a destructive operation).
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.message import Message

from rpdash.core.errors import InvalidInput, RpdashError
from rpdash.tui.format import inert
from rpdash.tui.guard import guarded


class OpDone(Message):
    """A Session call finished (the worker's only way to affect the UI)."""

    def __init__(self, op: str, *, value: Any = None, error: BaseException | None = None,
                 context: Any = None) -> None:
        super().__init__()
        self.op = op
        self.value = value
        self.error = error
        self.context = context


def err_text(exc: BaseException) -> str:
    """One line for a notification, with control characters made inert."""
    if isinstance(exc, RpdashError):
        return inert(str(exc), one_line=True)
    return inert(f"{type(exc).__name__}: {exc}", one_line=True)


def is_local(exc: BaseException) -> bool:
    """True when the request was refused before it left (bad input)."""
    return isinstance(exc, InvalidInput)


class SessionCallsMixin:
    """Runs Session calls in workers and routes each result to ``_done_<op>``."""

    post_message: Any

    def _run_op(self, op: str, coro: Any, *, context: Any = None) -> None:
        self._op_worker(op, coro, context)

    @work(group="ops", exit_on_error=False)
    async def _op_worker(self, op: str, coro: Any, context: Any) -> None:
        try:
            value = await coro
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(OpDone(op, error=exc, context=context))
        else:
            self.post_message(OpDone(op, value=value, context=context))

    @guarded
    def on_op_done(self, msg: OpDone) -> None:
        handler = getattr(self, f"_done_{msg.op}", None)
        if handler is not None:
            handler(msg)
