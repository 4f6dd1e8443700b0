"""Taking the API key out of text that is about to be shown, logged or written."""

from __future__ import annotations

import re

MASK = "***"
#: Shorter secrets (test keys such as "k") are only masked where they stand as a whole token,
#: so that masking them does not mangle every word that happens to contain them.
_SUBSTRING_MIN = 8


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced by ``***``."""
    if not secret or secret not in text:
        return text
    if len(secret) >= _SUBSTRING_MIN:
        return text.replace(secret, MASK)
    pattern = rf"(?<![A-Za-z0-9_\-]){re.escape(secret)}(?![A-Za-z0-9_\-])"
    return re.sub(pattern, MASK, text)


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
