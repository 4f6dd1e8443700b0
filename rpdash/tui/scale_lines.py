"""What the dashboard says about an endpoint's scale, one line each: the change a form asks
for (before -> after, for the confirm step), what the server read back, an update whose
answer was lost, a drain and a restore. No Textual here.

Only the parts that differ are named: ``llm-chat: workers 0-3 -> 1-10 (read back)``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from rpdash.api.control.scaling import scale_text, scaler_value_of
from rpdash.tui.format import inert, plural

if TYPE_CHECKING:
    from rpdash.api.control.models import EndpointInfo
    from rpdash.api.control.scaling import ScaleChange, UpdateUncertain
    from rpdash.services.scaling import ScaleResult
    from rpdash.store.scale_memory import SavedScale

#: the parts of a scale, in the order they are said
PARTS = ("workers", "idle", "scaler")
#: the word a part starts with, not said again after the arrow
_WORDS = {"workers": "workers ", "idle": "idle "}


def _n(v: int | float | None) -> str:
    return "?" if v is None else f"{v:g}"


def parts(ep: EndpointInfo) -> dict[str, str]:
    """``{"workers": "workers 0-3", "idle": "idle 5 s", "scaler": "QUEUE_DELAY 4"}``
    (a part the API did not give is left out)."""
    out = {"workers": f"workers {_n(ep.workers_min)}-{_n(ep.workers_max)}"}
    if ep.idle_timeout_s is not None:
        out["idle"] = f"idle {ep.idle_timeout_s} s"
    if ep.scaler_type:
        out["scaler"] = f"{ep.scaler_type} {_n(scaler_value_of(ep))}"
    return out


def diff_text(before: EndpointInfo, after: EndpointInfo) -> str:
    """``workers 0-3 -> 1-10, idle 5 s -> 30 s``: only what differs (the words of a part
    are not repeated after the arrow: ``workers 0-3 -> 1-10``; a part the endpoint has no
    more reads ``none``: ``idle 5 s -> none`` on REQUEST_COUNT); ``unchanged (...)`` when
    nothing does."""
    old, new = parts(before), parts(after)
    said = []
    for key in PARTS:
        a, b = old.get(key, f"{key} none"), new.get(key, f"{key} none")
        if a != b:
            said.append(f"{a} -> {b.removeprefix(_WORDS.get(key, ''))}")
    return ", ".join(said) if said else f"unchanged ({scale_text(after)})"


def expected(before: EndpointInfo, change: ScaleChange) -> EndpointInfo:
    """``before`` as it would be with ``change`` applied (for the confirm step)."""
    kind = change.scaler_type or before.scaler_type
    value = change.scaler_value if change.scaler_value is not None else scaler_value_of(before)
    raw = {}
    if kind:
        raw = {"scaling": {"type": kind,
                           ("requestCount" if kind == "REQUEST_COUNT" else "queueDelay"): value}}
    return dataclasses.replace(
        before,
        workers_min=before.workers_min if change.workers_min is None else change.workers_min,
        workers_max=before.workers_max if change.workers_max is None else change.workers_max,
        idle_timeout_s=before.idle_timeout_s if change.idle_timeout is None else change.idle_timeout,
        scaler_type=kind, raw=raw,
    )


def preview(name: str, before: EndpointInfo, change: ScaleChange) -> str:
    """The confirm step: ``llm-chat: workers 0-3 -> 1-10``."""
    return f"{inert(name, one_line=True)}: {diff_text(before, expected(before, change))}"


def read_back(name: str, result: ScaleResult, asked: ScaleChange | None = None) -> str:
    """After a scale: what the server answered, ``(read back)``; a server that did not do
    all that was asked says so."""
    line = f"{inert(name, one_line=True)}: {diff_text(result.before, result.after)} (read back)"
    if asked is not None and not asked.matches(result.after):
        line += f"; not all that was asked: it has {scale_text(result.after)}"
    return line


def uncertain(name: str, exc: UpdateUncertain) -> str:
    """An update whose answer was lost: it may have been applied; what a re-read shows."""
    head = f"{inert(name, one_line=True)}: the change may have been applied (the answer was lost)"
    if exc.endpoint is None:
        return f"{head}; re-reading failed too: check with s before trying again"
    return f"{head}; re-read shows {scale_text(exc.endpoint)}"


def drained(name: str, result: ScaleResult) -> str:
    """``drained llm-chat: removed 4 queued jobs, workers 0-0; restore with :restore``."""
    after = result.after
    line = (f"drained {inert(name, one_line=True)}: removed "
            f"{plural(result.removed or 0, 'queued job')}, "
            f"workers {_n(after.workers_min)}-{_n(after.workers_max)}")
    if result.note:
        line += f" ({result.note})"
    return line + "; restore with :restore"


def restored(name: str, result: ScaleResult) -> str:
    """``restored llm-chat: workers 0-0 -> 0-3 (read back)``."""
    return f"restored {inert(name, one_line=True)}: {diff_text(result.before, result.after)} (read back)"


def saved_text(saved: SavedScale) -> str:
    """A saved scale in the words of :func:`scale_text`."""
    from rpdash.api.control.models import EndpointInfo
    from rpdash.api.control.scaling import ScaleChange

    empty = EndpointInfo(saved.endpoint_id, saved.name or saved.endpoint_id)
    return scale_text(expected(empty, ScaleChange(saved.workers_min, saved.workers_max,
                                                  saved.idle_timeout, saved.scaler_type,
                                                  saved.scaler_value)))
