"""The ``?`` screen, generated from the action registry and the live keymap, so it always
says what the keys really do (including the user's remappings and read-only mode)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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


#: below this width the id column goes: each id is told after what its key does (at 80
#: columns four columns left "what it does" 14 characters, 3-5 lines per key)
ID_COLUMN_FROM = 120


def help_table(keymap: Mapping[str, str], *, readonly: bool, width: int = 200) -> Table:
    wide = width >= ID_COLUMN_FROM
    table = Table(box=None, expand=True, show_header=True, header_style="bold", pad_edge=False)
    table.add_column("keys", style="bold cyan", no_wrap=True, width=14)
    table.add_column("action", no_wrap=True, width=16)
    table.add_column("what it does")
    if wide:
        table.add_column("id", style="dim", no_wrap=True)
    add = table.add_row if wide else lambda *cells: table.add_row(*_inline_id(*cells))
    for scope, title in SCOPES.items():
        rows = list(specs(scope))
        if not rows:
            continue
        add(Text(title, style="bold underline"), "", "", "")
        favourites = [a for a in rows if a.id.startswith("favourite_")]
        if favourites and not any(a.id in keymap for a in favourites):
            # ten rows that differ by one digit say less than one row
            first = rows.index(favourites[0])
            rows = [a for a in rows if a not in favourites]
            table_rows = rows[:first]
            for a in table_rows:
                _help_row(add, a, keymap, readonly)
            add("0-9", "Favourite N",
                          Text("Watch and switch to favourite endpoint N (star them in the "
                               "endpoints list, ctrl+e)"), "favourite_0 … favourite_9")
            rows = rows[first:]
        for a in rows:
            _help_row(add, a, keymap, readonly)
        add("", "", "", "")
    return table


def _inline_id(keys: Any, action: Any, what: Any, ident: Any) -> tuple[Any, Any, Any]:
    """A narrow screen's row: the id (for the [keymap] table) after what the key does."""
    if not ident:
        return keys, action, what
    text = what.copy() if isinstance(what, Text) else Text(str(what))
    text.append(f"  ({ident})", style="dim")
    return keys, action, text


def _help_row(add: Callable[..., None], a: ActionSpec, keymap: Mapping[str, str],
              readonly: bool) -> None:
    if readonly and a.readonly_hidden:
        return  # read-only mode: the action is absent, not listed as disabled
    keys = display_keys(effective_keys(a, keymap))
    add(keys, a.description, Text(help_text(a, readonly=readonly)), a.id)


class HelpScreen(Screen[None]):
    """Every binding, by pane. A full screen: health polling pauses while it is up."""

    BINDINGS = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close", show=True),
    ]

    def __init__(self, keymap: Mapping[str, str], *, readonly: bool) -> None:
        super().__init__()
        self._keymap = keymap
        self._readonly = readonly
        self._wide: bool | None = None

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
            yield Static("", id="help-table")
        yield Footer()

    def on_resize(self) -> None:
        """The table for the width (the id column only on a wide screen)."""
        width = self.size.width
        if (width >= ID_COLUMN_FROM) is not self._wide:
            self._wide = width >= ID_COLUMN_FROM
            self.query_one("#help-table", Static).update(
                help_table(self._keymap, readonly=self._readonly, width=width))
