"""Keys that arrive in one chunk (SSH lag, macros, ``tmux send-keys``) apply in the order
typed, in the submit form's editor, its fields and the ``/`` filter (issue 13.10).

The chunk goes through the terminal driver's own path: Textual's ``XTermParser`` turns it
into events and ``Driver.process_message`` hands them to the app, as ``LinuxDriver`` does
for one ``read()`` of stdin, all before the app handles the first one.
"""

from __future__ import annotations

from typing import Any

import pytest

from textual._xterm_parser import XTermParser
from textual.widgets import Input, TextArea

from rpdash.tui.widgets.jobs import JobTable
from rpdash.tui.widgets.submit import SubmitForm

from .conftest import started, wait_for
from .test_keyboard import SIZE, fake_app

CHUNK = "abc\x7f\x7fxy"  # a, b, c, backspace, backspace, x, y: "axy"


def feed_chunk(app: Any, chunk: str) -> None:
    parser = XTermParser()
    for event in [*parser.feed(chunk), *parser.feed("")]:
        app._driver.process_message(event)


async def test_burst_with_backspaces_in_the_editor_reads_axy():
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        editor = dash.query_one(SubmitForm).editor
        await pilot.press("alt+4")
        assert isinstance(app.focused, TextArea)
        editor.load_text("")
        await pilot.pause()
        feed_chunk(app, CHUNK)
        await wait_for(pilot, lambda: len(editor.text) >= 3, timeout=5)
        await pilot.pause(0.2)
        assert editor.text == "axy"


@pytest.mark.parametrize("field_id", ["sf-webhook", "sf-timeout"])
async def test_burst_with_backspaces_in_a_form_field_reads_axy(field_id):
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        field = (await started(app, pilot)).query_one(f"#{field_id}", Input)
        field.focus()
        await pilot.pause()
        feed_chunk(app, CHUNK)
        await pilot.pause(0.3)
        assert field.value == "axy"


async def test_burst_with_backspaces_in_the_filter_reads_axy():
    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        dash = await started(app, pilot)
        await pilot.press("slash")
        line = app.focused
        assert isinstance(line, Input)
        feed_chunk(app, CHUNK)
        await pilot.pause(0.3)
        assert line.value == "axy"
        await pilot.press("enter")
        await wait_for(pilot, lambda: dash.query_one(JobTable).filter_text == "axy", timeout=5)
        assert "filter: axy" in dash.query_one("#pane-jobs").border_title


async def test_burst_with_backspaces_in_the_purge_dialogs_name_reads_axy():
    from rpdash.tui.screens.confirm import PurgeScreen

    app, _ = fake_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("alt+1", "ctrl+d")
        modal = await wait_for(pilot, lambda: isinstance(app.screen, PurgeScreen) and app.screen)
        name = modal.query_one("#purge-name", Input)
        name.focus()
        await pilot.pause()
        feed_chunk(app, CHUNK)
        await pilot.pause(0.3)
        assert name.value == "axy"
