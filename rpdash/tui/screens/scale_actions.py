"""Scale, drain and restore the endpoint you are on (issue 15, "Act"): ``s`` in the
endpoints pane or ``:scale``, ``:drain``, ``:restore`` and the palette.

Each acts on the current endpoint (the ▶ row), or on the one a ``:`` command names. The
reads before a dialog and the change itself run in the dashboard's "ops" workers (nothing
else cancels them) and come back as :class:`OpDone` messages, whose ``_done_*`` handlers
open the next dialog or say the result in the flash line. A change is sent once: an answer
that was lost is said plainly ("may have been applied; re-read shows ..."), never retried.

Read-only mode hides the three (footer, help, palette) and their keys say why; without a
control plane (the local dev worker, none configured) they say why in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from rich.text import Text

from rpdash.api.control.scaling import UpdateUncertain, scale_text
from rpdash.services.scaling import NothingSaved
from rpdash.tui.format import inert
from rpdash.tui.scale_access import ScaleAccess
from rpdash.tui.scale_lines import drained, read_back, restored, saved_text, uncertain
from rpdash.tui.screens.confirm import ConfirmScreen
from rpdash.tui.screens.drain import DrainScreen
from rpdash.tui.screens.parts import DashboardPart
from rpdash.tui.screens.scale import ScaleScreen
from rpdash.tui.screens.session_calls import err_text
from rpdash.tui.widgets.health import HealthTable

if TYPE_CHECKING:
    from rpdash.api.control.models import EndpointInfo
    from rpdash.api.control.scaling import ScaleChange
    from rpdash.services.scaling import ScaleResult, Scaling
    from rpdash.tui.screens.session_calls import OpDone

#: the screen's actions (registry: ``screen.<name>``) -> the word the user knows
SCALE_ACTIONS = {"scale_endpoint": "scale", "drain_endpoint": "drain",
                 "restore_endpoint": "restore"}
#: registry ids -> the screen's actions
_BY_ID = {"scale": "scale_endpoint", "drain": "drain_endpoint", "restore": "restore_endpoint"}


class ScaleActionsMixin(DashboardPart):
    """Scale, drain, restore: the dashboard screen's side (dialogs and results)."""

    _scale_access: ScaleAccess | None = None
    #: the last result of each (for tests and the debug view)
    last_scale: ScaleResult | None = None
    #: endpoints whose scale is being read or changed (one dialog at a time per endpoint)
    _scale_busy: set[str]

    @property
    def scale_access(self) -> ScaleAccess:
        if self._scale_access is None:
            self._scale_access = ScaleAccess(self._app)
            self._scale_busy = set()
        return self._scale_access

    def on_mount(self) -> None:
        """(Textual calls every class's ``on_mount``.) Which endpoints have a saved scale,
        so restore is offered only where there is something to put back."""
        self._read_saved()

    def _read_saved(self, endpoints: list[str] | None = None) -> None:
        access = self.scale_access
        if access.memory is None or self._app.readonly:
            return
        eps = endpoints if endpoints is not None else list(getattr(self.session, "endpoints", []))
        eps = [ep for ep in eps if ep not in access.reading]  # one read at a time each
        if eps:
            access.reading.update(eps)
            self._run_op("scale_saved", access.read_saved(eps), context=eps)

    def _done_scale_saved(self, msg: OpDone) -> None:
        access = self.scale_access
        access.reading.difference_update(msg.context)
        if msg.error is None:
            access.saved.update(msg.value)

    # ------------------------------------------------------------------ availability
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SCALE_ACTIONS:
            return not self._app.readonly  # read-only: absent (the key says why)
        return super().check_action(action, parameters)  # type: ignore[misc]

    def why_unavailable(self, action_id: str) -> str | None:
        """Why a registry action cannot run on the current endpoint now (palette)."""
        action = _BY_ID.get(action_id)
        if action is None:
            return None
        ep = self.current_endpoint
        access = self.scale_access
        if action == "restore_endpoint":
            if ep is not None and ep not in access.saved:
                self._read_saved([ep])  # known next time; offered meanwhile
            return access.restore_why_not(ep)
        return access.why_not(ep)

    def _refused(self, what: str, ep: str | None) -> tuple[str, Scaling] | None:
        """(endpoint, service) when ``what`` may start on ``ep``; else said in one line."""
        if self._app.readonly:
            self.flash(f"Read-only mode: {what} is not available (rpdash was started with "
                       "--readonly)", "warning")
            return None
        ep = ep or self.current_endpoint
        why = self.scale_access.why_not(ep)
        if why is not None:
            self.flash(f"{what.capitalize()}: not available: {why}", "warning")
            return None
        assert ep is not None
        if ep in self._scale_busy:
            self.flash(f"{what.capitalize()}: {self._ep_name(ep)} is busy with a scale change "
                       "already", "warning")
            return None
        return ep, self.scale_access.service(ep)

    def _ep_name(self, ep: str) -> str:
        return inert(self.names.get(ep, ep), one_line=True)

    def _start(self, op: str, ep: str, coro: Any, context: Any = None) -> None:
        self._scale_busy.add(ep)
        self._run_op(op, coro, context=(ep, context))

    def _finish(self, msg: OpDone) -> tuple[str, Any]:
        ep, context = msg.context
        self._scale_busy.discard(ep)
        return ep, context

    def _said(self, line: str, severity: str = "information") -> None:
        """A result: in the flash line, and as a toast for a few seconds (routine job news
        replaces the flash line within a second on a busy account)."""
        self.flash(line, severity)
        self.app.notify(line, severity=severity, timeout=8, markup=False)  # type: ignore[arg-type]

    def _failed(self, what: str, ep: str, exc: BaseException) -> None:
        """One line: an answer that was lost says what a re-read shows (and a toast, since
        the user must look before doing anything else); other errors as they are."""
        if isinstance(exc, UpdateUncertain):
            self._said(uncertain(self.names.get(ep, ep), exc), "warning")
            if exc.endpoint is not None:
                self._app.control_plane.remember(exc.endpoint)
            return
        self._said(f"{what.capitalize()} of {self._ep_name(ep)} failed: {err_text(exc)}", "error")

    # ------------------------------------------------------------------ scale
    def action_scale_endpoint(self) -> None:
        self.scale_endpoint()

    def scale_endpoint(self, endpoint_id: str | None = None) -> None:
        """Read the endpoint's scale now, then open the form with it."""
        ok = self._refused("scale", endpoint_id)
        if ok is None:
            return
        ep, svc = ok
        self.flash(f"Reading the scale of {self._ep_name(ep)}…")
        self._start("scale_read", ep, svc.control.get_endpoint(ep), svc)

    def _done_scale_read(self, msg: OpDone) -> None:
        ep, svc = self._finish(msg)
        if msg.error is not None:
            self.flash(f"Scale: cannot read {self._ep_name(ep)}'s scale: {err_text(msg.error)}",
                       "error")
            return
        now: EndpointInfo = msg.value
        self._app.control_plane.remember(now)

        def answer(change: ScaleChange | None) -> None:
            if change is None:
                self.flash(f"Scale of {self._ep_name(ep)}: nothing changed")
                return
            kw = {"workers_min": change.workers_min, "workers_max": change.workers_max,
                  "idle_timeout": change.idle_timeout, "scaler_type": change.scaler_type,
                  "scaler_value": change.scaler_value}
            self.flash(f"Scaling {self._ep_name(ep)}…")
            self._start("scale", ep, svc.scale(ep, **kw), change)

        self.app.push_screen(ScaleScreen(ep, self.names.get(ep, ep), now), answer)

    def _done_scale(self, msg: OpDone) -> None:
        ep, change = self._finish(msg)
        if msg.error is not None:
            self._failed("scale", ep, msg.error)
            return
        result: ScaleResult = msg.value
        self.last_scale = result
        self._app.control_plane.remember(result.after)
        self._said(read_back(self.names.get(ep, ep), result, change),
                   "information" if change is None or change.matches(result.after) else "warning")

    # ------------------------------------------------------------------ drain
    def action_drain_endpoint(self) -> None:
        self.drain_endpoint()

    def drain_endpoint(self, endpoint_id: str | None = None) -> None:
        """Save the scale, max 0, purge: after the endpoint's name is typed."""
        ok = self._refused("drain", endpoint_id)
        if ok is None:
            return
        ep, svc = ok
        info = self._app.control_plane.cached_info(ep)
        size = None
        with contextlib.suppress(Exception):
            size = self.query_one(HealthTable).queue_size(ep)
        dialog = DrainScreen(ep, self.names.get(ep, ep), size,
                             scale_text(info) if info is not None else None)

        def answer(yes: bool | None) -> None:
            if yes:
                self.flash(f"Draining {self._ep_name(ep)}…")
                # the drain reads the scale again right before it saves it: the result
                # says so when that differs from what the dialog showed
                self._start("drain", ep, svc.drain(ep), dialog.scale)
            else:
                self.flash(f"Drain of {self._ep_name(ep)}: nothing changed")

        self.app.push_screen(dialog, answer)
        # read now even with a cached scale: the platform may have changed it since (a
        # cut-back halves max workers), and the dialog says what will be saved
        self._run_op("drain_info", svc.control.get_endpoint(ep), context=ep)

    def _done_drain_info(self, msg: OpDone) -> None:
        if msg.error is not None:
            return  # the dialog keeps what it showed; the drain reads it again anyway
        self._app.control_plane.remember(msg.value)
        dialog = self.app.screen
        if isinstance(dialog, DrainScreen) and dialog.endpoint_id == msg.context:
            dialog.set_scale(scale_text(msg.value))

    def _done_drain(self, msg: OpDone) -> None:
        ep, shown = self._finish(msg)
        if msg.error is not None:
            self._failed("drain", ep, msg.error)
            return
        result: ScaleResult = msg.value
        self.last_scale = result
        self._app.control_plane.remember(result.after)
        if result.saved is not None:
            self.scale_access.saved[ep] = result.saved
        line = drained(self.names.get(ep, ep), result)
        was = scale_text(result.before)
        if result.saved is not None and shown and shown != was:
            line += f" (saved {was}: it changed after the dialog showed {shown})"
        self._said(line, "information" if line.endswith(":restore") else "warning")
        with contextlib.suppress(Exception):
            self.session.refresh_now()

    # ------------------------------------------------------------------ restore
    def action_restore_endpoint(self) -> None:
        self.restore_endpoint()

    def restore_endpoint(self, endpoint_id: str | None = None) -> None:
        """Show the saved scale next to the current one; put it back once confirmed."""
        ok = self._refused("restore", endpoint_id)
        if ok is None:
            return
        ep, svc = ok
        self.flash(f"Reading the saved scale of {self._ep_name(ep)}…")
        self._start("restore_read", ep, _restore_inputs(svc, ep), svc)

    def _done_restore_read(self, msg: OpDone) -> None:
        ep, svc = self._finish(msg)
        if isinstance(msg.error, NothingSaved):
            self.scale_access.saved[ep] = None
            self.flash(f"Restore: nothing saved for {self._ep_name(ep)}: only :drain saves a "
                       "scale", "warning")
            return
        if msg.error is not None:
            self.flash(f"Restore: cannot read {self._ep_name(ep)}: {err_text(msg.error)}", "error")
            return
        saved, now = msg.value
        self._app.control_plane.remember(now)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved.saved_at))
        body = Text()
        body.append("now:      ")
        body.append(scale_text(now), style="bold")
        body.append("\nput back: ")
        body.append(saved_text(saved), style="bold")
        body.append(f"\n\n(saved by a drain on {when})", style="dim")

        def answer(yes: bool | None) -> None:
            if yes:
                self.flash(f"Restoring {self._ep_name(ep)}…")
                self._start("restore", ep, svc.restore(ep))
            else:
                self.flash(f"Restore of {self._ep_name(ep)}: nothing changed")

        self.app.push_screen(ConfirmScreen(f"Restore the scale of {self._ep_name(ep)}?", body,
                                           yes="Restore"), answer)

    def _done_restore(self, msg: OpDone) -> None:
        ep, _ = self._finish(msg)
        if msg.error is not None:
            self._failed("restore", ep, msg.error)
            return
        result: ScaleResult = msg.value
        self.last_scale = result
        self.scale_access.saved[ep] = None
        self._app.control_plane.remember(result.after)
        self._said(restored(self.names.get(ep, ep), result))


async def _restore_inputs(svc: Scaling, ep: str) -> tuple[Any, EndpointInfo]:
    """(the saved scale, the endpoint now); NothingSaved when there is none."""
    saved = await asyncio.to_thread(svc.saved, ep)
    if saved is None:
        raise NothingSaved(f"no saved scale for endpoint {ep}")
    return saved, await svc.control.get_endpoint(ep)
