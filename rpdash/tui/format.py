"""Pure formatting helpers for the UI: inert text, short ids, durations, ages, sparklines.

Everything that came from the network (ids, outputs, errors, progress) passes through
:func:`inert` before it reaches the screen. It replaces terminal control characters
(ESC, BEL, backspace, C1 controls such as CSI 0x9b, DEL) with visible stand-ins, so a
worker that prints ``"\\x1b[2J"`` shows those characters instead of clearing the screen.
The result is always used in ``rich.text.Text`` objects, never in markup strings, so
``[bold]`` in an output stays literal text too.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rich.text import Text

from rpdash.core.models import JobStatus

# C0 controls except \n and \t become their Unicode "control picture" (U+2400 + code);
# DEL becomes U+2421; C1 controls (U+0080..U+009F) become U+FFFD. The table is built once;
# str.translate is implemented in C, so sanitising a large batch of output is cheap.
_INERT = {c: 0x2400 + c for c in range(0x20) if c not in (0x0A, 0x09)}
_INERT[0x7F] = 0x2421
_INERT.update({c: 0xFFFD for c in range(0x80, 0xA0)})
# Unicode line/paragraph separators and bidi overrides can reorder or break lines.
_INERT.update({c: 0xFFFD for c in (0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E,
                                   0x2066, 0x2067, 0x2068, 0x2069)})
_INERT_ONE_LINE = dict(_INERT)
_INERT_ONE_LINE[0x0A] = 0x2424  # newline symbol
_INERT_ONE_LINE[0x09] = 0x20


def inert(text: str, *, one_line: bool = False) -> str:
    """``text`` with every control character replaced by a visible, harmless one."""
    return text.translate(_INERT_ONE_LINE if one_line else _INERT)


def inert_text(text: Any, style: str = "", *, one_line: bool = False) -> Text:
    """A rich ``Text`` (never markup) of ``text`` made inert."""
    s = text if isinstance(text, str) else str(text)
    return Text(inert(s, one_line=one_line), style=style, no_wrap=one_line,
                end="" if one_line else "\n")


def clip(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` cells with an ellipsis (ids and progress can be long)."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…"


def short_id(job_id: str, width: int = 13) -> str:
    """The start of a job id, enough to tell jobs apart ("60902e6c-08a1…")."""
    return clip(inert(job_id, one_line=True), width)


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "job")`` -> "1 job", ``plural(3, "job")`` -> "3 jobs" (``many`` for
    words that do not just take an s)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def fmt_ms(ms: int | float | None) -> str:
    """Milliseconds for a person: ``850ms``, ``12.3s``, ``4m05s``, ``2h10m``; ``-`` if unknown."""
    if ms is None:
        return "-"
    if ms < 0:
        ms = 0
    if ms < 1000:
        return f"{int(ms)}ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        m, sec = divmod(int(s), 60)
        return f"{m}m{sec:02d}s"
    h, rem = divmod(int(s), 3600)
    return f"{h}h{rem // 60:02d}m"


def fmt_age(seconds: float | None) -> str:
    """A compact age: ``5s``, ``3m``, ``2h``, ``4d``; whole units, so it changes rarely."""
    if seconds is None or math.isnan(seconds):
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def fmt_job_age(now: float, since: float) -> str:
    """A job's age for the job list (``fmt_age``), with whole minutes counted on the wall
    clock's minute boundaries: every listed job's "Nm" then changes at the same second, so
    an idle list repaints once a minute, not once per row (a row per second with ~40 rows).
    Shows at most a minute less than the exact age, like a clock without a seconds hand."""
    age = now - since
    if math.isnan(age) or age < 60 or age >= 3600:
        return fmt_age(age)
    return f"{max(1, int((now // 60 * 60 - since) // 60))}m"


def fmt_ago(seconds: float | None) -> str:
    """``3 s ago``, ``2 min ago``; ``never`` when there was no good answer yet."""
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s ago"
    if s < 3600:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


STATUS_STYLE: dict[JobStatus, str] = {
    JobStatus.IN_QUEUE: "yellow",
    JobStatus.IN_PROGRESS: "bold cyan",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "bold red",
    JobStatus.CANCELLED: "magenta",
    JobStatus.TIMED_OUT: "red",
    JobStatus.UNKNOWN: "dim",
}

STATUS_LABEL: dict[JobStatus, str] = {
    JobStatus.IN_QUEUE: "IN_QUEUE",
    JobStatus.IN_PROGRESS: "IN_PROGRESS",
    JobStatus.COMPLETED: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELLED: "CANCELLED",
    JobStatus.TIMED_OUT: "TIMED_OUT",
    JobStatus.UNKNOWN: "UNKNOWN",
}

#: order used by "sort by status": what needs attention first
STATUS_ORDER: dict[JobStatus, int] = {
    JobStatus.FAILED: 0,
    JobStatus.TIMED_OUT: 1,
    JobStatus.IN_PROGRESS: 2,
    JobStatus.IN_QUEUE: 3,
    JobStatus.UNKNOWN: 4,
    JobStatus.CANCELLED: 5,
    JobStatus.COMPLETED: 6,
}


def status_text(status: JobStatus, *, expired: bool = False) -> Text:
    label = STATUS_LABEL.get(status, str(status))
    if expired and not status.terminal:
        # never seen with any status (watched by id, or a submit whose answer was lost),
        # then 404: as likely a wrong id as an expired one
        return Text("NOT FOUND" if status is JobStatus.UNKNOWN else "EXPIRED", style="dim")
    return Text(label, style=STATUS_STYLE.get(status, ""))


_BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """The last ``width`` values as unicode blocks, scaled to their maximum (0 is a space
    only when every value is 0, so a quiet endpoint shows a flat baseline)."""
    if width <= 0:
        return ""
    vals = values[-width:]
    if not vals:
        return " " * width
    top = max(vals)
    if top <= 0:
        line = "▁" * len(vals)
    else:
        line = "".join(_BLOCKS[max(1, min(8, math.ceil(v / top * 8)))] if v > 0 else "▁"
                       for v in vals)
    return line.rjust(width)


def preview(value: Any, width: int = 60) -> str:
    """One inert line for a progress update or output value."""
    if value is None:
        return ""
    if isinstance(value, str):
        s = value
    else:
        try:
            s = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError):
            s = repr(value)
    return clip(inert(s, one_line=True), width)


def chunk_text(value: Any) -> str:
    """How one stream chunk's output reads in the viewer: strings as they are (tokens join
    into lines), anything else as one compact JSON line."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
    except (TypeError, ValueError):
        return repr(value) + "\n"


#: json's messages, short enough for the one line under the editor
_JSON_WHY = {
    "Expecting property name enclosed in double quotes": "trailing comma or unquoted key",
    "Illegal trailing comma before end of object": "trailing comma",
    "Illegal trailing comma before end of array": "trailing comma",
    "Expecting ',' delimiter": "missing comma",
    "Expecting ':' delimiter": "missing colon after the key",
    "Expecting value": "expected a value",
    "Extra data": "extra text after the JSON",
    "Unterminated string starting at": "unterminated string",
    "Invalid control character at": "control character in a string (write \\n)",
}


def json_position(text: str) -> tuple[str | None, int | None, int | None]:
    """Validate a JSON object. Returns (message, line, column); message None when valid."""
    if not text.strip():
        return ("input is empty: type a JSON object, e.g. {\"prompt\": \"hello\"}", 1, 1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        why = _JSON_WHY.get(exc.msg, exc.msg)
        return (f"line {exc.lineno}, column {exc.colno}: {why}", exc.lineno, exc.colno)
    if not isinstance(value, dict):
        return (f"input must be a JSON object {{...}}, not {type(value).__name__}", 1, 1)
    return (None, None, None)


def error_summary(error: str, width: int = 120) -> str:
    """One inert line for an error. runpod-python sends a JSON-encoded object
    (error_type, error_message, error_traceback, ...): show "Type: message" from it;
    a generator's "handler: message \\ntraceback: ..." keeps its first line."""
    s = error.strip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            msg = obj.get("error_message") or obj.get("error") or obj.get("message")
            if msg:
                kind = str(obj.get("error_type") or "")
                # "<class 'ValueError'>" -> "ValueError"
                if kind.startswith("<class '") and kind.endswith("'>"):
                    kind = kind[8:-2]
                s = f"{kind}: {msg}" if kind else str(msg)
    else:
        s = s.splitlines()[0] if s else s
    return clip(inert(s, one_line=True), width)
