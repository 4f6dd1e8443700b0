"""What the dashboard shows when there is nothing to watch: no API key or no endpoint.

It says exactly what to set and where, and offers the demo. No traceback, no guessing.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from rpdash.tui.format import inert


def setup_text(*, has_key: bool, has_endpoint: bool, config_file: Path | None,
               problem: str | None = None) -> Text:
    t = Text()
    t.append("rpdash has nothing to watch yet\n\n", style="bold")
    if problem:
        t.append(inert(problem) + "\n\n", style="bold red")
    t.append("Missing: ", style="bold")
    missing = []
    if not has_key:
        missing.append("an API key")
    if not has_endpoint:
        missing.append("an endpoint")
    t.append(" and ".join(missing) or "nothing", style="yellow")
    t.append("\n\nSet them in the environment:\n\n")
    t.append("    export RUNPOD_API_KEY=rpa_…\n", style="bold cyan")
    t.append("    export RUNPOD_ENDPOINT_ID=your-endpoint-id\n\n", style="bold cyan")
    t.append("or pass the endpoint on the command line:\n\n")
    t.append("    rpdash --endpoint your-endpoint-id\n\n", style="bold cyan")
    t.append("or write them in the config file")
    if config_file is not None:
        t.append(":\n\n    ")
        t.append(inert(str(config_file)), style="bold")
    t.append("\n\n")
    t.append("    api_key = \"rpa_…\"\n    endpoint_id = \"…\"\n\n    [endpoints]\n"
             "    my-model = \"abc123xyz\"\n\n", style="cyan")
    t.append("Just looking? ", style="bold")
    t.append("rpdash --demo", style="bold green")
    t.append(" runs the dashboard against a local simulator: nothing is sent to RunPod.\n\n")
    t.append("Press d to start the demo now, q to quit.", style="dim")
    return t


class SetupScreen(Screen[None]):
    BINDINGS = [
        Binding("q,escape", "app.quit", "Quit"),
        Binding("d", "app.start_demo", "Start the demo"),
    ]

    def __init__(self, *, has_key: bool, has_endpoint: bool, config_file: Path | None,
                 problem: str | None = None) -> None:
        super().__init__()
        self._text = setup_text(has_key=has_key, has_endpoint=has_endpoint,
                                config_file=config_file, problem=problem)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            with Center():
                yield Static(self._text, id="setup-text")
        yield Footer()
