"""The ``?`` screen, generated from the action registry and the live keymap, so it always
says what the keys really do (including the user's remappings and read-only mode)."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from rpdash.tui.actions import (
    SCOPES,
    ActionSpec,
    display_keys,
    effective_keys,
    help_text,
    specs,
)


def help_table(keymap: Mapping[str, str], *, readonly: bool) -> Table:
    table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("keys", style="bold cyan", no_wrap=True, width=14)
    table.add_column("action", no_wrap=True, width=16)
    table.add_column("what it does")
    table.add_column("id", style="dim", no_wrap=True)
    for scope, title in SCOPES.items():
        rows = list(specs(scope))
        if not rows:
            continue
        table.add_row(Text(title, style="bold underline"), "", "", "")
        favourites = [a for a in rows if a.id.startswith("favourite_")]
        if favourites and not any(a.id in keymap for a in favourites):
            # ten rows that differ by one digit say less than one row
            first = rows.index(favourites[0])
            rows = [a for a in rows if a not in favourites]
            table_rows = rows[:first]
            for a in table_rows:
                _help_row(table, a, keymap, readonly)
            table.add_row("0-9", "Favourite N",
                          Text("Watch and switch to favourite endpoint N (star them in the "
                               "endpoints list, ctrl+e)"), "favourite_0 … favourite_9")
            rows = rows[first:]
        for a in rows:
            _help_row(table, a, keymap, readonly)
        table.add_row("", "", "", "")
    return table


def _help_row(table: Table, a: ActionSpec, keymap: Mapping[str, str], readonly: bool) -> None:
    if readonly and a.readonly_hidden:
        return  # read-only mode: the action is absent, not listed as disabled
    keys = display_keys(effective_keys(a, keymap))
    table.add_row(keys, a.description, Text(help_text(a, readonly=readonly)), a.id)


class HelpScreen(Screen[None]):
    """Every binding, by pane. A full screen: health polling pauses while it is up."""

    BINDINGS = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close", show=True),
    ]

    def __init__(self, keymap: Mapping[str, str], *, readonly: bool) -> None:
        super().__init__()
        self._keymap = keymap
        self._readonly = readonly

    def compose(self) -> ComposeResult:
        intro = Text.assemble(
            ("rpdash keys", "bold"),
            "   tab / shift+tab move between panes, alt+1-alt+4 jump to one, 0-9 to a "
            "favourite endpoint. Remap any key by its id "
            "in the [keymap] table of the config file, e.g. ",
            ("cancel = \"x\"", "bold"),
            ".",
        )
        with VerticalScroll(id="help-body"):
            yield Static(intro, id="help-intro")
            yield Static(help_table(self._keymap, readonly=self._readonly), id="help-table")
        yield Footer()
