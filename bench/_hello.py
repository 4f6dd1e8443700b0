"""The anchor of bench/startup_bench.py: the smallest Textual app that shows something."""

from textual.app import App, ComposeResult
from textual.widgets import Static


class Hello(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("Hello, world!")


if __name__ == "__main__":
    Hello().run()
