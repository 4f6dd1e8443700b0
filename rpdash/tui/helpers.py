"""The app's helpers, each made on first use: the control plane and its caches, the
favourites, the result keeper and the navigator (side screens)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpdash.tui.control_plane import ControlPlane
    from rpdash.tui.favourites import Favourites
    from rpdash.tui.navigation import Navigator
    from rpdash.tui.results import ResultKeeper


class AppHelpers:
    """Mixed into the app (which provides ``settings``, ``backend``, ``session``, ``clock``,
    ``run_worker`` and ``dashboard``)."""

    settings: Any
    backend: Any
    session: Any
    clock: Any
    dashboard: Any
    run_worker: Any
    _control_plane: ControlPlane | None = None
    _favourites: Favourites | None = None
    _results: ResultKeeper | None = None
    _navigator: Navigator | None = None

    @property
    def control_plane(self) -> ControlPlane:
        """Endpoint list, workers and settings, with their caches (tui/control_plane.py)."""
        if self._control_plane is None:
            from rpdash.tui.control_plane import ControlPlane

            self._control_plane = ControlPlane(self.settings, self.backend)
            self._control_plane.note = self._say  # type: ignore[attr-defined]
        return self._control_plane

    @property
    def favourites(self) -> Favourites:
        if self._favourites is None:
            from rpdash.tui.favourites import Favourites

            self._favourites = Favourites(self.settings,
                                          demo=bool(getattr(self.backend, "demo", False)))
        return self._favourites

    @property
    def results(self) -> ResultKeeper:
        """Finished jobs' results fetched before RunPod drops them (tui/results.py)."""
        if self._results is None:
            from rpdash.tui.results import ResultKeeper

            self._results = ResultKeeper(lambda: self.session, self.clock.time, self.run_worker,
                                         local_url=self.control_plane.local_url)
        return self._results

    @property
    def navigator(self) -> Navigator:
        """Picker, favourites, workers, logs and metrics screens (tui/navigation.py)."""
        if self._navigator is None:
            from rpdash.tui.navigation import Navigator

            self._navigator = Navigator(self, self.control_plane, self.favourites,
                                        lambda: self.dashboard)
        return self._navigator
