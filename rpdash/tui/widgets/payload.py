"""Large inputs in the submit form (issue 16.2): what is too big to edit, highlight or
check on every key, and the pieces the form uses for them.

Textual's TextArea costs O(document) per edit and per frame (the highlight map is rebuilt
from a whole-tree query after every edit; ``WrappedDocument.height`` sums every line for
each rendered line). So the form:

- turns JSON highlighting off above :data:`HIGHLIGHT_MAX_BYTES` (the hint line says so);
- checks the JSON off the UI thread, debounced, for texts above :data:`ASYNC_CHECK_BYTES`
  (a generation number makes the newest edit win);
- keeps a payload above :data:`HOLD_BYTES` out of the TextArea altogether: the form holds
  the exact text (submitted as is), the editor shows a read-only preview of its first
  :data:`PREVIEW_LINES` lines and the message line a summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from json.scanner import py_make_scanner
from typing import Any

from rpdash.tui.format import json_position

HIGHLIGHT_MAX_BYTES = 200_000
HIGHLIGHT_MAX_LINES = 5_000
ASYNC_CHECK_BYTES = 100_000
ASYNC_CHECK_LINES = 2_000
HOLD_BYTES = 1_000_000
PREVIEW_LINES = 200
PREVIEW_WIDTH = 1_000
DEBOUNCE_S = 0.15


@dataclass(frozen=True, slots=True)
class JsonCheck:
    """The verdict on one version of the input (``gen``): message None when valid, and
    then ``value`` is the parsed object (so submit need not parse 10 MB again)."""

    gen: int
    message: str | None
    value: dict[str, Any] | None
    size: int


def _loads(text: str) -> Any:
    """``json.loads``; above :data:`HOLD_BYTES` with the pure-Python scanner: 4x slower, but
    it lets other threads run (the C scanner holds the GIL for the whole parse, 0.3 s at
    10 MB, and that would freeze the UI thread just as a parse on it would)."""
    if len(text) <= HOLD_BYTES:
        return json.loads(text)
    decoder = json.JSONDecoder()
    decoder.scan_once = py_make_scanner(decoder)  # type: ignore[method-assign]
    return decoder.decode(text)


def check_json(text: str, gen: int) -> JsonCheck:
    """Pure, thread-safe: validate ``text`` as a JSON object (parsed once when valid)."""
    try:
        value = _loads(text) if text.strip() else None
    except ValueError:
        value = None
    except RecursionError:
        return JsonCheck(gen, "input nests lists and objects too deep to check", None,
                         len(text))
    if isinstance(value, dict):
        return JsonCheck(gen, None, value, len(text))
    message, _line, _col = json_position(text)  # what is wrong, and where
    return JsonCheck(gen, message or "input must be a JSON object", None, len(text))


def formatted(text: str) -> str | None:
    """Pure, thread-safe: ``text`` pretty-printed (None when it is not JSON)."""
    try:
        value = _loads(text)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class HeldPayload:
    """A payload too big for the editor: the exact text, with what the form shows of it."""

    text: str
    lines: int
    preview: str

    @classmethod
    def of(cls, text: str) -> HeldPayload:
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        head = text[:PREVIEW_LINES * PREVIEW_WIDTH].split("\n", PREVIEW_LINES)[:PREVIEW_LINES]
        more = lines - len(head)
        # a minified payload is one long line: the preview cuts lines, not just counts them
        preview = "\n".join(h if len(h) <= PREVIEW_WIDTH else h[:PREVIEW_WIDTH] + " …"
                             for h in head)
        if more > 0:
            preview += f"\n… {more:,} more lines (held by the form, not shown)"
        return cls(text, lines, preview)

    @property
    def size_text(self) -> str:
        return human_size(len(self.text))


def human_size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    if n >= 1_000:
        return f"{n / 1e3:.0f} kB"
    return f"{n} bytes"


def too_big(text: str) -> bool:
    return len(text) > HOLD_BYTES
