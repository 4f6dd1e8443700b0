"""Act on an endpoint's scale: scale, drain, restore (used by the CLI and the dashboard).

- **scale**: change min/max workers, idle timeout or scaler; the endpoint is read before
  and the answer of the update is what it has after (``before`` -> ``after``).
- **drain**: one action to stop an endpoint: its current scale (min, max, idle timeout,
  scaler) is saved in the history database *first*, then min and max workers are set to 0
  and the queue is purged. The result says how many queued jobs were removed and the values
  the server now has. Draining an endpoint already at max 0 keeps the scale saved by the
  earlier drain (a second drain must not overwrite it with zeros).
- **restore**: put back the saved scale (it survives a restart: SQLite), then forget it.
  Nothing saved is an error that says so.

All three refuse in read-only mode with one line (``ReadOnly``) before any request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rpdash.api.control.models import EndpointInfo
from rpdash.api.control.scaling import ScaleChange, scale_text, scaler_value_of
from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import InvalidInput, RpdashError
from rpdash.services.actions import ReadOnly
from rpdash.services.validation import check_endpoint_id
from rpdash.store.scale_memory import SavedScale, ScaleMemory

__all__ = ["NothingSaved", "ScaleResult", "Scaling", "confirms"]


def confirms(endpoint: EndpointInfo, typed: str | None) -> bool:
    """Whether ``typed`` (what the user typed to confirm a drain) is the endpoint's name or
    id, exactly (surrounding spaces aside)."""
    t = (typed or "").strip()
    return bool(t) and t in (endpoint.name, endpoint.id)


class NothingSaved(InvalidInput):
    """restore found no scale saved for the endpoint."""

    label = "nothing saved"


@dataclass(frozen=True, slots=True)
class ScaleResult:
    """What an action did: the endpoint before and after (as the server answered), the jobs
    a drain purged, and the scale saved (drain) or put back (restore)."""

    action: str  # scale | drain | restore
    endpoint_id: str
    before: EndpointInfo
    after: EndpointInfo
    removed: int | None = None
    saved: SavedScale | None = None
    note: str | None = None

    @property
    def summary(self) -> str:
        """One line: ``mock: workers 0-3, idle 5 s -> workers 0-0, idle 5 s``."""
        line = f"{self.endpoint_id}: {scale_text(self.before)} -> {scale_text(self.after)}"
        if self.removed is not None:
            line += f"; {self.removed} queued job{'s' if self.removed != 1 else ''} removed"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "endpoint_id": self.endpoint_id,
                "before": self.before.to_dict(), "after": self.after.to_dict(),
                "removed": self.removed, "saved": self.saved.to_dict() if self.saved else None,
                "note": self.note}  # fmt: skip


class Scaling:
    """Scale, drain and restore over ``control`` (a ControlClient) and ``data`` (the data
    plane client, for the purge); ``memory`` keeps drained scales (None: drain and restore
    refuse)."""

    def __init__(self, control: Any, data: Any, memory: ScaleMemory | None, *,
                 readonly: bool = False, clock: Clock | None = None) -> None:  # fmt: skip
        self.control = control
        self.data = data
        self.memory = memory
        self.readonly = readonly
        self.clock: Clock = clock or RealClock()

    def guard(self, what: str) -> None:
        if self.readonly:
            raise ReadOnly(f"read-only mode: {what} is disabled (started with --readonly)")

    async def scale(self, endpoint_id: str, *, workers_min: int | None = None,
                    workers_max: int | None = None, idle_timeout: int | None = None,
                    scaler_type: str | None = None, scaler_value: int | None = None) -> ScaleResult:  # fmt: skip
        """Change what is given (None = leave it); before -> after as the server has it."""
        self.guard("scale")
        endpoint_id = check_endpoint_id(endpoint_id)
        ScaleChange(workers_min, workers_max, idle_timeout, scaler_type, scaler_value).checked()
        before = await self.control.get_endpoint(endpoint_id)
        after = await self.control.update_endpoint(
            endpoint_id, workers_min=workers_min, workers_max=workers_max,
            idle_timeout=idle_timeout, scaler_type=scaler_type, scaler_value=scaler_value,
        )  # fmt: skip
        return ScaleResult("scale", endpoint_id, before, after)

    async def drain(self, endpoint_id: str) -> ScaleResult:
        """Save the scale, set min and max workers to 0, purge the queue."""
        self.guard("drain")
        endpoint_id = check_endpoint_id(endpoint_id)
        memory = self._memory("drain")
        before = await self.control.get_endpoint(endpoint_id)
        saved = memory.get(endpoint_id)
        note = None
        if before.workers_max == 0 and saved is not None:
            note = "already drained: keeping the scale saved before"
        elif before.workers_max == 0:
            saved, note = None, "max workers was already 0: no scale saved"
        else:
            saved = SavedScale(endpoint_id, before.name, self.clock.time(), before.workers_min,
                               before.workers_max, before.idle_timeout_s, before.scaler_type,
                               scaler_value_of(before))  # fmt: skip
            memory.save(saved)  # before anything changes: a failure below loses nothing
        after = await self.control.update_endpoint(endpoint_id, workers_min=0, workers_max=0)
        try:
            removed = (await self.data.purge_queue(endpoint_id)).removed
        except RpdashError as exc:
            exc.message = (f"endpoint {endpoint_id} is scaled to 0 ({scale_text(after)}), but "
                           f"purging its queue failed: {exc.message}")  # fmt: skip
            exc.args = (exc.message,)
            raise
        return ScaleResult("drain", endpoint_id, before, after, removed, saved, note)

    async def restore(self, endpoint_id: str) -> ScaleResult:
        """Put back the scale the last drain saved, then forget it."""
        self.guard("restore")
        endpoint_id = check_endpoint_id(endpoint_id)
        memory = self._memory("restore")
        saved = memory.get(endpoint_id)
        if saved is None:
            raise NothingSaved(f"no saved scale for endpoint {endpoint_id}: only drain saves one "
                               "(set it with `rpdash scale`)")  # fmt: skip
        before = await self.control.get_endpoint(endpoint_id)
        # only what differs now: drain changed min and max; the rest is sent back only if
        # it was changed since (so a value the API shows but would refuse is not re-sent)
        change: dict[str, Any] = {}
        for key, saved_v, now_v in (("workers_min", saved.workers_min, before.workers_min),
                                    ("workers_max", saved.workers_max, before.workers_max),
                                    ("idle_timeout", saved.idle_timeout, before.idle_timeout_s)):  # fmt: skip
            if saved_v is not None and saved_v != now_v:
                change[key] = saved_v
        if saved.scaler_type and saved.scaler_value is not None and \
                (saved.scaler_type, saved.scaler_value) != (before.scaler_type, scaler_value_of(before)):  # fmt: skip
            change["scaler_type"], change["scaler_value"] = saved.scaler_type, saved.scaler_value
        if saved.scaler_type == "REQUEST_COUNT" or change.get("scaler_type") == "REQUEST_COUNT":
            change.pop("idle_timeout", None)
        after = await self.control.update_endpoint(endpoint_id, **change) if change else before
        memory.forget(endpoint_id)
        return ScaleResult("restore", endpoint_id, before, after, saved=saved)

    def saved(self, endpoint_id: str) -> SavedScale | None:
        """The scale a drain saved for the endpoint (what restore would put back), if any."""
        return self.memory.get(endpoint_id) if self.memory is not None else None

    def _memory(self, what: str) -> ScaleMemory:
        if self.memory is None:
            raise InvalidInput(f"{what} needs the history database (it keeps the saved scale)")
        return self.memory
