"""The ``:`` command line (k9s style): ``:ep whisper``, ``:watch ID``, ``:purge``, ``:q``.

:func:`parse_command` splits a line; :func:`run_command` does what it says through a
:class:`CommandTarget` (the dashboard) and the :class:`~rpdash.tui.host.AppHost`. Unknown
commands and missing arguments are said in one line, never raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from rpdash.tui.format import inert

if TYPE_CHECKING:
    from textual.app import App

    from rpdash.tui.host import AppHost

COMMANDS_HELP = (
    ":watch JOB_ID [ENDPOINT]  :ep [NAME]  :workers  :logs  :metrics  :alerts  :jobs  :all  "
    ":submit  :purge [NAME]  :scale  :drain  :restore  :filter TEXT  :pause  :refresh  :help  :q"
)
#: the same without the commands that change something on RunPod (read-only mode)
COMMANDS_HELP_READONLY = (
    ":watch JOB_ID [ENDPOINT]  :ep [NAME]  :workers  :logs  :metrics  :alerts  :jobs  :all  "
    ":filter TEXT  :pause  :refresh  :help  :q"
)


def commands_help(readonly: bool) -> str:
    return COMMANDS_HELP_READONLY if readonly else COMMANDS_HELP


class CommandTarget(Protocol):
    """What the command line drives: the dashboard's panes."""

    @property
    def app(self) -> App[Any]: ...

    @property
    def host(self) -> AppHost: ...

    def watch(self, job_id: str, endpoint: str | None) -> None: ...

    def is_watched(self, endpoint_id: str) -> bool: ...

    def use_endpoint(self, endpoint_id: str) -> None: ...

    def focus_pane(self, name: str) -> None: ...

    def show_all_jobs(self) -> None: ...

    def set_filter(self, text: str) -> None: ...

    def new_job(self) -> None: ...

    def purge(self, endpoint_id: str | None = None) -> None: ...

    def scale_endpoint(self, endpoint_id: str | None = None) -> None: ...

    def drain_endpoint(self, endpoint_id: str | None = None) -> None: ...

    def restore_endpoint(self, endpoint_id: str | None = None) -> None: ...

    def flash(self, message: str, severity: str = "information") -> None: ...


def parse_command(line: str) -> tuple[str, list[str]] | None:
    """``":ep  whisper"`` -> ``("ep", ["whisper"])``; None for an empty line."""
    words = line.strip().lstrip(":").split()
    if not words:
        return None
    return words[0].lower(), words[1:]


def run_command(target: CommandTarget, line: str) -> None:
    """Run one ``:`` command line."""
    parsed = parse_command(line)
    if parsed is None:
        return
    cmd, args = parsed
    host = target.host
    app = target.app
    if host.readonly and cmd in ("submit", "new", "purge", "scale", "drain", "restore"):
        target.flash(f"Read-only mode: :{cmd} is not available "
                     "(rpdash was started with --readonly)", "warning")
        return
    if cmd in ("q", "quit", "exit"):
        app.exit()
    elif cmd == "watch":
        if not args:
            app.notify("usage: :watch JOB_ID [ENDPOINT]", severity="warning")
            return
        target.watch(args[0], args[1] if len(args) > 1 else None)
    elif cmd in ("ep", "endpoint", "use"):
        if not args:
            host.action_pick_endpoint()  # the account's endpoints, fuzzy
            return
        ep = host.resolve_endpoint(args[0])
        if ep is None or not target.is_watched(ep):
            host.action_pick_endpoint(args[0])  # not watched yet: pick it from the list
            return
        target.use_endpoint(ep)
    elif cmd in ("workers", "logs", "metrics", "alerts"):
        host.run_registry_action(cmd)
    elif cmd == "jobs":
        target.focus_pane("jobs")
    elif cmd == "all":
        target.show_all_jobs()
    elif cmd in ("submit", "new"):
        target.new_job()
    elif cmd in ("purge", "scale", "drain", "restore"):
        ep = host.resolve_endpoint(args[0]) if args else None
        if args and ep is None:
            app.notify(f"Unknown endpoint: {inert(args[0], one_line=True)}",
                       severity="warning", markup=False)
            return
        act = target.purge if cmd == "purge" else getattr(target, f"{cmd}_endpoint")
        act(ep)
    elif cmd == "filter":
        target.set_filter(" ".join(args))
    elif cmd == "pause":
        host.action_toggle_pause()
    elif cmd == "refresh":
        host.action_refresh_now()
    elif cmd == "help":
        host.action_help()
    else:
        app.notify(f"Unknown command {inert(cmd, one_line=True)!r}. Try: "
                   + commands_help(host.readonly),
                   severity="warning", timeout=6, markup=False)
