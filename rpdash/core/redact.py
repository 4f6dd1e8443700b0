"""Making text safe to show: the API key taken out, and nothing a terminal would act on.

``redact`` masks the key in text that is about to be shown, logged or written;
``sanitize`` escapes control characters and escape sequences (server text, ids, names);
``inert`` and ``inert_excerpt`` do both to text from outside, in the one safe order: the key
is masked *before* the text is cut, so no cut can leave a piece of the key unmasked.
"""

from __future__ import annotations

import re

MASK = "***"
#: Shorter secrets (test keys such as "k") are only masked where they stand as a whole token,
#: so that masking them does not mangle every word that happens to contain them.
_SUBSTRING_MIN = 8

# C0 controls except \t \n, DEL, C1 controls (\x9b is a one-byte CSI), bidi overrides.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_CHARS_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    if not secret or secret not in text:
        return text
    if len(secret) >= _SUBSTRING_MIN:
        return text.replace(secret, MASK)
    pattern = rf"(?<![A-Za-z0-9_\-]){re.escape(secret)}(?![A-Za-z0-9_\-])"
    return re.sub(pattern, MASK, text)


def sanitize(text: str, *, one_line: bool = True, limit: int | None = None) -> str:
    """Neutralise what a terminal would act on: control characters and escape sequences are
    shown as ``\\xNN`` / ``\\uNNNN`` escapes (so ``\\x1b[2J`` prints as text, harmless).
    With ``one_line`` newlines and tabs are escaped too. ``limit`` truncates with an ellipsis."""
    pattern = _UNSAFE_CHARS_ONE_LINE if one_line else _UNSAFE_CHARS
    out = pattern.sub(_escape_char, text)
    if limit is not None and len(out) > limit:
        out = out[: max(0, limit - 1)] + "…"
    return out


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def inert(text: str, secret: str | None, *, limit: int | None = None, one_line: bool = True) -> str:
    """Text from outside (a server's message, an exception's text) made safe to show:
    ``secret`` masked first, then controls escaped and the text cut to ``limit``."""
    return sanitize(redact(text, secret), one_line=one_line, limit=limit)


def inert_excerpt(content: bytes, secret: str | None, limit: int) -> str:
    """The start of a body as :func:`inert` text of at most ``limit`` characters.

    Only a window of the body is decoded: 4 bytes a character for ``limit`` characters
    plus the secret, so a secret that overlaps the characters shown lies wholly inside it
    and is masked; a piece of a secret that the window's end cuts off is masked too."""
    n = len(secret or "")
    window = 4 * (limit + n)
    text = redact(content[:window].decode("utf-8", errors="replace"), secret)
    if secret and n >= _SUBSTRING_MIN and len(content) > window:
        for k in range(n - 1, 0, -1):  # the longest start of the secret the text ends with
            if text.endswith(secret[:k]):
                text = text[:-k] + MASK
                break
    return sanitize(text.strip(), limit=limit)


#: a key must be at least this long before its last four characters are shown
_HINT_MIN = 16


def mask(secret: str | None) -> str:
    """A hint of which key is in use that gives nothing away: ``rp_…a1b2`` for a real
    RunPod key (12+ characters stay hidden), ``…`` for a short one, ``""`` for none."""
    if not secret:
        return ""
    prefix = "rp_" if secret.startswith("rp_") else ""
    if len(secret) < _HINT_MIN:
        return f"{prefix}…"
    return f"{prefix}…{secret[-4:]}"
