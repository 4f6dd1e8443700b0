"""Keys typed faster than the app reads them stay in order (issue 13.10).

Textual (8.2.8) hands every key of a chunk read from the terminal (SSH lag, a macro,
``tmux send-keys``) to the focused widget's message queue. A printable key is inserted
by the widget's own ``_on_key``; a key such as backspace is a *binding*, which Textual
resolves only after the ``Key`` event has bubbled from the widget through each ancestor's
queue to the App (``App._on_key`` -> ``_check_bindings``). By then the characters that
followed it in the chunk have been inserted, so ``"ab<BS>c"`` ends as ``"ab"``, not ``"ac"``.

:class:`InOrderKeys` resolves the bindings of such a key in the focused text field itself,
when the field dequeues it, which is the order the keys were typed. It runs the same binding
chain (focused widget up to the screen/app, modal-aware) that the App would have run later,
so what a key does is unchanged; only when it happens.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class InOrderKeys:
    """Mix in before a Textual ``Input``/``TextArea`` class."""

    def _inserts_itself(self, event: events.Key) -> bool:
        """Whether the widget's own ``_on_key`` handles this key (a typed character)."""
        check = getattr(self, "check_consume_key", None)
        if event.is_printable:
            return bool(check(event.key, event.character)) if check else True
        return False

    async def _on_key(self, event: events.Key) -> None:
        if self._inserts_itself(event) or not getattr(self, "has_focus", False):
            return
        app = self.app  # type: ignore[attr-defined]
        if await app._check_bindings(event.key):  # noqa: SLF001 - see the module docstring
            event.stop()
            event.prevent_default()


class OrderedInput(InOrderKeys, Input):
    """A one-line ``Input`` whose keys apply in the order typed (dialogs, pickers, filters)."""
