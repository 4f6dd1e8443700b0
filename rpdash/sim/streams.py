"""Stream chunks: splitting items over the 1 MB chunk limit, and handing chunks out.

- One streamed chunk is at most 1 MB (operation-reference.mdx: "Larger outputs are split
  across multiple chunks"); how a split item looks is not documented. Our choice (MB =
  10^6 bytes of UTF-8): a string item is cut into consecutive strings (joining them gives
  the item back); any other item is sent as its JSON text, cut the same way.
- ``/stream`` drains: each answer hands out the chunks not handed out before, with the
  job's status read at the same instant. With ``stream_batch_max`` an answer carries at
  most that many, so chunks can come with the terminal status or after it; a reader is done
  at a terminal status with an empty batch (runpod-api.md 6.5, 9).
"""

from __future__ import annotations

import json
from typing import Any

from rpdash.sim.model import STREAM_CHUNK_MAX_BYTES, SimJob


def split_chunk(value: Any, limit: int = STREAM_CHUNK_MAX_BYTES) -> list[Any]:
    """``value`` as one chunk, or as several when its text is over ``limit`` bytes."""
    if isinstance(value, str):
        text = value
        if len(text) <= limit // 4 or len(text.encode()) <= limit:
            return [value]
    else:
        if isinstance(value, int | float | bool) or value is None:
            return [value]
        text = json.dumps(value, separators=(",", ":"))
        if len(text) <= limit // 4 or len(text.encode()) <= limit:
            return [value]
    data = text.encode()
    parts: list[Any] = []
    start = 0
    while start < len(data):
        end = min(len(data), start + limit)
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # not inside a character
            end -= 1
        parts.append(data[start:end].decode())
        start = end
    return parts


def take(job: SimJob, batch_max: int | None, *, peek: bool) -> list[dict[str, Any]]:
    """The chunks of the next ``/stream`` answer; ``peek`` leaves them pending."""
    pending = job.pending
    if not pending:
        return []
    n = len(pending) if batch_max is None else min(batch_max, len(pending))
    out = [{"output": c} for c in pending[:n]]
    if not peek:
        job.chunks_sent += n
        del pending[:n]
    return out
