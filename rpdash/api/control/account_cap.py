"""The account's worker cap: how many workers all of an account's endpoints may run together
(runpod-api.md 5.2: 5 by default, more by balance tier). No RunPod API reads it. rpdash
knows it from the ``account_worker_cap`` setting, or learns it when RunPod refuses a scale
update above it; RunPod's text (runpodctl issue 117, 2024) names the cap:

    Your worker concurrency cannot go beyond the maximum limit of (20). Please contact
    support if you wish to scale past this number.

:func:`cap_in` finds the number in such a text; :class:`WorkerCapRefused` is the refused
update (``cap`` = the number); :class:`AccountCap` holds what is known, the learned value
winning over the configured one (RunPod's own word is newer than a config file).
"""

from __future__ import annotations

import re

from rpdash.core.errors import BadRequest

__all__ = ["AccountCap", "WorkerCapRefused", "cap_in"]

_CAP_TEXT = re.compile(r"worker concurrency cannot go beyond the maximum limit of \(?\s*(\d{1,6})\s*\)?", re.I)


def cap_in(text: str | None) -> int | None:
    """The cap RunPod's refusal ``text`` names, or None when it is not that refusal."""
    m = _CAP_TEXT.search(text or "")
    return int(m.group(1)) if m else None


class WorkerCapRefused(BadRequest):
    """RunPod refused a scale update because it goes beyond the account's worker cap."""

    label = "account worker cap"

    def __init__(self, message: str, cap: int, status_code: int | None = None) -> None:
        super().__init__(message, status_code=status_code)
        self.cap = cap


class AccountCap:
    """The account's worker cap as far as rpdash knows it (None: unknown)."""

    def __init__(self, configured: int | None = None) -> None:
        self.configured = configured
        self.learned: int | None = None

    @property
    def value(self) -> int | None:
        return self.learned if self.learned is not None else self.configured

    def learn(self, cap: int) -> None:
        self.learned = cap

    def describe(self) -> str:
        """``account worker cap 5 (learned from RunPod)``, or that it is unknown."""
        if self.learned is not None:
            return f"account worker cap {self.learned} (learned from RunPod's refusal)"
        if self.configured is not None:
            return f"account worker cap {self.configured} (account_worker_cap setting)"
        return "account worker cap unknown (set account_worker_cap)"
