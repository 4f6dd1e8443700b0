"""Layouts by size (DESIGN.md 2; issue 13 items 4 and 5), asserted on what the screen shows:
at 80x24, 100x30, 120x40 and 160x48 every pane shows its content when walked with
alt+1-alt+4, nothing scrolls sideways, and the small screen gives one pane the room with
a switcher line naming the others."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from textual.widgets import DataTable

from rpdash.core.models import JobStatus
from rpdash.tui.app import RpdashApp
from rpdash.tui.backend import StaticBackend
from tests.snapshots.test_snapshots import build_app, ready
from tests.tui.fakes import FakeSession, sample_health, sample_jobs

SIZES = [(80, 24), (100, 30), (120, 40), (160, 48)]
FIRST_JOB = "7f3a9c2e-1b4d-4e8a-9c3f-2a1b3c4d5e6f-u1"


def screen_lines(app: Any) -> list[str]:
    update = app.screen._compositor.render_update(full=True)
    return ["".join(seg.text for seg in strip) for strip in update.strips]


def region_text(app: Any, widget: Any) -> str:
    """The part of the screen a widget covers, as the user sees it (clipped by its
    parents and the screen)."""
    r = widget.region
    lines = screen_lines(app)
    return "\n".join(line[r.x:r.right] for line in lines[r.y:r.bottom])


def no_sideways_scroll(dash: Any) -> list[str]:
    """Widgets on screen with a horizontal scroll bar, or a table wider than its room."""
    bad = []
    for w in dash.query("*"):
        if not w.display or not w.region.area:
            continue
        if w.show_horizontal_scrollbar:
            bad.append(f"{w!r}: horizontal scroll bar")
        if isinstance(w, DataTable) and w.virtual_size.width > w.scrollable_content_region.width:
            bad.append(f"{w!r}: {w.virtual_size.width} columns wide in "
                       f"{w.scrollable_content_region.width}")
    return bad


#: key, pane, what must be on screen in it
WALK = (
    ("alt+1", "#pane-health", ("whisper", "llama-chat", "queue")),
    ("alt+2", "#pane-jobs", ("[alt+2] Jobs", "7f3a9c2e", "status", "endpoint")),
    ("alt+3", "#pane-output", ("IN_PROGRESS", "quick brown", "chunks 6")),
    ("alt+4", "#pane-submit", ("llama-chat", "run", "webhook", "^s submit")),
)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_pane_shows_content_and_nothing_scrolls_sideways(size):
    app = build_app()
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        dash = app.dashboard
        for key, pane_id, expected in WALK:
            await pilot.press(key)
            await pilot.pause(0.1)
            pane = dash.query_one(pane_id)
            assert pane.display and pane.region.height >= 5, f"{pane_id} at {size}"
            shown = region_text(app, pane)
            for text in expected:
                assert text in shown, f"{text!r} not in {pane_id} at {size}:\n{shown}"
            assert no_sideways_scroll(dash) == [], size
        # the last line is the footer, whole: its palette key at the right edge
        assert "Palette" in screen_lines(app)[-1]


async def test_80x24_shows_one_pane_and_a_switcher_naming_the_others():
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        dash = app.dashboard
        switcher = region_text(app, dash.query_one("#switcher"))
        for name in ("[1] Endpoints", "[2] Jobs", "[3] Output", "[4] Submit"):
            assert name in switcher
        assert "queue 48" in switcher and "3 active" in switcher  # what waits, at a glance
        # one pane on screen: the jobs; the others are a keypress away
        assert dash.query_one("#pane-jobs").region.width == 80
        assert not dash.query_one("#pane-health").region.area
        assert not dash.query_one("#pane-output").region.area
        await pilot.press("alt+3")
        await pilot.pause(0.1)
        assert dash.query_one("#pane-output").region.height >= 15
        assert not dash.query_one("#pane-jobs").region.area


async def test_80x24_tab_only_visits_fields_on_screen_and_goes_on_to_the_next_pane():
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        dash = app.dashboard
        await pilot.press("alt+4")
        await pilot.pause(0.1)
        pane = dash.query_one("#pane-submit")
        visited = []
        for _ in range(12):
            focused = dash.focused
            if focused is None or not pane in focused.ancestors:
                break
            r = focused.region
            assert r.area and pane.region.contains_region(r), f"{focused!r} at {r} cut off"
            visited.append(focused.id)
            await pilot.press("tab")
            await pilot.pause(0.05)
        assert {"sf-input", "sf-timeout", "sf-ttl", "sf-webhook"} <= set(visited)
        # after the form's last field: the next pane (round to the endpoints), on screen
        assert dash.query_one("#pane-health").region.height >= 5
        assert dash.focused is dash.query_one("#health")
        await pilot.press("shift+tab")
        await pilot.pause(0.05)
        assert dash.query_one("#pane-submit").region.area
        assert dash.focused.id == "sf-webhook"


async def test_full_job_id_when_the_column_has_room():
    app = build_app()
    async with app.run_test(size=(200, 50)) as pilot:
        await ready(pilot)
        assert FIRST_JOB in region_text(app, app.dashboard.query_one("#pane-jobs"))
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:  # no room: cut, with an ellipsis
        await ready(pilot)
        jobs = region_text(app, app.dashboard.query_one("#pane-jobs"))
        assert FIRST_JOB not in jobs and "7f3a9c2e-1" in jobs and "…" in jobs


async def test_jobs_of_one_endpoint_drop_the_endpoint_column():
    app = build_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        dash = app.dashboard
        jobs = dash.query_one("#jobs")
        assert "endpoint" in region_text(app, jobs)
        jobs.set_scope("sdxl")
        await pilot.pause(0.1)
        shown = region_text(app, jobs)
        assert "endpoint" not in shown and "latest update" in shown


async def test_endpoint_names_are_whole_when_other_columns_have_room():
    health = sample_health()
    long_name = "sdxl-turbo-images-eu"
    app = RpdashApp(backend=StaticBackend(
        FakeSession(jobs=sample_jobs(), health=health),
        names={"llama-chat": "llama-chat", "sdxl": long_name, "whisper": "whisper"}),
        highlight=False, strict_errors=True)
    for size in ((80, 24), (120, 40)):
        async with app.run_test(size=size) as pilot:
            await ready(pilot)
            await pilot.press("alt+1")
            await pilot.pause(0.1)
            assert long_name in region_text(app, app.dashboard.query_one("#pane-health")), size
        app = RpdashApp(backend=StaticBackend(
            FakeSession(jobs=sample_jobs(), health=health),
            names={"llama-chat": "llama-chat", "sdxl": long_name, "whisper": "whisper"}),
            highlight=False, strict_errors=True)


def _app_with(job: Any, chunks: list[Any] | None = None) -> RpdashApp:
    session = FakeSession(jobs=[job], health=sample_health(),
                          chunks={job.job_id: chunks} if chunks else None)
    return RpdashApp(backend=StaticBackend(session, names={}), highlight=False,
                     strict_errors=True)


def _joined(app: Any, widget: Any) -> str:
    """The widget's screen text with the line breaks (and the borders' │) taken out."""
    return "".join(line.strip("│ ") for line in region_text(app, widget).splitlines())


async def test_pretty_printed_json_output_wraps():
    url = "s3://bucket/lighthouse-at-dusk/" + "x" * 90 + "/final.png"
    job = replace(sample_jobs()[2], output={"image_url": url, "seed": 7})
    app = _app_with(job)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("alt+3")
        await pilot.pause(0.2)
        dash = app.dashboard
        assert url in _joined(app, dash.query_one("#pane-output"))
        assert no_sideways_scroll(dash) == []


async def test_finished_stream_from_history_is_wrapped_and_w_toggles_it():
    words = [f"word{i:03d} " for i in range(60)]  # one long line, as LLM tokens come
    job = replace(sample_jobs()[0], status=JobStatus.COMPLETED, output=None,
                  chunk_count=len(words))
    app = _app_with(job, words)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("alt+3")
        await pilot.pause(0.3)
        dash = app.dashboard
        log = dash.query_one("#out-stream")
        shown = region_text(app, log)
        assert "word000" in shown and "word059" in shown, shown
        assert not log.show_horizontal_scrollbar
        await pilot.press("w")  # wrap off: one line, the end out of sight
        await pilot.pause(0.2)
        assert "word059" not in region_text(app, log)
        await pilot.press("w")  # and on again: wrapped, the end back in sight
        await pilot.pause(0.2)
        assert "word059" in region_text(app, log)
        assert not log.show_horizontal_scrollbar


async def test_help_at_80_columns_gives_what_a_key_does_the_room():
    app = build_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        lines = screen_lines(app)
        # one line per key, the id (for the [keymap] table) still told
        assert any("Search every action by name  (palette)" in line for line in lines), lines
        assert any("Show every key binding" in line for line in lines)
        assert no_sideways_scroll(app.screen) == []


async def test_jobs_arriving_after_start_get_room_for_their_whole_id():
    session = FakeSession(jobs=[], health=sample_health())
    app = RpdashApp(backend=StaticBackend(session, names={}), highlight=False,
                    strict_errors=True)
    async with app.run_test(size=(200, 50)) as pilot:
        await ready(pilot)
        app.dashboard.on_jobs(sample_jobs())  # the first jobs, after the first layout
        await pilot.pause(0.2)
        assert FIRST_JOB in region_text(app, app.dashboard.query_one("#pane-jobs"))
