"""What the screens may ask of the app: a narrow interface, so no screen imports app.py.

The app (:class:`rpdash.tui.app.RpdashApp`) satisfies :class:`AppHost`; the dashboard and
the side screens are handed it (or reach it as ``self.app``) and use nothing else of the
app. Widgets use even less: they post messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rpdash.core.clock import Clock
    from rpdash.tui.backend import Backend, SessionLike
    from rpdash.tui.control_plane import ControlPlane
    from rpdash.tui.results import ResultKeeper


class AppHost(Protocol):
    """The app as the dashboard sees it: its services, its settings and a few actions."""

    session: SessionLike | None
    backend: Backend
    settings: Any
    clock: Clock
    readonly: bool
    highlight: bool
    keymap: dict[str, str]

    @property
    def control_plane(self) -> ControlPlane: ...

    @property
    def results(self) -> ResultKeeper: ...

    @property
    def unsupported_actions(self) -> dict[str, str]: ...

    def resolve_endpoint(self, name_or_id: str) -> str | None: ...

    def write_terminal(self, data: str) -> None: ...

    def run_registry_action(self, action_id: str) -> None: ...

    def action_pick_endpoint(self, query: str = "") -> None: ...

    def action_toggle_pause(self) -> None: ...

    def action_refresh_now(self) -> None: ...

    def action_help(self) -> None: ...
