"""Telling the person at the terminal: the bell and desktop notifications sent *through the
terminal* (no notification daemon, no extra package, works over ssh).

- **Bell**: ``BEL`` (0x07). Terminals flash, beep or mark the tab; tmux and screen pass it
  on as a window alert.
- **OSC 9**: ``ESC ] 9 ; text BEL`` (iTerm2, WezTerm, kitty, Windows Terminal, foot,
  ConEmu...): one line of text.
- **OSC 777**: ``ESC ] 777 ; notify ; title ; body BEL`` (rxvt-unicode's notify extension;
  VTE terminals such as GNOME Terminal and Tilix, WezTerm, Ghostty...): a title and a body.

Terminals that know neither ignore both. Text is made safe before it goes out: the API key
is masked (:func:`rpdash.core.redact.redact`), control characters (which could end the
sequence early or inject others: ``ESC``, ``BEL``, C1 controls such as ``ST``) become
spaces, ``;`` becomes ``,`` (it separates OSC 777's fields, and ConEmu reads ``9;<digit>;``
as a command), and the length is capped.

Inside tmux (``$TMUX`` set) a sequence only reaches the outer terminal wrapped for
passthrough, ``ESC P tmux; <sequence, each ESC doubled> ESC \\``, and tmux 3.3+ needs
``set -g allow-passthrough on``. The bell needs no wrapping: tmux forwards it itself.

:func:`notification_bytes` builds the bytes (pure), :func:`send` writes them to a stream.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import IO, Any, Literal

from rpdash.core.redact import redact

BEL = b"\x07"
ESC = b"\x1b"
#: the default cap on a notification's text, in characters (titles get a quarter of it)
MAX_CHARS = 200
Style = Literal["osc9", "osc777", "both", "bell"]

# C0 controls, DEL and C1 controls (0x80-0x9f, which include ST and OSC in 8-bit form),
# plus line and paragraph separators that would break a one-line message
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def sanitize(text: Any, *, limit: int = MAX_CHARS, secret: str | None = None) -> str:
    """``text`` as one safe line: key masked, control characters and ``;`` replaced, runs of
    spaces collapsed, at most ``limit`` characters (``…`` marks a cut)."""
    s = redact(str(text), secret)
    joined = _CONTROL.sub("", s)
    if secret and secret in joined:  # the key split by control characters: mask it whole
        s = redact(joined, secret)
    s = " ".join(_CONTROL.sub(" ", s).replace(";", ",").split())
    if limit > 0 and len(s) > limit:
        s = s[: max(0, limit - 1)].rstrip() + "…"
    return s


def osc9(text: str) -> bytes:
    """``ESC ] 9 ; text BEL`` (``text`` must already be sanitized)."""
    return ESC + b"]9;" + text.encode("utf-8") + BEL


def osc777(title: str, body: str) -> bytes:
    """``ESC ] 777 ; notify ; title ; body BEL`` (both already sanitized)."""
    return ESC + b"]777;notify;" + title.encode("utf-8") + b";" + body.encode("utf-8") + BEL


def tmux_wrap(seq: bytes) -> bytes:
    """``seq`` wrapped for tmux passthrough: ``ESC P tmux; …ESC doubled… ESC \\``."""
    return ESC + b"Ptmux;" + seq.replace(ESC, ESC + ESC) + ESC + b"\\"


def in_tmux(env: Mapping[str, str] | None = None) -> bool:
    return bool((os.environ if env is None else env).get("TMUX"))


def notification_bytes(
    title: str,
    body: str = "",
    *,
    style: Style = "both",
    bell: bool = True,
    tmux: bool | None = None,
    secret: str | None = None,
    limit: int = MAX_CHARS,
) -> bytes:
    """The bytes that ring the bell and/or raise a desktop notification.

    ``style``: ``osc9`` (one line: "title: body"), ``osc777`` (title and body), ``both``
    (each terminal shows the one it knows; none shows two), or ``bell`` (only the bell).
    ``tmux``: wrap for tmux passthrough (None: when ``$TMUX`` is set). ``secret``: the API
    key, masked wherever it appears. ``limit``: characters of text at most."""
    t = sanitize(title, limit=max(1, limit // 4), secret=secret)
    b = sanitize(body, limit=limit, secret=secret)
    seqs: list[bytes] = []
    if style in ("osc9", "both"):
        seqs.append(osc9(sanitize(f"{t}: {b}" if t and b else t or b, limit=limit, secret=secret)))
    if style in ("osc777", "both"):
        seqs.append(osc777(t or "rpdash", b))
    wrap = in_tmux() if tmux is None else tmux
    out = b"".join(tmux_wrap(s) if wrap else s for s in seqs)
    return out + (BEL if bell or style == "bell" else b"")


def send(stream: IO[Any], title: str, body: str = "", **kw: Any) -> int:
    """Write :func:`notification_bytes` (same keywords) to ``stream`` and flush it: a binary
    stream, or a text stream with a ``buffer`` (``sys.stdout``, ``sys.__stderr__``), or a
    plain text stream (written as text). Returns the number of bytes built. A closed or
    failing stream is ignored: a notification never stops rpdash."""
    data = notification_bytes(title, body, **kw)
    try:
        target = getattr(stream, "buffer", None)
        if target is not None:
            stream.flush()  # text already written goes out first, in order
            target.write(data)
            target.flush()
        elif "b" in getattr(stream, "mode", "") or isinstance(stream, _binary_types()):
            stream.write(data)
            stream.flush()
        else:
            stream.write(data.decode("utf-8"))
            stream.flush()
    except (OSError, ValueError):
        pass
    return len(data)


def _binary_types() -> tuple[type, ...]:
    import io

    return (io.BufferedIOBase, io.RawIOBase)
