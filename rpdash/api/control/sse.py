"""A text/event-stream parser (the WHATWG rules RunPod's log tail follows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from rpdash.api.bodies import BodyTooLarge

__all__ = ["Event", "sse_events"]


@dataclass(slots=True)
class Event:
    """One event: its ``id`` (kept for ``Last-Event-ID``), ``data``, type and ``retry`` hint."""

    id: str | None = None
    data: str | None = None
    event: str | None = None
    retry: int | None = None


async def sse_events(lines: AsyncIterator[str], *, max_data: int | None = None) -> AsyncIterator[Event]:
    """Parse a text/event-stream (WHATWG rules: ``field: value`` lines, blank line ends an
    event, ``:`` comments, multi-line ``data`` joined with newlines, ``id`` persists).
    An event whose data grows past ``max_data`` characters raises ``BodyTooLarge``."""
    data: list[str] = []
    size = 0
    ev = Event()
    seen = False
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if seen:
                ev.data = "\n".join(data) if data else None
                yield ev
            data = []
            size = 0
            ev = Event()
            seen = False
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
            size += len(value) + 1
            if max_data is not None and size > max_data:
                raise BodyTooLarge(f"an event of more than {max_data} characters")
            seen = True
        elif name == "id":
            if "\x00" not in value:
                ev.id = value
                seen = True
        elif name == "event":
            ev.event = value
            seen = True
        elif name == "retry" and value.isdigit():
            ev.retry = int(value)
            seen = True
    if seen and data:  # a last event without its blank line (stream cut)
        ev.data = "\n".join(data)
        yield ev
