"""Wrapping streamed text for a ``Log`` (which does not wrap): as it arrives, and again
from the start when the width or the wrap setting changes (``w``, a resize, a stream
reopened from history before its pane had a width)."""

from __future__ import annotations

import re

#: raw stream text kept for re-wrapping (the log itself keeps at most its MAX_LINES)
RAW_KEEP = 1_000_000

_WORDS = re.compile(r"\S+\s*|\s+")


_WORDS = re.compile(r"\S+\s*|\s+")


def wrap_stream(text: str, col: int, width: int) -> tuple[str, int]:
    """Insert line breaks so no line grows past ``width``, breaking between words when it
    can. ``col`` is the length of the line already on screen; returns the new text and the
    new ``col``. Streamed tokens (LLM output) arrive without newlines, and a Log does not
    wrap, so without this a story would be one endless line."""
    if width <= 8:
        return text, col
    out: list[str] = []
    for i, part in enumerate(text.split("\n")):
        if i:
            out.append("\n")
            col = 0
        if col + len(part) <= width:
            out.append(part)
            col += len(part)
            continue
        for word in _WORDS.findall(part):
            n = len(word)
            if col + len(word.rstrip()) > width and col > 0:
                out.append("\n")
                col = 0
                word = word.lstrip() if word.strip() else word
                n = len(word)
            while n > width:  # a word longer than a line
                out.append(word[: width - col])
                out.append("\n")
                word = word[width - col:]
                n = len(word)
                col = 0
            out.append(word)
            col += n
    return "".join(out), col



class StreamText:
    """The raw text of a stream (its last ``RAW_KEEP`` characters) and where the wrapped
    view of it stands: ``add`` wraps what arrives, ``all`` wraps everything again."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0
        self.col = 0  # length of the last line written
        self.width = 0  # the width the text on screen was wrapped for (0: not wrapped)

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0
        self.col = 0
        self.width = 0

    def add(self, text: str, width: int | None) -> str:
        """Keep ``text``; return it wrapped for ``width`` (None: not wrapped)."""
        self._parts.append(text)
        self._size += len(text)
        while self._size > RAW_KEEP and len(self._parts) > 1:
            self._size -= len(self._parts.pop(0))
        if width is None:
            self.width = 0
            self.col = _last_line(text, self.col)
            return text
        self.width = width
        out, self.col = wrap_stream(text, self.col, width)
        return out

    def all(self, width: int | None) -> str:
        """Everything kept, wrapped from the start for ``width`` (None: not wrapped)."""
        text = "".join(self._parts)
        self.col = 0
        self.width = width or 0
        if width is None:
            self.col = _last_line(text, 0)
            return text
        out, self.col = wrap_stream(text, 0, width)
        return out


def _last_line(text: str, col: int) -> int:
    nl = text.rfind("\n")
    return col + len(text) if nl < 0 else len(text) - nl - 1
