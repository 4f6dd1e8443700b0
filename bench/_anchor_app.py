"""The anchor of ``key_latency_bench.py``: a bare Textual app with the same kinds of keys.

A DataTable of 1,000 rows x 9 columns (the job list) whose highlighted row is shown at
once in a Static (the output pane, no debounce), a small DataTable (the endpoints), a
TextArea (the submit form), a hidden Input for ``/`` (enter: the naive filter, clear and
refill the table; escape on the table: back to all rows), full screens for ``?`` / W / L /
M, a modal list for ctrl+e, a modal confirm for ctrl+d (a typed-name modal from the
endpoints table), ``r`` writes a cell and toasts, the built-in command palette (with three
entries that open those screens), ``q`` quits. No services, no timers, no traffic: what
Textual itself costs for these keys.
"""

from __future__ import annotations

import random
from typing import Any

from rich.table import Table
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Log, OptionList, Static, TextArea

COLS = ("", "id", "status", "age", "endpoint", "delay", "exec", "retries", "progress")
ENDPOINTS = ("llm-chat", "sdxl-images", "whisper-asr", "etl-batch")


def make_rows(n: int, seed: int = 1) -> list[tuple[str, tuple[str, ...]]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = f"{i:08x}-1111-2222-3333-444455556666-u1"
        st = rng.choice(("COMPLETED",) * 6 + ("FAILED", "CANCELLED", "IN_PROGRESS"))
        out.append((key, (" ", key[:14], st, f"{rng.randrange(1, 59)}m", ENDPOINTS[i % 4],
                          f"{rng.randrange(5, 900)}ms", f"{rng.uniform(0.1, 60):.1f}s", "0",
                          "step 3/8" if st == "IN_PROGRESS" else "")))
    return out


class BareScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back")]

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def compose(self) -> ComposeResult:
        if self.kind == "help":
            t = Table("key", "action", "description", expand=True)
            for i in range(60):
                t.add_row(f"key{i}", f"action_{i}", "does something useful " * 2)
            yield VerticalScroll(Static(t))
        elif self.kind == "workers":
            dt: DataTable[str] = DataTable(cursor_type="row")
            dt.add_columns("worker", "status", "gpu", "dc", "uptime")
            for i in range(8):
                dt.add_row(f"w-{i:04x}", "RUNNING", "A100", "EU-RO-1", f"{i}m")
            yield dt
        elif self.kind == "logs":
            log = Log()
            log.write_lines(f"2026-11-30 10:00:{i % 60:02d} INFO worker w-1 line {i}"
                            for i in range(500))
            yield log
        else:
            yield VerticalScroll(*(Static(f"metric {i}: p50 12 ms p95 40 ms") for i in range(30)))
        yield Footer()


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "dismiss(False)", "No")]

    def __init__(self, typed: bool = False) -> None:
        super().__init__()
        self.typed = typed

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Cancel 1 job?\n\n  00000001-1111  IN_QUEUE  whisper-asr")
            if self.typed:
                yield Input(placeholder="type the endpoint's name")
            with Horizontal():
                yield Button("No", id="no")
                yield Button("Yes", id="yes", variant="error")

    def on_mount(self) -> None:
        if not self.typed:
            self.query_one("#no").focus()


class PickModal(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield OptionList(*(f"endpoint-{i:03d}" for i in range(40)))


class AnchorApp(App[None]):
    CSS = """
    #jobs { width: 2fr; }
    #right { width: 1fr; }
    #health { height: 8; }
    #output { height: 1fr; border: round $primary; }
    #submit { height: 14; }
    #filter { display: none; }
    ConfirmModal, PickModal { align: center middle; }
    ConfirmModal > Vertical { width: 60; height: auto; border: thick $error; }
    PickModal > OptionList { width: 50; height: 20; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "bare('help')", "Help", key_display="?"),
        Binding("W", "bare('workers')", "Workers"),
        Binding("L", "bare('logs')", "Logs"),
        Binding("M", "bare('metrics')", "Metrics"),
        Binding("ctrl+e", "pick", "Pick"),
        Binding("alt+1", "pane('health')", "Endpoints", show=False),
        Binding("alt+2", "pane('jobs')", "Jobs", show=False),
        Binding("alt+3", "pane('output')", "Output", show=False),
        Binding("alt+4", "pane('submit')", "Submit", show=False),
    ]

    def __init__(self, rows: int = 1000) -> None:
        super().__init__()
        self.n_rows = rows
        self.rows = make_rows(rows)
        self.shown_key: str | None = None
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="health", cursor_type="row")
                yield Input(id="filter", compact=True)
                yield DataTable(id="jobs", cursor_type="row")
            with Vertical(id="right"):
                yield VerticalScroll(Static(id="output-body"), id="output", can_focus=True)
                yield TextArea('{\n  "prompt": "hello"\n}\n', id="submit", tab_behavior="focus")
        yield Footer()

    def on_mount(self) -> None:
        h = self.query_one("#health", DataTable)
        h.add_columns("endpoint", "queue", "running", "workers", "last answer")
        for ep in ENDPOINTS:
            h.add_row(ep, "0", "1", "1/3", "just now", key=ep)
        jobs = self.query_one("#jobs", DataTable)
        jobs.add_columns(*COLS)
        self._fill()
        jobs.focus()

    def _fill(self) -> None:
        jobs = self.query_one("#jobs", DataTable)
        jobs.clear()
        f = self.filter_text
        for key, row in self.rows:
            if not f or any(f in c for c in row):
                jobs.add_row(*row, key=key)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id != "jobs" or event.row_key is None:
            return
        key = event.row_key.value
        row = event.data_table.get_row(event.row_key)
        self.query_one("#output-body", Static).update("\n".join(f"{c}: {v}" for c, v in
                                                               zip(COLS[1:], row[1:])))
        self.shown_key = key

    def on_key(self, event: Any) -> None:
        focused = self.focused
        if isinstance(focused, DataTable) and focused.id == "jobs":
            if event.key == "j":
                focused.action_cursor_down()
            elif event.key == "k":
                focused.action_cursor_up()
            elif event.key == "slash":
                inp = self.query_one("#filter", Input)
                inp.display = True
                inp.focus()
            elif event.key == "escape":
                self.filter_text = ""
                self._fill()
            elif event.key == "ctrl+d":
                self.push_screen(ConfirmModal())
            elif event.key == "r":
                key = focused.coordinate_to_cell_key(focused.cursor_coordinate).row_key
                focused.update_cell_at((focused.cursor_row, 2), "IN_QUEUE")
                self.notify(f"Retrying {key.value[:14]}", timeout=4)
        elif isinstance(focused, DataTable) and focused.id == "health":
            if event.key == "ctrl+d":
                self.push_screen(ConfirmModal(typed=True))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        event.input.display = False
        self._fill()
        self.query_one("#jobs").focus()

    def action_bare(self, kind: str) -> None:
        self.push_screen(BareScreen(kind))

    def action_pick(self) -> None:
        self.push_screen(PickModal())

    def action_pane(self, name: str) -> None:
        self.query_one(f"#{name}").focus()

    def get_system_commands(self, screen: Screen) -> Any:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Metrics", "Latency percentiles", lambda: self.action_bare("metrics"))
        yield SystemCommand("Workers", "The endpoint's workers", lambda: self.action_bare("workers"))
        yield SystemCommand("Help", "Every key binding", lambda: self.action_bare("help"))


if __name__ == "__main__":
    AnchorApp().run()
