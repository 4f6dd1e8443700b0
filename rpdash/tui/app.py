"""The Textual app: wiring, bindings, keymap, read-only guard, error guard, lifecycle.

Deliberately small: the dashboard screen owns the panes, the widgets own their rendering,
the Session (rpdash.services) owns all network work. The app:

- builds the backend (real services, or the in-process demo) in a worker and shows the
  dashboard when it is up, or the setup screen when there is nothing to watch;
- hands the Session an :class:`~rpdash.tui.messages.EventPump` as its sink and routes the
  resulting messages to the dashboard;
- runs one 1 Hz tick (ages, countdowns, which jobs are on screen) and no other timer;
- applies the user's keymap by binding id, hides destructive actions in read-only mode;
- turns any unexpected exception into a notification instead of a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from typing import TYPE_CHECKING, Any

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Static

from rpdash.core.clock import Clock, RealClock
from rpdash.core.errors import RpdashError
from rpdash.tui.actions import (
    BY_ID,
    bindings_for,
    check_keymap,
    is_destructive,
    with_terminal_aliases,
)
from rpdash.tui.backend import Backend, LiveBackend, SessionLike, StaticBackend
from rpdash.tui.format import plural
from rpdash.tui.guard import ErrorGuard, guarded
from rpdash.tui.helpers import AppHelpers
from rpdash.tui.messages import (
    ApiProblem,
    EventPump,
    HealthUpdated,
    JobDone,
    JobsChanged,
    StreamArrived,
)
from rpdash.tui.palette import ActionCommands
from rpdash.tui.widgets.bars import LineInput

if TYPE_CHECKING:
    from rpdash.config import Settings
    from rpdash.tui.screens.dashboard import DashboardScreen

__all__ = ["RpdashApp", "run_tui", "StaticBackend"]


class StartingScreen(Screen[None]):
    """Shown for the moment the services take to start (the demo starts a simulator)."""

    def compose(self) -> ComposeResult:
        yield Static("Starting rpdash…", id="starting")


class RpdashApp(AppHelpers, ErrorGuard, App[int]):
    """rpdash's dashboard."""

    CSS_PATH = "rpdash.tcss"
    TITLE = "rpdash"
    BINDINGS: list[BindingType] = bindings_for("app")  # type: ignore[assignment]
    COMMANDS = App.COMMANDS | {ActionCommands}
    COMMAND_PALETTE_DISPLAY = "ctrl+p"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: Backend | None = None,
        demo: bool = False,
        endpoints: list[str] | None = None,
        clock: Clock | None = None,
        highlight: bool = True,
        strict_errors: bool = False,
        tick_interval: float = 1.0,
        local_worker: str | None = None,
        scenario: str | None = None,
        pickup: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        if backend is None:
            if settings is None:
                raise ValueError("RpdashApp needs settings or a backend")
            backend = LiveBackend(settings, endpoints=endpoints, demo=demo,
                                  local_worker=local_worker, scenario=scenario, pickup=pickup)
        self.backend: Backend = backend
        self.clock: Clock = clock or RealClock()
        self.highlight = highlight
        self.strict_errors = strict_errors
        self.tick_interval = max(1.0, tick_interval)  # never faster than 1 Hz
        self.readonly = bool(getattr(settings, "readonly", False))
        self.keymap: dict[str, str] = dict(getattr(settings, "keymap", {}) or {})
        self.session: SessionLike | None = None
        self.pump: EventPump | None = None
        self.dashboard: DashboardScreen | None = None
        self.internal_errors: list[BaseException] = []
        self.start_error: str | None = None
        self._last_error_note = 0.0
        self._stopped = False
        self._ticker: Any = None
        #: what rpdash wrote to the terminal itself (bell, OSC 9/777), newest last
        self.terminal_writes: list[str] = []
        theme = getattr(settings, "theme", None)
        if theme:
            with contextlib.suppress(Exception):
                self.theme = theme

    # ------------------------------------------------------------------ start / stop
    def on_mount(self) -> None:
        self.set_timer(10.0, gc.enable)  # whatever happens, collection is back on by then
        for warning in getattr(self.settings, "warnings", None) or ():  # e.g. a .env's host
            self.notify(warning, severity="warning", timeout=12, markup=False)
        if self.keymap:
            unknown = check_keymap(self.keymap)
            if unknown:
                self.notify("Unknown binding ids in [keymap]: " + ", ".join(unknown)
                            + " (see ? for the ids)", severity="warning", timeout=8,
                            markup=False)
            self.set_keymap({k: with_terminal_aliases(v) for k, v in self.keymap.items()
                             if k in BY_ID})
        if isinstance(self.backend, LiveBackend):
            has_key, has_endpoint = self.backend.missing()
            if not (has_key and has_endpoint):
                self._show_setup(has_key, has_endpoint)
                return
        self.push_screen(StartingScreen())
        self._start_backend()

    def _show_setup(self, has_key: bool, has_endpoint: bool, problem: str | None = None) -> None:
        gc.enable()  # no dashboard to wait for (see _settle_heap)
        from rpdash import paths
        from rpdash.tui.screens.setup import SetupScreen

        config = getattr(self.settings, "config_file", None)
        if config is None:
            with contextlib.suppress(Exception):
                config = paths.config_file()
        self.push_screen(SetupScreen(has_key=has_key, has_endpoint=has_endpoint,
                                     config_file=config, problem=problem))

    @work(group="startup", exit_on_error=False)
    async def _start_backend(self) -> None:
        self.pump = EventPump(self)
        try:
            session = await self.backend.start(self.pump)
        except Exception as exc:  # noqa: BLE001 - shown, never a traceback
            message = str(exc) if isinstance(exc, RpdashError) else f"{type(exc).__name__}: {exc}"
            self.start_error = message
            self._started(None, message)
            return
        self._started(session, None)

    def _started(self, session: SessionLike | None, error: str | None) -> None:
        from rpdash.tui.screens.dashboard import DashboardScreen

        if error is not None or session is None:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            has_key, has_endpoint = (True, True)
            if isinstance(self.backend, LiveBackend):
                has_key, has_endpoint = self.backend.missing()
            self._show_setup(has_key, has_endpoint, problem=f"Could not start: {error}")
            return
        self.session = session
        self.readonly = self.readonly or bool(getattr(session, "readonly", False))
        self.dashboard = DashboardScreen(self)
        self.switch_screen(self.dashboard)
        self.dashboard.call_after_refresh(self.navigator.started)
        self._ticker = self.set_interval(self.tick_interval, self._tick, name="tick")
        # Once the dashboard has mounted (table filled) and painted, what is left is
        # long-lived: keep the garbage collector from walking it again and again.
        self.dashboard.call_after_refresh(self._settle_heap)

    @staticmethod
    def _settle_heap() -> None:
        """Freeze the loaded history and table out of the collector's reach, and collect
        the young generation less often: a 10,000-row update allocates ~200k short-lived
        objects, and with the default threshold (700) the full collections that follow
        cost more than the update itself (bench/joblist_bench.py)."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        gc.enable()  # the CLI turns it off for the start-up (rpdash.cli.app._dashboard)

    def exit(self, result: int | None = None, return_code: int = 0,
             message: Any = None) -> None:
        # From here on, service events are dropped: the screens are about to go away.
        if self.pump is not None:
            self.pump.closed = True
        if self._ticker is not None:
            self._ticker.stop()
        super().exit(result, return_code, message)

    def _live_dashboard(self) -> DashboardScreen | None:
        dash = self.dashboard
        if dash is None or not dash.is_attached or self._stopped or not self.is_running:
            return None  # shutting down (run_test stops the app without exit())
        return dash

    def on_key(self, event: events.Key) -> None:
        """Keys typed ahead of a prompt belong to it: "/FAIL" in one read sends F, A, I, L
        to the jobs list before "/" has opened the filter line; a printable key that
        comes back up while a prompt has the focus never went through it."""
        line = self.focused
        if isinstance(line, LineInput) and event.is_printable and event.character:
            event.stop()
            event.prevent_default()  # not also a binding (A: sort, L: logs)
            line.insert_text_at_cursor(event.character)

    async def action_quit(self) -> None:
        """Quit; while jobs are still live, ask first (they keep running on RunPod, but
        rpdash stops following them and their streams)."""
        from rpdash.tui.screens.confirm import ConfirmScreen

        live = [r for r in (self.session.jobs.values() if self.session else ())
                if not r.terminal]
        if not live or self.dashboard is None or self.screen is not self.dashboard:
            await self._quit_now()
            return
        n = len(live)
        body = (f"{plural(n, 'job')} still {'runs' if n == 1 else 'run'} or "
                f"{'waits' if n == 1 else 'wait'}. {'It keeps' if n == 1 else 'They keep'} "
                "going on RunPod, but rpdash stops following them (streams included) until "
                "you start it again.")

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._quit_now(), group="quit", exit_on_error=False)

        self.push_screen(ConfirmScreen("Quit rpdash?", body, yes="Quit"), answer)

    async def _quit_now(self) -> None:
        """Stop the services first (Session.stop, close client and store), then exit."""
        await self._shutdown_backend()
        self.exit(0)

    async def on_unmount(self) -> None:
        # Any other way out (tests leaving run_test, :q): same clean stop, once.
        await self._shutdown_backend()

    async def _shutdown_backend(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._ticker is not None:
            self._ticker.stop()
        if self.pump is not None:
            self.pump.closed = True
        if self._control_plane is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._control_plane.aclose(), timeout=5)
        try:
            await asyncio.wait_for(self.backend.stop(), timeout=10)
        except BaseException:  # noqa: BLE001 - exiting anyway
            pass

    # ------------------------------------------------------------------ events from services
    @guarded
    def on_health_updated(self, msg: HealthUpdated) -> None:
        if (dash := self._live_dashboard()) is not None:
            dash.on_health(msg.event)

    @guarded
    def on_jobs_changed(self, msg: JobsChanged) -> None:
        if self.pump is None:
            return
        records = self.pump.take_jobs()
        if records and (dash := self._live_dashboard()) is not None:
            dash.on_jobs(records)
            dash.refresh_notes(force=False)

    @guarded
    def on_stream_arrived(self, msg: StreamArrived) -> None:
        if self.pump is None:
            return
        events = self.pump.take_streams()
        if events and (dash := self._live_dashboard()) is not None:
            dash.on_streams(events)

    @guarded
    def on_job_done(self, msg: JobDone) -> None:
        if (dash := self._live_dashboard()) is not None:
            dash.on_job_done(msg.job)

    @guarded
    def on_api_problem(self, msg: ApiProblem) -> None:
        if (dash := self._live_dashboard()) is not None:
            dash.on_problem(msg.event.message, msg.event.severity, msg.event.endpoint_id)

    def write_terminal(self, data: str) -> None:
        """Write raw bytes-as-text (the bell, a desktop notification) to the terminal,
        in order with the frames, through the driver; kept in ``terminal_writes``."""
        self.terminal_writes = [*self.terminal_writes[-49:], data]
        driver = self._driver
        if driver is not None and not self.is_headless:
            with contextlib.suppress(Exception):
                driver.write(data)

    @guarded
    def _tick(self) -> None:
        if (dash := self._live_dashboard()) is not None:
            dash.tick_incidents()  # alert hold times run while covered too
            dash.tick()
            self.results.sweep()
            dash.refresh_notes()

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.readonly and is_destructive(action):
            return False
        if action in ("refresh_now", "toggle_pause", "new_job", "focus_pane", "command_line",
                      "pick_endpoint", "show_workers", "show_logs", "show_metrics", "show_alerts",
                      "favourite") and self.dashboard is None:
            return False
        if action in self.unsupported_actions:
            return None  # shown disabled; the palette and the notice say why
        return True

    def run_registry_action(self, action_id: str) -> None:
        """Run an action by registry id (command palette), in the right pane."""
        spec = BY_ID[action_id]
        if self.readonly and spec.readonly_hidden:
            self.notify("Read-only mode", severity="warning")
            return
        why = self.unsupported_actions.get(spec.action.split("(")[0])
        if why:
            self.notify(f"{spec.description}: not available: {why}", severity="warning",
                        timeout=6, markup=False)
            return
        dash = self.dashboard
        if spec.scope == "app" or dash is None:
            self.call_later(self.run_action, spec.action)
            return
        target = {
            "health": "#health",
            "jobs": "#jobs",
            "output": "#output",
            "submit": "#submit",
        }[spec.scope]
        node = dash.query_one(target)
        self.call_later(self.run_action, spec.action, node)

    def action_help(self) -> None:
        from rpdash.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.keymap, readonly=self.readonly))

    def action_command_line(self) -> None:
        if self.dashboard is not None and self.screen is self.dashboard:
            self.dashboard.open_command_line()

    def action_refresh_now(self) -> None:
        if self.session is None:
            return
        self.session.refresh_now()
        self._say("Refreshing now")

    def action_toggle_pause(self) -> None:
        if self.session is None:
            return
        if self.session.paused:
            self.session.resume()
            self._say("Live refresh resumed")
        else:
            self.session.pause()
            self._say("Live refresh paused (p resumes)")
        self._describe_pause(self.session.paused)
        if self.dashboard is not None:
            self.dashboard.update_status()

    def _say(self, message: str) -> None:
        """Routine news: the dashboard's flash line (a toast where there is none)."""
        if self.dashboard is not None and self.dashboard.is_attached:
            self.dashboard.flash(message)
        else:
            self.notify(message, timeout=2)

    def _describe_pause(self, paused: bool) -> None:
        """The footer names what the key does now: Pause, or Resume while paused."""
        import dataclasses

        label = "Resume" if paused else "Pause"
        table = self._bindings.key_to_bindings
        for key, bindings in table.items():
            table[key] = [dataclasses.replace(b, description=label) if b.id == "pause" else b
                          for b in bindings]
        self.refresh_bindings()

    def action_new_job(self) -> None:
        if self.dashboard is not None:
            self.dashboard.new_job()

    def action_focus_pane(self, name: str) -> None:
        if self.dashboard is not None and self.screen is self.dashboard:
            self.dashboard.focus_pane(name)

    # ------------------------------------------------------------------ beyond the console
    @property
    def unsupported_actions(self) -> dict[str, str]:
        """Action name -> why the API behind the session lacks it (local dev worker)."""
        return self._control_plane.unsupported if self._control_plane is not None else {}

    def action_pick_endpoint(self, query: str = "") -> None:
        self.navigator.open_picker(query)

    def action_show_workers(self) -> None:
        self.navigator.open_workers()

    def action_show_logs(self) -> None:
        self.navigator.open_logs()

    def action_show_metrics(self) -> None:
        self.navigator.open_metrics()

    def action_show_alerts(self) -> None:
        if (dash := self._live_dashboard()) is not None:
            dash.show_alerts()

    def action_favourite(self, n: int) -> None:
        self.navigator.favourite(n)

    async def action_start_demo(self) -> None:
        """From the setup screen: switch to the demo."""
        if self.settings is None:
            return
        self.backend = LiveBackend(self.settings, demo=True)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(StartingScreen())
        self._start_backend()

    def resolve_endpoint(self, name_or_id: str) -> str | None:
        names = {v: k for k, v in self.backend.names.items()}  # name -> id
        if name_or_id in names:
            return names[name_or_id]
        if self.settings is not None:
            try:
                return self.settings.resolve_endpoint(name_or_id)
            except RpdashError:
                return None
        return name_or_id


def run_tui(settings: Settings, *, demo: bool = False, endpoints: list[str] | None = None,
            local_worker: str | None = None, scenario: str | None = None,
            pickup: str | None = None) -> int:
    """Entry point used by the CLI: run the dashboard until the user quits. ``scenario`` and
    ``pickup`` choose the --demo simulator's world (services.demo.start_demo)."""
    app = RpdashApp(settings, demo=demo, endpoints=endpoints, local_worker=local_worker,
                    scenario=scenario, pickup=pickup)
    result = app.run()
    if app.return_code not in (None, 0):
        return int(app.return_code)
    return int(result or 0)
