"""Upstream repro (Textual 8.2.8): keys that arrive in one chunk are applied out of order.

Feeds "ab\\x7fc" (a, b, backspace, c) through the driver's XTermParser and
Driver.process_message, as LinuxDriver does for one read() of stdin.
Expected "ac"; Textual gives "ab" (the backspace deletes the "c" typed after it).
"""
import asyncio

from textual._xterm_parser import XTermParser
from textual.app import App
from textual.widgets import Input, TextArea


class Repro(App):
    def compose(self):
        yield TextArea(id="ta")
        yield Input(id="inp")


async def main() -> None:
    app = Repro()
    async with app.run_test() as pilot:
        for wid in ("ta", "inp"):
            app.query_one(f"#{wid}").focus()
            await pilot.pause()
            for event in XTermParser().feed("ab\x7fc"):  # one chunk from stdin
                app._driver.process_message(event)
            await pilot.pause(0.2)
            w = app.query_one(f"#{wid}")
            print(wid, "expected 'ac', got", repr(w.text if wid == "ta" else w.value))


asyncio.run(main())
