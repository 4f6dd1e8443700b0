"""Big input (issue 16): a 10 MB JSON payload pasted into the submit form's editor.

Same app and set-up as ``key_latency_bench.py`` (``rpdash --demo`` headless at 160 x 48,
1,000 jobs listed, the demo's traffic running, frames turned into escape sequences, the
same ``FrameProbe``). The editor (the submit form's TextArea, JSON highlighting on, as
``rpdash`` runs it) is emptied, focused with ``alt+4``, and a 10 MB pretty-printed JSON
object is delivered as one bracketed paste (``events.Paste``, as the terminal driver
sends it). Then, 30 presses each unless said:

- **paste**: to the frame showing the pasted text (the editor has all its lines) and to
  the frame showing the form's verdict ("valid JSON object");
- **char**: a letter typed inside a string value, to the frame showing it;
- **quote / backspace**: a ``"`` typed inside a string (the JSON becomes invalid) and its
  backspace (valid again), each to the frame showing the form's new verdict: the full
  edit + validation + highlighting path;
- **down**, **pagedown**: cursor moves in the 10 MB document;
- **alt+2 / alt+4**: leaving the editor for the job list and coming back;
- **ctrl+f** (format, 3 presses): to the frame showing the reformatted text.

Since issue 16.2 the form holds a payload over 1 MB out of the editor (a summary line
and a read-only preview of its first lines): then the typing presses are skipped (there
is nothing to type into), down/pagedown move in the preview, ctrl+f pretty-prints the
held payload after it was compacted to one line (to the frame showing the new summary),
and a last **backspace** drops the payload (to the frame showing the empty editor). Use
``--mb 0.9`` for typing in a big input that stays in the editor.

``--profile`` prints a cProfile of the paste and of the typed keys (where the time goes:
validation, tree-sitter, the document). ``--no-highlight`` runs the editor without
highlighting (``RpdashApp(highlight=False)``, what the tests use), for comparison.

    .venv/bin/python bench/big_input_bench.py [--mb 10] [--presses 30] [--profile]
        [--no-highlight] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FrameProbe, Timed, honest_headless, pct, send_key, send_paste  # noqa: E402
from key_latency_bench import SIZE, RpdashTarget, summarise, wait_until  # noqa: E402

GOAL_MS = 100.0


def payload(mb: float) -> str:
    """A pretty-printed JSON object of about ``mb`` MB: a prompt, then records."""
    rng = random.Random(10)
    items = []
    size = 0
    target = int(mb * 1_000_000)
    i = 0
    while size < target:
        item = {"id": i, "name": f"item-{i:07d}", "score": round(rng.random(), 6),
                "tags": ["alpha", "beta", "gamma"][: 1 + i % 3],
                "text": "lorem ipsum dolor sit amet " * (1 + i % 4)}
        items.append(item)
        size += 170 + 28 * (1 + i % 4)
        i += 1
    text = json.dumps({"prompt": "summarise these records please", "items": items}, indent=2)
    return text + "\n"


def static_text(w: Any) -> str:
    for attr in ("content", "visual", "renderable"):
        v = getattr(w, attr, None)
        if v is not None:
            return str(v)
    return str(w.render())


class BigInput:
    """The rpdash internals this bench reads (the submit form's editor and message)."""

    @staticmethod
    def editor(app: Any) -> Any:
        return app.dashboard.query_one("#submit").query_one("TextArea")

    @staticmethod
    def verdict(app: Any) -> str:
        return static_text(app.dashboard.query_one("#sf-msg"))

    @staticmethod
    def held(app: Any) -> bool:
        return getattr(app.dashboard.query_one("#submit"), "held_payload", None) is not None

    @staticmethod
    def held_lines(app: Any) -> int | None:
        held = getattr(app.dashboard.query_one("#submit"), "_held", None)
        return held.lines if held else None


async def run(mb: float, presses: int, jobs: int, highlight: bool,
              profile: bool) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    target = RpdashTarget(Path(tmp.name), jobs)
    text = payload(mb)
    n_lines = text.count("\n") + 1
    probe = FrameProbe()
    samples: dict[str, list[float]] = {}
    timeouts: dict[str, int] = {}
    profiles: dict[str, cProfile.Profile] = {}
    res: dict[str, Any] = {"bytes": len(text.encode()), "lines": n_lines}

    with honest_headless():
        probe.install()
        try:
            app = target.make_app(highlight=highlight)
            async with app.run_test(size=SIZE, notifications=True) as pilot:
                await wait_until(lambda: target.ready(app), 60, "the dashboard")
                await pilot.pause(0.5)
                ed = BigInput.editor(app)
                res["language"] = ed.language
                # where a press's time goes: the form's validation, TextArea's highlight
                # map (rebuilt from a whole-document tree-sitter query after every edit),
                # the document edit (incl. tree-sitter's incremental parse)
                parts = {"validate": Timed(), "highlight map": Timed(), "edit": Timed()}
                form = app.dashboard.query_one("#submit")
                form.validate_input = parts["validate"].wrap(form.validate_input)
                ed._build_highlight_map = parts["highlight map"].wrap(ed._build_highlight_map)
                ed.document.replace_range = parts["edit"].wrap(ed.document.replace_range)
                breakdown: dict[str, dict[str, list[float]]] = {}

                async def press(key: str, label: str, pred: Any, *, paste: str | None = None,
                                timeout: float = 60.0, prof: str | None = None) -> None:
                    probe.expect(label, pred)
                    p = None
                    if profile and prof:
                        p = profiles.setdefault(prof, cProfile.Profile())
                        p.enable()
                    t0 = time.perf_counter()
                    if paste is not None:
                        send_paste(app, paste)
                    else:
                        send_key(app, key)
                    done = await probe.wait(timeout)
                    if p:
                        p.disable()
                    for part, tm in parts.items():
                        breakdown.setdefault(label, {}).setdefault(part, []).append(
                            tm.total(since=t0) * 1e3)
                    print(f"  {label}: {((done.get(label) or float('nan')) - t0) * 1e3:.0f} ms",
                          file=sys.stderr, flush=True)
                    if label in done:
                        samples.setdefault(label, []).append((done[label] - t0) * 1e3)
                    else:
                        timeouts[label] = timeouts.get(label, 0) + 1

                async def settle(gap: float = 0.2) -> None:
                    await asyncio.sleep(gap + random.uniform(0, 0.05))

                await press("alt+4", "alt+4 (small input)", lambda: app.focused is ed)
                await settle()
                ed.load_text("")
                await settle(0.5)
                ed.document.replace_range = parts["edit"].wrap(ed.document.replace_range)
                assert "valid JSON" not in BigInput.verdict(app) or "✗" in BigInput.verdict(app)
                # the paste: two frames of interest. A payload the form holds out of the
                # editor (rpdash >= issue 16.2: over 1 MB) shows a preview and a summary
                def shown() -> bool:
                    return (ed.document.line_count >= n_lines - 1
                            or BigInput.held(app) and " MB, " in BigInput.verdict(app))

                probe.expect("paste: text shown", shown)
                await press("", "paste: validated", lambda: shown()
                            and "✓" in BigInput.verdict(app), paste=text, timeout=120,
                            prof="paste")
                await settle(1.0)
                res["line_count"] = ed.document.line_count
                res["language_after"] = ed.language
                held = res["held"] = BigInput.held(app)
                # typing inside the "prompt" string (line 1: '  "prompt": "summarise ...",');
                # a held payload is not typed into (read-only preview)
                for _ in range(0 if held else presses):
                    ed.move_cursor((1, 20))
                    await settle(0.1)
                    loc = ed.cursor_location
                    await press("x", "char", lambda loc=loc: ed.cursor_location == (loc[0], loc[1] + 1),
                                prof="typing")
                    await settle()
                for _ in range(0 if held else presses):
                    await press("quotation_mark", "quote (verdict: invalid)",
                                lambda: "✗" in BigInput.verdict(app), prof="typing")
                    await settle()
                    await press("backspace", "backspace (verdict: valid)",
                                lambda: "✓" in BigInput.verdict(app), prof="typing")
                    await settle()
                ed.move_cursor((2, 0))
                await settle()
                for key in ("down", "pagedown"):
                    for _ in range(presses):
                        if held and ed.cursor_location[0] > 100:
                            ed.move_cursor((2, 0))  # the preview is ~200 lines
                            await settle()
                        row = ed.cursor_location[0]
                        await press(key, key, lambda r=row: ed.cursor_location[0] > r, prof="moves")
                        await settle()
                jobs_table = app.dashboard.query_one("#jobs")
                for _ in range(presses):
                    await press("alt+2", "alt+2 (leave editor)", lambda: app.focused is jobs_table)
                    await settle()
                    await press("alt+4", "alt+4 (back to editor)", lambda: app.focused is ed)
                    await settle()
                for _ in range(3 if held else 0):
                    # the held payload compacted to one line, then ctrl+f pretty-prints it
                    form.load_input(json.dumps(json.loads(text)))
                    await wait_until(lambda: "✓" in BigInput.verdict(app), 60, "compact")
                    await settle(1.0)
                    await press("ctrl+f", "ctrl+f (format)", lambda: (BigInput.held_lines(app)
                                or 0) > 1 and "✓" in BigInput.verdict(app), timeout=120,
                                prof="format")
                    await settle(1.0)
                for _ in range(0 if held else 3):
                    before = ed.document.line_count
                    ed.move_cursor((0, 0))
                    # make it need formatting: join the first two lines
                    ed.replace("", (0, 1), (1, 0))
                    await settle(1.0)
                    await press("ctrl+f", "ctrl+f (format)", lambda b=before: ed.document.line_count == b
                                and ed.document.get_line(1).startswith("  "), timeout=120, prof="format")
                    await settle(1.0)
                if held:  # backspace drops the held payload: an empty editor
                    ed.focus()
                    await settle()
                    await press("backspace", "backspace (drop payload)", lambda:
                                not BigInput.held(app) and ed.text == ""
                                and "empty" in BigInput.verdict(app))
                res["internal_errors"] = [repr(e) for e in app.internal_errors]
        finally:
            probe.uninstall()
    tmp.cleanup()
    res["keys"] = summarise(samples, timeouts)
    for label, v in res["keys"].items():
        v["parts_p50_ms"] = {part: pct(vals, 50) for part, vals in breakdown.get(label, {}).items()}
    if profile:
        res["profiles"] = {}
        for name, p in profiles.items():
            s = io.StringIO()
            pstats.Stats(p, stream=s).sort_stats("tottime").print_stats(25)
            s2 = io.StringIO()
            pstats.Stats(p, stream=s2).sort_stats("cumulative").print_stats(40)
            res["profiles"][name] = s.getvalue() + s2.getvalue()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--presses", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--no-highlight", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()
    res = asyncio.run(run(a.mb, a.presses, a.jobs, not a.no_highlight, a.profile))
    res["load_before"], res["load_after"] = load0, os.getloadavg()
    res["over_budget"] = [k for k, v in res["keys"].items()
                          if not k.startswith(("paste", "ctrl+f")) and not v["p95"] <= GOAL_MS]
    if a.json:
        res.pop("profiles", None)
        print(json.dumps(res))
        return
    print(f"{res['bytes'] / 1e6:.1f} MB, {res['lines']:,} lines pasted (editor: "
          f"{res.get('line_count', 0):,} lines, language {res.get('language')}, held by the "
          f"form: {res.get('held', False)}); load average "
          f"before {load0[0]:.2f}, after {res['load_after'][0]:.2f}")
    print(f"{'key':32} {'n':>4} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'t/o':>4}")
    for k, v in res["keys"].items():
        parts = ", ".join(f"{p} {ms:.0f}" for p, ms in v.get("parts_p50_ms", {}).items())
        print(f"{k:32} {v['n']:>4} {v['p50']:>9.1f} {v['p95']:>9.1f} {v['max']:>9.1f} "
              f"{v['timeouts']:>4}  (p50 ms inside: {parts})")
    if res.get("internal_errors"):
        print("internal errors:", res["internal_errors"])
    for name, text in res.get("profiles", {}).items():
        print(f"\n===== profile: {name}\n{text}")


if __name__ == "__main__":
    main()
