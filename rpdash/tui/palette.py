"""The command palette (ctrl+p): every registry action that makes sense right now, with
its keys, and why it is not available where the API behind the session lacks it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from rpdash.tui.actions import ACTIONS, display_keys, effective_keys, help_text

if TYPE_CHECKING:
    from rpdash.tui.host import AppHost


def _literal(text: str) -> str:
    """The palette reads help as markup: ``:ep [NAME]`` lost its ``[NAME]`` (and
    textual.markup.escape leaves upper-case tags alone)."""
    return text.replace("[", "\\[")


def _why_now(app: Any, action_id: str) -> str | None:
    """Why the dashboard cannot run an action on the current endpoint now (restore with
    nothing saved, scale without a control plane), if it says."""
    why_unavailable = getattr(getattr(app, "dashboard", None), "why_unavailable", None)
    return why_unavailable(action_id) if why_unavailable is not None else None


class ActionCommands(Provider):
    """The command palette lists every registry action that makes sense right now."""

    def _candidates(self) -> Iterable[tuple[str, str, str]]:
        app = cast("AppHost", self.app)
        for a in ACTIONS:
            if not a.palette:
                continue
            if app.readonly and a.readonly_hidden:
                continue
            keys = display_keys(effective_keys(a, app.keymap)) or a.key_display or ""
            why = app.unsupported_actions.get(a.action.split("(")[0]) or _why_now(app, a.id)
            if why:
                yield a.id, f"{a.description} ({keys}): not available", why
                continue
            yield a.id, f"{a.description} ({keys})", help_text(a, readonly=app.readonly)

    async def discover(self) -> Hits:
        for action_id, title, help_text in self._candidates():
            yield DiscoveryHit(title, self._runner(action_id), help=_literal(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action_id, title, help_text in self._candidates():
            score = max(matcher.match(title), matcher.match(help_text) * 0.8)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._runner(action_id),
                          help=_literal(help_text))

    def _runner(self, action_id: str) -> Any:
        app = cast("AppHost", self.app)
        return lambda: app.run_registry_action(action_id)
