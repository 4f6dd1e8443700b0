"""The one registry of user actions.

Each :class:`ActionSpec` becomes a Textual ``Binding`` with an ``id`` (so a user's
``[keymap]`` can remap it through ``App.set_keymap``), appears in the footer when ``show``,
is listed by the ``?`` help screen, and is offered by the command palette. Widgets and
screens take their ``BINDINGS`` from :func:`bindings_for` instead of writing their own, so
these five places can never disagree.

``destructive`` actions (cancel, retry, purge) and the other ones that change something on
RunPod (submit: the Session refuses it in read-only mode too) are hidden by
``check_action`` when rpdash runs ``--readonly``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding

#: where an action lives; the scope decides which widget's BINDINGS carry it
SCOPES = {
    "app": "Everywhere",
    "health": "Endpoints pane",
    "jobs": "Jobs pane",
    "output": "Output pane",
    "submit": "Submit form",
}


@dataclass(frozen=True, slots=True)
class ActionSpec:
    id: str  # binding id, the name used in [keymap]
    keys: str  # default keys, comma separated, Textual key names
    action: str  # Textual action string, run in the namespace of the scope's node
    description: str  # short, for the footer
    scope: str = "app"
    help: str = ""  # longer, for the help screen and the palette
    show: bool = True  # in the footer
    destructive: bool = False  # asks first; hidden in read-only mode
    writes: bool = False  # changes something on RunPod; hidden in read-only mode
    for_writes: bool = False  # only serves the ones above (marks); hidden in read-only mode
    palette: bool = True  # offered by the command palette
    priority: bool = False
    key_display: str | None = None

    @property
    def readonly_hidden(self) -> bool:
        return self.destructive or self.writes or self.for_writes


ACTIONS: tuple[ActionSpec, ...] = (
    # ---------------------------------------------------------------- everywhere
    ActionSpec("quit", "q", "quit", "Quit", help="Leave rpdash (jobs keep running on RunPod)"),
    ActionSpec("help", "question_mark", "help", "Help", key_display="?",
               help="Show every key binding"),
    ActionSpec("palette", "ctrl+p", "command_palette", "Palette", show=False, palette=False,
               priority=True, help="Search every action by name"),
    ActionSpec("command", "colon", "command_line", "Cmd", key_display=":", show=False,
               help=":watch ID, :ep [NAME], :workers, :logs, :metrics, :alerts, :jobs, :submit, :purge, "
                    ":scale, :drain, :restore, :filter TEXT, :q"),
    ActionSpec("refresh", "ctrl+r", "refresh_now", "Refresh", show=False,
               help="Poll health and job status now"),
    ActionSpec("pause", "p", "toggle_pause", "Pause", help="Pause or resume live refresh"),
    ActionSpec("new_job", "n", "new_job", "New", help="Open the submit form"),
    ActionSpec("pane_health", "alt+1", "focus_pane('health')", "Endpoints", show=False,
               priority=True, help="Go to the endpoints pane"),
    ActionSpec("pane_jobs", "alt+2", "focus_pane('jobs')", "Jobs", show=False,
               priority=True, help="Go to the jobs pane"),
    ActionSpec("pane_output", "alt+3", "focus_pane('output')", "Output", show=False,
               priority=True, help="Go to the output pane"),
    ActionSpec("pane_submit", "alt+4", "focus_pane('submit')", "Submit", show=False,
               priority=True, help="Go to the submit form (alt+1-alt+4 work from any field)"),
    # ---------------------------------------------------------------- beyond the console
    ActionSpec("pick_endpoint", "ctrl+e", "pick_endpoint", "Endpoints list", show=False,
               help="Pick an endpoint of the account to watch, star favourites 0-9 (:ep)"),
    ActionSpec("workers", "W", "show_workers", "Workers", show=False, key_display="W",
               help="The current endpoint's workers (status, GPU, data centre, uptime)"),
    ActionSpec("logs", "L", "show_logs", "Logs", show=False, key_display="L",
               help="Live log tail of the current endpoint's workers"),
    ActionSpec("metrics", "M", "show_metrics", "Metrics", show=False, key_display="M",
               help="Latency percentiles, failures, throughput, cold starts, health trends"),
    ActionSpec("alerts", "exclamation_mark", "show_alerts", "Alerts", show=False, key_display="!",
               help="Alerts fired and recovered (kept in the history)"),
    *(ActionSpec(f"favourite_{n}", str(n), f"favourite({n})", f"Favourite {n}", show=False,
                 palette=False, help=f"Watch and switch to favourite endpoint {n}")
      for n in range(10)),
    ActionSpec("next_pane", "tab", "focus_next", "Next pane", show=False, palette=False,
               help="Move to the next pane or field"),
    ActionSpec("prev_pane", "shift+tab", "focus_previous", "Prev pane", show=False,
               palette=False, help="Move to the previous pane or field"),
    # ---------------------------------------------------------------- endpoints pane
    ActionSpec("endpoint_jobs", "enter", "show_endpoint_jobs", "Its jobs", scope="health",
               help="Show only this endpoint's jobs"),
    ActionSpec("endpoint_current", "u", "make_current", "Use", scope="health",
               help="Make this endpoint the current one (submit form, jobs filter)"),
    ActionSpec("verdict_why", "v", "show_verdict", "Why", scope="health",
               help="Why the endpoint's verdict says what it says (its reasoning)"),
    ActionSpec("purge", "ctrl+d", "purge", "Purge queue", scope="health", destructive=True,
               help="Remove every queued job of this endpoint (asks for its name)"),
    ActionSpec("scale", "s", "screen.scale_endpoint", "Scale", scope="health", destructive=True,
               help="Min/max workers, idle timeout, scaler of this endpoint (:scale; shows "
                    "before -> after, asks first)"),
    ActionSpec("drain", "", "screen.drain_endpoint", "Drain", scope="health", show=False,
               destructive=True, key_display=":drain",
               help=":drain  save this endpoint's scale, set its workers to 0, purge its "
                    "queue (asks for its name)"),
    ActionSpec("restore", "", "screen.restore_endpoint", "Restore scale", scope="health",
               show=False, destructive=True, key_display=":restore",
               help=":restore  put back the scale the last drain saved (asks first)"),
    ActionSpec("health_down", "j", "cursor_down", "Down", scope="health", show=False,
               palette=False),
    ActionSpec("health_up", "k", "cursor_up", "Up", scope="health", show=False,
               palette=False),
    # ---------------------------------------------------------------- jobs pane
    ActionSpec("filter", "slash", "screen.open_filter", "Filter", scope="jobs", key_display="/",
               help="Filter jobs by id, endpoint, status or progress (as you type)"),
    ActionSpec("clear", "escape", "clear", "Clear", scope="jobs", show=False,
               help="Clear the filter and the marks"),
    ActionSpec("job_open", "enter", "open_job", "Output", scope="jobs", show=False,
               help="Show the selected job in the output pane"),
    ActionSpec("cancel", "ctrl+d", "cancel", "Cancel", scope="jobs", destructive=True,
               help="Cancel the selected or marked jobs (asks first)"),
    ActionSpec("retry", "r", "retry", "Retry", scope="jobs", destructive=True,
               help="Retry the selected failed or timed-out job"),
    ActionSpec("edit", "e", "edit", "Edit", scope="jobs",
               help="Copy the selected job's input into the submit form"),
    ActionSpec("follow_job", "l", "follow_job", "Follow", scope="jobs", show=False,
               help="Follow the selected job's output"),
    ActionSpec("mark", "space", "mark", "Mark", scope="jobs", for_writes=True,
               help="Mark a job for bulk cancel or retry"),
    ActionSpec("copy_id", "c", "copy_id", "Copy id", scope="jobs", show=False,
               help="Copy the selected job id to the clipboard"),
    ActionSpec("raw", "y", "raw", "Raw", scope="jobs", show=False,
               help="Show the selected job as JSON"),
    ActionSpec("sort_status", "S", "sort('status')", "Sort status", scope="jobs", show=False,
               key_display="S", help="Sort jobs by status (what needs attention first)"),
    ActionSpec("sort_age", "A", "sort('age')", "Sort age", scope="jobs", show=False,
               key_display="A", help="Sort jobs by age (newest first)"),
    ActionSpec("scope_jobs", "a", "toggle_scope", "All/current", scope="jobs", show=False,
               help="Show the jobs of all endpoints or of the current one"),
    ActionSpec("jobs_down", "j", "cursor_down", "Down", scope="jobs", show=False,
               palette=False),
    ActionSpec("jobs_top", "g,home", "scroll_top", "Top", scope="jobs", show=False,
               palette=False, help="First job of the list"),
    ActionSpec("jobs_bottom", "G,end", "scroll_bottom", "Bottom", scope="jobs", show=False,
               palette=False, key_display="G", help="Last job of the list"),
    ActionSpec("jobs_up", "k", "cursor_up", "Up", scope="jobs", show=False, palette=False),
    # ---------------------------------------------------------------- output pane
    ActionSpec("follow", "s", "toggle_follow", "Follow", scope="output",
               help="Follow new output on/off (counts new lines while off)"),
    ActionSpec("wrap", "w", "toggle_wrap", "Wrap", scope="output", show=False,
               help="Wrap long streamed lines on/off"),
    ActionSpec("save", "ctrl+s", "save", "Save", scope="output",
               help="Save the output to a file"),
    ActionSpec("copy_output", "c", "copy_output", "Copy", scope="output",
               help="Copy the output to the clipboard"),
    ActionSpec("output_top", "g", "top", "Top", scope="output", show=False),
    ActionSpec("output_bottom", "G", "bottom", "Bottom", scope="output", show=False,
               key_display="G"),
    # ---------------------------------------------------------------- submit form
    ActionSpec("submit", "ctrl+s", "submit", "Submit", scope="submit", priority=True, writes=True,
               help="Submit the job in the form"),
    ActionSpec("recent", "ctrl+o", "recent", "Recent inputs", scope="submit", priority=True,
               help="Recall a recent input into the editor"),
    ActionSpec("format_json", "ctrl+f", "format_json", "Format", scope="submit",
               priority=True, help="Pretty-print the JSON input"),
    ActionSpec("leave_form", "escape", "leave", "Back to jobs", scope="submit",
               help="Leave the form for the jobs pane"),
)

BY_ID: dict[str, ActionSpec] = {a.id: a for a in ACTIONS}
DESTRUCTIVE_ACTIONS: frozenset[str] = frozenset(
    a.action.split("(")[0] for a in ACTIONS if a.readonly_hidden
)


#: What Textual (8.x) makes of alt+digit as most terminals send it (ESC then the digit, as
#: xterm, tmux, GNOME, iTerm2 with "Esc+" do): not "alt+1" but the character macOS types
#: for option+1 ("¡"). Only terminals speaking the kitty keyboard protocol send "alt+1".
#: Bindings on alt+digit also listen to these, or alt+1-alt+4 would do nothing in tmux.
ALT_DIGIT_ALIASES: dict[str, str] = {
    "alt+1": "inverted_exclamation_mark", "alt+2": "trade_mark_sign", "alt+3": "pound_sign",
    "alt+4": "cent_sign", "alt+5": "infinity", "alt+7": "pilcrow_sign",
    "alt+8": "bullet", "alt+9": "ª",
    "alt+0": "º",
}


#: the keys (and what terminals deliver for them) that switch panes from any field: text
#: fields leave them to the bindings instead of typing ¡ or ™ into the input
PANE_KEYS: frozenset[str] = frozenset(
    k for n in "1234" for k in (f"alt+{n}", ALT_DIGIT_ALIASES[f"alt+{n}"]))


def with_terminal_aliases(keys: str) -> str:
    """``keys`` plus the key names terminals really deliver for them (ALT_DIGIT_ALIASES)."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    extra = [ALT_DIGIT_ALIASES[k] for k in parts
             if k in ALT_DIGIT_ALIASES and ALT_DIGIT_ALIASES[k] not in parts]
    return ",".join(parts + extra)


def bindings_for(scope: str) -> list[Binding]:
    """The Textual bindings of one scope, each carrying its registry id."""
    out: list[Binding] = []
    for a in ACTIONS:
        if a.scope != scope or not a.keys:
            continue  # no key (drain, restore): the palette and the : line only
        out.append(
            Binding(
                with_terminal_aliases(a.keys),
                a.action,
                a.description,
                show=a.show,
                key_display=a.key_display,
                priority=a.priority,
                id=a.id,
                tooltip=a.help,
            )
        )
    return out


#: ``:`` commands that change something on RunPod (absent in read-only mode)
WRITING_COMMANDS = (":submit", ":purge", ":scale", ":drain", ":restore")


def help_text(spec: ActionSpec, *, readonly: bool) -> str:
    """An action's help as the help screen and the palette show it: in read-only mode the
    ``:`` commands that write are not offered."""
    text = spec.help or spec.description
    if readonly and spec.id == "command":
        parts = [p.strip() for p in text.split(",")]
        text = ", ".join(p for p in parts if p.split()[0] not in WRITING_COMMANDS)
    return text


def readonly_refusal(scope: str, key: str, keymap: Mapping[str, str]) -> str | None:
    """The one line to say when ``key`` in ``scope`` is an action read-only mode removed."""
    for a in ACTIONS:
        if a.scope == scope and a.readonly_hidden:
            keys = [k.strip() for k in with_terminal_aliases(effective_keys(a, keymap)).split(",")]
            if key in keys:
                return (f"Read-only mode: {a.description} is not available "
                        "(rpdash was started with --readonly)")
    return None


def is_destructive(action: str) -> bool:
    """True for actions that read-only mode hides (they change something on RunPod)."""
    return action.split("(")[0] in DESTRUCTIVE_ACTIONS


def effective_keys(spec: ActionSpec, keymap: Mapping[str, str]) -> str:
    """The keys an action answers to after the user's keymap."""
    return keymap.get(spec.id, spec.keys)


def display_keys(keys: str) -> str:
    """Keys as a person reads them ("ctrl+d", "?", "/")."""
    from textual.keys import format_key

    return ", ".join(format_key(k.strip()) for k in keys.split(",") if k.strip())


def check_keymap(keymap: Mapping[str, str]) -> list[str]:
    """Unknown binding ids in a user keymap (reported, not fatal)."""
    return sorted(k for k in keymap if k not in BY_ID)


def specs(scope: str | None = None) -> Iterable[ActionSpec]:
    return (a for a in ACTIONS if scope is None or a.scope == scope)


class ReadonlyAware:
    """Mixin for panes: in read-only mode destructive actions leave the footer and do nothing."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = getattr(self, "app", None)
        if is_destructive(action) and getattr(app, "readonly", False):
            return False
        if action in getattr(app, "unsupported_actions", {}):
            return None  # the API behind the session lacks it (local dev worker): disabled
        return super().check_action(action, parameters)  # type: ignore[misc]
