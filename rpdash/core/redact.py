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
