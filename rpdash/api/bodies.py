"""Reading an answer's body within bounds, and JSON that cannot crash the reader.

- **Size.** A body is read as a stream, and reading stops once more than ``cap`` bytes
  have come out of it *after decompression* (:class:`BodyTooLarge`). rpdash asks only for
  ``gzip`` and ``deflate`` (:data:`ACCEPT_ENCODING`) and decompresses them here, at most
  ``cap + 1`` bytes at a time, so a small compressed answer (a "zip bomb") costs at most the
  cap, not what it would grow to. An encoding rpdash did not ask for is refused
  (:class:`BodyUnreadable`) rather than decoded blindly.
- **JSON.** :func:`loads` reads JSON like ``json.loads``; a body nested too deeply for the
  parser raises the same ``ValueError`` as any body that is not JSON, instead of a
  ``RecursionError`` that would escape the client's error mapping.

RunPod caps a request body at 20 MB (``/runsync``), and its answers carry what the job
returned, so the cap is a little above that: :data:`MAX_BODY_BYTES` (24 MiB). Error answers
are only quoted, so their bodies are read up to :data:`ERROR_BODY_BYTES` and cut there.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

__all__ = [
    "ACCEPT_ENCODING",
    "ERROR_BODY_BYTES",
    "MAX_BODY_BYTES",
    "BodyTooLarge",
    "BodyUnreadable",
    "loads",
    "iter_lines",
    "read_body",
]

#: the most a 2xx answer may hold, decompressed
MAX_BODY_BYTES = 24 * 1024 * 1024
#: how much of an error answer is read (only its start is ever shown)
ERROR_BODY_BYTES = 64 * 1024
#: the only content encodings rpdash asks for, and decodes
ACCEPT_ENCODING = "gzip, deflate"


class BodyTooLarge(ValueError):
    """The body holds more than the cap (decompressed)."""


class BodyUnreadable(ValueError):
    """The body is in an encoding rpdash did not ask for, or does not decompress."""


def loads(content: bytes | str) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as ``ValueError``."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


async def read_body(resp: httpx.Response, cap: int, *, truncate: bool = False) -> bytes:
    """The body of a response sent with ``stream=True``, decompressed, at most ``cap``
    bytes: past that, :class:`BodyTooLarge`, or with ``truncate`` the first ``cap`` bytes.
    The caller closes ``resp``."""
    buf = bytearray()
    if resp.is_stream_consumed:  # an answer made in memory (a test transport): read already
        buf += resp.content
    else:
        inflater = _inflater(resp.headers.get("content-encoding", ""))
        size = resp.headers.get("content-length", "")
        if inflater is None and size.isdigit() and int(size) > cap and not truncate:
            raise BodyTooLarge(f"{int(size)} bytes")
        async for raw in resp.aiter_raw():
            if not _fill(buf, _plain(inflater, raw), cap):
                break
        else:
            _fill(buf, _plain(inflater, b""), cap)  # what zlib still holds back
    if len(buf) > cap:
        if not truncate:
            raise BodyTooLarge(f"more than {cap} bytes")
        del buf[cap:]
    return bytes(buf)


async def iter_lines(resp: httpx.Response, max_line: int) -> AsyncIterator[str]:
    """The lines of a streamed text body without their ends (``\\r\\n``, ``\\n`` or ``\\r``,
    as in text/event-stream), decompressed in bounded steps; a line that grows past
    ``max_line`` characters raises :class:`BodyTooLarge`."""
    if resp.is_stream_consumed:  # an answer made in memory (a test transport): decoded
        inflater, chunks = None, _once(resp.content)
    else:
        inflater, chunks = _inflater(resp.headers.get("content-encoding", "")), resp.aiter_raw()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for raw in chunks:
        for piece in _plain(inflater, raw):
            lines, pending = _lines(pending + decoder.decode(piece))
            for line in lines:
                yield line
            if len(pending) > max_line:
                raise BodyTooLarge(f"a line of more than {max_line} characters")
    for piece in _plain(inflater, b""):
        pending += decoder.decode(piece)
    pending += decoder.decode(b"", final=True)
    *lines, last = _EOL.split(pending)
    for line in lines:
        yield line
    if last:
        yield last


_EOL = re.compile("\r\n|\r|\n")


def _lines(text: str) -> tuple[list[str], str]:
    """The complete lines of ``text``, and the rest (a last ``\\r`` may be half of a
    ``\\r\\n``: it waits with the rest)."""
    hold = text.endswith("\r")
    lines = _EOL.split(text[:-1] if hold else text)
    rest = lines.pop()
    return lines, rest + "\r" if hold else rest


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


class _Inflater:
    """zlib with its output bounded per call; ``deflate`` with or without its zlib header
    (RFC 9110 says with; some servers send it raw)."""

    __slots__ = ("_obj", "_wbits", "_head")

    def __init__(self, wbits: int | None) -> None:
        self._wbits = wbits
        self._obj: Any = None
        self._head = b""

    def decompress(self, data: bytes, room: int) -> bytes:
        if self._obj is None:
            wbits = self._wbits
            if wbits is None:  # deflate: the first two bytes tell a zlib header
                data = self._head + data
                if len(data) < 2 and data:
                    self._head = data
                    return b""
                zlib_header = len(data) >= 2 and (data[0] << 8 | data[1]) % 31 == 0 and data[0] & 0x0F == 8
                wbits = zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS
            self._obj = zlib.decompressobj(wbits)
        return self._obj.decompress(data, room)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._obj.unconsumed_tail if self._obj is not None else b""


def _inflater(encoding: str) -> _Inflater | None:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return None
    if enc in ("gzip", "x-gzip"):
        return _Inflater(16 + zlib.MAX_WBITS)
    if enc == "deflate":
        return _Inflater(None)
    raise BodyUnreadable("the answer is in a content encoding rpdash did not ask for")


#: decompressed output comes out at most this much at a time
_STEP = 1 << 20


def _plain(inflater: _Inflater | None, data: bytes) -> Iterator[bytes]:
    """``data`` decompressed, in pieces of at most ``_STEP`` bytes; empty ``data`` drains
    what zlib still holds back."""
    if inflater is None:
        if data:
            yield data
        return
    try:
        while True:
            out = inflater.decompress(data, _STEP)
            if out:
                yield out
            data = inflater.unconsumed_tail
            if not data and not out:
                return
    except zlib.error:
        raise BodyUnreadable("the compressed answer is corrupt") from None


def _fill(buf: bytearray, pieces: Iterator[bytes], cap: int) -> bool:
    """Add ``pieces`` to ``buf``; False (and stop) once it holds more than ``cap``."""
    for piece in pieces:
        buf += piece
        if len(buf) > cap:
            return False
    return True
