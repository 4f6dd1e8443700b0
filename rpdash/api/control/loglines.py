"""Worker log lines: what one line says (level, message, job id), the console's filters,
``since`` for the log API, and the time order of lines from several workers.

Log levels are not part of REST v2's event (``{source, line, ts}``); :func:`parse_line`
reads them from the line: a JSON line from runpod-python (``{"requestId", "message",
"level"}``), a ``LEVEL | message`` / ``[LEVEL]`` / ``level=...`` prefix, or a traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from rpdash.api.bodies import loads
from rpdash.api.control.models import epoch_of
from rpdash.core.errors import InvalidInput
from rpdash.core.redact import sanitize

__all__ = [
    "LEVELS",
    "LogLine",
    "level_at_least",
    "log_matches",
    "log_order",
    "merge_sorted",
    "parse_line",
    "parse_since",
]

#: levels from least to most severe; a filter "warn" keeps warn and error
LEVELS = ("debug", "info", "warn", "error")


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a worker's log. ``level``/``message``/``request_id`` are read from
    ``line`` (see :func:`parse_line`); ``ts`` is epoch seconds when the server's time
    could be read."""

    worker_id: str
    source: str
    line: str
    ts: float | None
    ts_text: str
    event_id: str | None
    level: str
    message: str
    request_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def build(cls, worker_id: str, data: dict[str, Any], event_id: str | None) -> LogLine:
        line = data.get("line")
        line = line if isinstance(line, str) else json.dumps(line) if line is not None else ""
        ts_raw = data.get("ts")
        ts_text = "" if ts_raw is None else str(ts_raw)
        ts = float(ts_raw) if isinstance(ts_raw, int | float) and not isinstance(ts_raw, bool) else epoch_of(ts_text)
        level, message, request_id = parse_line(line)
        return cls(worker_id, str(data.get("source") or "container"), line, ts, ts_text,
                   event_id, level, message, request_id)  # fmt: skip



_PREFIX = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[T ][\d:.,]+Z?\s*)?[\[(]?"
    r"(TRACE|DEBUG|INFO|NOTICE|TIP|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)[\])]?"
    r"(?=[\s|:\]-]|$)\s*[|:\-]?\s*",
    re.IGNORECASE,
)
_LOGFMT = re.compile(r"\blevel=\"?(\w+)", re.IGNORECASE)
_LEVEL_WORDS = {
    "trace": "debug", "debug": "debug", "info": "info", "notice": "info", "tip": "info",
    "warn": "warn", "warning": "warn", "error": "error", "err": "error",
    "critical": "error", "fatal": "error", "panic": "error",
}  # fmt: skip


def _level_word(word: Any) -> str | None:
    return _LEVEL_WORDS.get(str(word).strip().lower()) if word is not None else None


def parse_line(line: str) -> tuple[str, str, str | None]:
    """``(level, message, request_id)`` of one log line; level is one of :data:`LEVELS`
    ("info" when the line does not say)."""
    s = line.strip()
    if s.startswith("{") and s.endswith("}"):
        try:
            obj = loads(s)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and ("message" in obj or "msg" in obj):
            msg = obj.get("message", obj.get("msg"))
            lvl = _level_word(obj.get("level", obj.get("severity"))) or "info"
            rid = obj.get("requestId") or obj.get("request_id") or obj.get("job_id")
            return lvl, msg if isinstance(msg, str) else json.dumps(msg), (str(rid) if rid else None)
    m = _PREFIX.match(s)
    if m:
        return _level_word(m.group(1)) or "info", s[m.end():], None
    m = _LOGFMT.search(s)
    if m and _level_word(m.group(1)):
        return _level_word(m.group(1)) or "info", s, None
    if s.startswith("Traceback (most recent call last)") or re.match(r"^\w*(Error|Exception): ", s):
        return "error", s, None
    return "info", s, None


def level_at_least(level: str, minimum: str | None) -> bool:
    """True when ``level`` is ``minimum`` or more severe (None keeps everything)."""
    if not minimum:
        return True
    want = _level_word(minimum) or minimum.lower()
    if want not in LEVELS:
        raise InvalidInput(f"unknown log level {sanitize(minimum, limit=20)!r}: use one of {', '.join(LEVELS)}")
    return LEVELS.index(level if level in LEVELS else "info") >= LEVELS.index(want)


def log_matches(line: LogLine, *, level: str | None = None, grep: str | None = None,
                source: str | None = None, request_id: str | None = None) -> bool:  # fmt: skip
    """The console's log filters: minimum level, text (case-insensitive, in the raw line),
    source, job id."""
    if source and line.source != source:
        return False
    if not level_at_least(line.level, level):
        return False
    if request_id and line.request_id != request_id and request_id not in line.line:
        return False
    return not grep or grep.lower() in line.line.lower()


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)


def parse_since(value: str | float | datetime, now: float) -> str:
    """``since`` for the log API as RFC 3339: a datetime, epoch seconds, RFC 3339 text, or
    a duration back from ``now`` (``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``)."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        ts = dt.timestamp()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ts = float(value)
    elif isinstance(value, str):
        m = _RELATIVE.match(value)
        if m:
            n, unit = float(m.group(1)), m.group(2).lower()
            ts = now - n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
        else:
            got = epoch_of(value)
            if got is None:
                raise InvalidInput(
                    f"cannot read since={sanitize(value, limit=40)!r}: give a date-time like "
                    "2026-08-01T12:00:00Z or a duration like 10m, 2h"
                )
            ts = got
    else:
        raise InvalidInput("since must be a date-time, epoch seconds or a duration like 10m")
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_order(line: LogLine) -> tuple[float, int, str]:
    """Sort key: the server's time, then the event id (numeric ids in number order)."""
    eid = line.event_id or ""
    return (line.ts if line.ts is not None else 0.0, int(eid) if eid.isdigit() else 0, eid)


def merge_sorted(lines: Iterable[LogLine]) -> list[LogLine]:
    """Log lines of several workers in time order (ties by event id)."""
    return sorted(lines, key=log_order)


def format_log_line(line: Any, *, with_worker: bool) -> str:
    """``TS  [WORKER]  LEVEL  message  [job ID]``, inert for a terminal."""
    ts = line.ts_text or "-"
    who = f"{sanitize(line.worker_id)}  " if with_worker else ""
    job = f"  [{sanitize(line.request_id)}]" if line.request_id else ""
    src = "" if line.source == "container" else "(system) "
    return f"{sanitize(ts)}  {who}{line.level.upper():<5}  {src}{sanitize(line.message)}{job}"
