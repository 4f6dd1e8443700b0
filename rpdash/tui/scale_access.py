"""How the dashboard reaches :class:`~rpdash.services.scaling.Scaling` (scale, drain,
restore): the control-plane client of the endpoint (its own key when it has one), the
Session for the purge of a drain, the history file for the saved scale, read-only mode.

:meth:`ScaleAccess.why_not` says in one line why an endpoint cannot be scaled here (the
local dev worker, no control plane); :attr:`ScaleAccess.saved` caches which endpoints have
a scale a drain saved (read in a thread, so the palette can offer restore without touching
SQLite on the UI thread). No Textual here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpdash.services.scaling import Scaling
    from rpdash.store.scale_memory import SavedScale, ScaleMemory
    from rpdash.tui.host import AppHost

NO_CONTROL_LOCAL = ("the local dev worker has no control plane: there are no workers to "
                    "scale, drain or restore")


class _SessionPurge:
    """The data plane as a drain uses it: the Session's purge (it also tells the tracker
    that the endpoint's queued jobs are gone)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def purge_queue(self, endpoint_id: str) -> Any:
        return await self.session.purge(endpoint_id)


class ScaleAccess:
    """Scaling for the dashboard, made per action (the client depends on the endpoint)."""

    def __init__(self, host: AppHost) -> None:
        self.host = host
        #: endpoint -> the scale a drain saved (None: nothing); absent: not read yet
        self.saved: dict[str, SavedScale | None] = {}
        #: endpoints whose saved scale is being read
        self.reading: set[str] = set()
        self._memory: ScaleMemory | None = None

    @property
    def memory(self) -> ScaleMemory | None:
        """The saved scales, in the history file (None without one)."""
        store = getattr(self.host.backend, "store", None)
        if self._memory is None and store is not None:
            from rpdash.store.scale_memory import ScaleMemory

            self._memory = ScaleMemory(store)
        return self._memory

    def why_not(self, endpoint_id: str | None) -> str | None:
        """Why ``endpoint_id`` cannot be scaled from here, in one line (None: it can)."""
        if endpoint_id is None:
            return "no current endpoint: pick one with u in the endpoints pane or :ep NAME"
        cp = self.host.control_plane
        if cp.local_url:
            return NO_CONTROL_LOCAL
        if cp.control(endpoint_id) is None:
            return f"no control plane: {cp.control_error or 'not configured'}"
        return None

    def service(self, endpoint_id: str) -> Scaling:
        """A :class:`Scaling` over the endpoint's control-plane client (call
        :meth:`why_not` first: without a client this raises)."""
        from rpdash.core.errors import RpdashError
        from rpdash.services.scaling import Scaling

        cc = self.host.control_plane.control(endpoint_id)
        if cc is None:
            raise RpdashError(self.why_not(endpoint_id) or "no control plane")
        return Scaling(cc, _SessionPurge(self.host.session), self.memory,
                       readonly=self.host.readonly, clock=self.host.clock)

    async def read_saved(self, endpoint_ids: list[str]) -> dict[str, SavedScale | None]:
        """Which of ``endpoint_ids`` have a saved scale (SQLite, in a thread)."""
        memory = self.memory
        if memory is None:
            return dict.fromkeys(endpoint_ids)

        def read() -> dict[str, SavedScale | None]:
            return {ep: memory.get(ep) for ep in endpoint_ids}

        return await asyncio.to_thread(read)

    def restore_why_not(self, endpoint_id: str | None) -> str | None:
        """Why restore is not offered for ``endpoint_id`` (nothing saved, as far as known)."""
        why = self.why_not(endpoint_id)
        if why is None and endpoint_id is not None and endpoint_id in self.saved \
                and self.saved[endpoint_id] is None:
            return "nothing saved for this endpoint: only a drain saves its scale"
        return why
