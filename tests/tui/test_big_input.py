"""A big JSON payload in the submit form (issue 16.2): what the user sees and what is sent.

Speed is measured in bench/big_input_bench.py; these tests check the behaviour that makes
it fast: a payload over 1 MB is held by the form (summary line, read-only preview, exact
text submitted), highlighting goes off above 200 kB and the hint says so, and the check of
a big input runs off the key path with the newest edit winning.
"""

from __future__ import annotations

import json
from typing import Any

from textual import events

from rpdash.tui.widgets.submit import SubmitForm

from .conftest import started, text_of, wait_for
from .test_fast_keys import feed_chunk
from .test_keyboard import SIZE, fake_app


def big_json(n_items: int) -> str:
    items = [{"id": i, "name": f"item-{i:07d}", "text": "lorem ipsum dolor sit amet " * 2}
             for i in range(n_items)]
    return json.dumps({"prompt": "summarise", "items": items}, indent=2) + "\n"


def paste(app: Any, text: str) -> None:
    app._driver.send_message(events.Paste(text))  # as the terminal driver delivers it


async def open_editor(app: Any, pilot: Any) -> SubmitForm:
    dash = await started(app, pilot)
    form = dash.query_one(SubmitForm)
    await pilot.press("alt+4")
    form.editor.load_text("")  # as the bench does: the paste is the whole input
    await pilot.pause()
    return form


async def pasted(pilot: Any, form: SubmitForm) -> None:
    await wait_for(pilot, lambda: form.editor.document.line_count > 1000
                   and "valid JSON object" in text_of(form.query_one("#sf-msg")), timeout=20)


async def test_a_payload_over_1_mb_is_held_summarised_and_submitted_exactly():
    app, session = fake_app()
    text = big_json(12_000)  # ~1.6 MB, 60k lines
    assert len(text) > 1_000_000
    async with app.run_test(size=SIZE) as pilot:
        form = await open_editor(app, pilot)
        msg = form.query_one("#sf-msg")
        paste(app, text)
        await wait_for(pilot, lambda: "valid JSON object · " in text_of(msg), timeout=20,
                       what="the summary of the pasted payload")
        shown = text_of(msg)
        assert f"{len(text) / 1e6:.1f} MB" in shown and f"{text.count(chr(10)):,} lines" in shown, shown
        assert "payload held" in text_of(form.query_one("#sf-hint"))
        # the editor shows the first lines only, read-only
        assert form.editor.document.line_count < 250 and form.editor.read_only
        assert '"prompt": "summarise"' in text_of(form.editor)
        await pilot.press("x", "q", "n")  # typed into the preview: no effect (no quit)
        assert form.held_payload == text and app.is_running and app.focused is form.editor
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: session.sent("submit"), what="the submit")
        assert session.sent("submit")[0][1] == json.loads(text)
        # backspace drops it: an empty, editable editor again
        form.editor.focus()
        await pilot.press("backspace")
        await wait_for(pilot, lambda: form.held_payload is None)
        assert form.editor.text == "" and not form.editor.read_only
        assert "empty" in text_of(msg)
        await pilot.press("{", "}")
        await wait_for(pilot, lambda: "valid JSON object" in text_of(msg))


async def test_highlighting_goes_off_for_a_large_input_and_the_hint_says_so():
    app, _ = fake_app(highlight=True)
    text = big_json(2_500)  # ~300 kB: edited in place, but not highlighted
    assert 200_000 < len(text) < 1_000_000
    async with app.run_test(size=SIZE) as pilot:
        form = await open_editor(app, pilot)
        hint = form.query_one("#sf-hint")
        assert form.editor.language == "json" and "highlighting off" not in text_of(hint)
        paste(app, text)
        await pasted(pilot, form)
        assert form.editor.language is None
        assert "highlighting off (large input)" in text_of(hint)
        assert form.held_payload is None and form.editor.text == text  # editable in place
        form.editor.load_text('{"small": true}')
        await wait_for(pilot, lambda: form.editor.language == "json")
        assert "highlighting off" not in text_of(hint)


async def test_checks_of_a_big_input_are_debounced_and_the_newest_edit_wins():
    app, _ = fake_app()
    text = big_json(2_500)
    async with app.run_test(size=SIZE) as pilot:
        form = await open_editor(app, pilot)
        msg = form.query_one("#sf-msg")
        paste(app, text)
        await pasted(pilot, form)
        form.editor.move_cursor((1, 14))  # inside "summarise"
        shown: list[str] = []
        show = form._show_verdict
        form._show_verdict = lambda: (shown.append(text_of(msg)), show())[1]  # type: ignore
        # '"' (invalid) and its backspace (valid again) in one burst: the check waits for
        # the burst to end, and the verdict on the in-between version is never shown
        feed_chunk(app, '"\x7f')
        await wait_for(pilot, lambda: len(shown) >= 3 and "✓" in text_of(msg), timeout=20)
        await pilot.pause(0.5)
        assert "valid JSON object" in text_of(msg) and form.error is None
        assert not any("✗" in seen for seen in shown), shown
        await pilot.press("quotation_mark")
        await wait_for(pilot, lambda: "✗" in text_of(msg), timeout=20)
        assert form.error and "line 2" in form.error


def test_the_preview_of_a_minified_payload_is_cut_short():
    from rpdash.tui.widgets.payload import PREVIEW_WIDTH, HeldPayload

    text = json.dumps(json.loads(big_json(12_000)))  # one 1.3 MB line
    held = HeldPayload.of(text)
    assert held.text == text and held.lines == 1
    assert len(held.preview) <= PREVIEW_WIDTH + 2 and held.preview.endswith("…")
