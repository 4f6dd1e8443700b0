"""How the command line writes: server text made inert, ASCII JSON, one-line notes and errors,
job outputs, tables and log lines.

Everything that came from a server goes through :func:`safe` before it reaches a terminal
(control characters and escape sequences are shown as text, ``\\x1b`` stays visible and
harmless); ``--json`` output is ASCII-only JSON. Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group(0))
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def safe(text: object, *, one_line: bool = True) -> str:
    """Text from the server made harmless for a terminal (escape sequences shown as text)."""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, s)


def to_json(obj: Any) -> str:
    """Machine output: ASCII-only JSON (every control or non-ASCII character escaped)."""
    return json.dumps(obj, ensure_ascii=True, default=str).replace("\x7f", "\\u007f")


def plural(n: int, word: str) -> str:
    """``1 job``, ``3 jobs``, ``0 lines``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------- stderr


def err(state: Any, message: str) -> None:
    """``rpdash: error: ...``, one line, key scrubbed."""
    print(f"rpdash: error: {safe(state.scrub(message))}", file=sys.stderr, flush=True)


def note(message: str) -> None:
    print(f"rpdash: {message}", file=sys.stderr, flush=True)


def retry_note(state: Any, exc: BaseException, delay: float, n: int, most: int) -> None:
    """A transient failure the client is about to retry: one progress line on stderr
    ("rpdash: RunPod rate limit hit on /status ... (429): retry in 4 s; retrying in 4 s
    (retry 1 of 2)"), so a person knows why nothing happens."""
    when = f"{delay:.0f} s" if delay >= 1 else f"{delay:.1f} s"
    print(f"rpdash: {safe(state.scrub(str(exc)))}; retrying in {when} (retry {n} of {most})",
          file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- jobs


def render_output(value: Any) -> str:
    """A job's output for a person: strings as they are, small JSON on one line."""
    if isinstance(value, str):
        return safe(value, one_line=False)
    try:
        text = json.dumps(value, ensure_ascii=False, indent=None if _small(value) else 2)
    except (TypeError, ValueError):
        text = repr(value)
    return safe(text, one_line=False)


def _small(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or len(json.dumps(value, default=str)) <= 100


def short_error(error: str) -> str:
    """The useful part of a worker error (runpod-python sends a JSON string with a traceback)."""
    try:
        data = json.loads(error)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error_message"), str):
        kind = data.get("error_type")
        if isinstance(kind, str):
            m = re.fullmatch(r"<class '([\w.]+)'>", kind)  # str(type(exc)) in runpod-python
            return f"{m.group(1) if m else kind}: {data['error_message']}"
        return data["error_message"]
    first = error.strip().splitlines()[0] if error.strip() else error
    return first[:500]


def times(job: Any) -> str:
    """`` (queued 1.2 s, ran 3.4 s)`` or nothing."""
    parts = []
    if job.delayTime is not None:
        parts.append(f"queued {job.delayTime / 1000:.1f} s")
    if job.executionTime is not None:
        parts.append(f"ran {job.executionTime / 1000:.1f} s")
    return f" ({', '.join(parts)})" if parts else ""


def status_text(job: Any) -> str:
    from rpdash.core.models import JobStatus

    if job.status is JobStatus.UNKNOWN and job.raw_status:
        return f"UNKNOWN ({safe(job.raw_status)})"
    return job.status.value


def job_lines(job: Any) -> list[str]:
    """``rpdash status``: one ``label: value`` line per known fact of the job."""
    lines = [f"id:        {safe(job.id)}", f"status:    {status_text(job)}"]
    if job.delayTime is not None:
        lines.append(f"queued:    {job.delayTime / 1000:.1f} s")
    if job.executionTime is not None:
        lines.append(f"ran:       {job.executionTime / 1000:.1f} s")
    if job.workerId:
        lines.append(f"worker:    {safe(job.workerId)}")
    if job.output is not None:
        label = "progress:" if not job.terminal else "output:  "
        lines.append(f"{label}  {render_output(job.output)}")
    if job.error is not None:
        lines.append(f"error:     {safe(job.error_text or '', one_line=False)}")
    return lines


# ---------------------------------------------------------------------------- tables, logs


def table(rows: list[list[str]], header: list[str]) -> list[str]:
    """Left-aligned columns two spaces apart, no trailing blanks."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]
