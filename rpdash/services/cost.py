"""Cost estimates: what running workers and finished jobs cost, at list prices.

Every figure here is an **estimate** and is shown with ``≈``: list prices per GPU-second,
times GPUs per worker, times seconds. RunPod bills more than execution time (start time
and the idle timeout after each burst, rounded up per second) and negotiated discounts are
not known to rpdash; the console's billing page has the real amounts.

Default prices (USD per second, one GPU) are the serverless table of RunPod's docs
(runpod/docs ``snippets/serverless-gpu-pricing-table.mdx``), **as of 2026-08-20** (last
changed 2026-06-08); see ``shared/runpod-api.md`` section 10.5. Since 2026-05-13 flex and
active workers have one price (before, active was 20-30 % cheaper; discounts now come only
through sales), so the defaults carry the same number for both. Prices change: override
them in the ``[prices]`` config table, by pool id or by a GPU type name::

    [prices]
    as_of = "2026-11-30"
    ADA_24 = 0.00031                     # flex and active alike
    [prices.AMPERE_80]
    flex = 0.00076
    active = 0.00060

Workers of the REST v2 list name their GPU (``"NVIDIA GeForce RTX 4090"``); endpoints name
pools (``ADA_24``). A GPU name is priced through its pool (:data:`POOL_GPUS`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

PRICES_AS_OF = "2026-08-20"
#: pool id -> USD per second for one GPU (flex = active since 2026-05-13)
DEFAULT_PRICES: dict[str, float] = {
    "AMPERE_16": 0.00016,
    "AMPERE_24": 0.00019,
    "ADA_24": 0.00031,
    "AMPERE_48": 0.00034,
    "ADA_48_PRO": 0.00053,
    "AMPERE_80": 0.00076,
    "ADA_80_PRO": 0.00116,
    "BLACKWELL_96": 0.00111,
    "HOPPER_141": 0.00155,
    "BLACKWELL_180": 0.00240,
}
#: pool id -> patterns of the GPU type names in it (docs' gpu-types table), most specific first
POOL_GPUS: dict[str, tuple[str, ...]] = {
    "BLACKWELL_96": (r"RTX PRO 6000",),
    "ADA_48_PRO": (r"L40S?", r"(RTX )?6000 Ada"),
    "AMPERE_16": (r"(RTX )?A4000", r"(RTX )?A4500", r"RTX 4000", r"RTX 2000"),
    "AMPERE_24": (r"L4", r"(RTX )?A5000", r"3090"),
    "ADA_24": (r"4090",),
    "AMPERE_48": (r"(RTX )?A6000", r"A40"),
    "AMPERE_80": (r"A100",),
    "ADA_80_PRO": (r"H100",),
    "HOPPER_141": (r"H200",),
    "BLACKWELL_180": (r"B200",),
}
_POOL_RE = [(pool, re.compile(rf"(?<![A-Za-z0-9])(?:{'|'.join(pats)})(?![A-Za-z0-9])", re.IGNORECASE))
            for pool, pats in POOL_GPUS.items()]  # fmt: skip


def pool_of(gpu: str) -> str | None:
    """The pool a GPU type name belongs to (``"NVIDIA GeForce RTX 4090"`` -> ``ADA_24``)."""
    for pool, rx in _POOL_RE:
        if rx.search(gpu):
            return pool
    return None


class GpuPrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: USD per second for one GPU on a flex worker
    flex: float = Field(ge=0)
    #: USD per second on an active (always-on) worker; None: as flex
    active: float | None = Field(default=None, ge=0)

    def per_s(self, active: bool = False) -> float:
        return self.active if active and self.active is not None else self.flex


class PriceTable(BaseModel):
    """The ``[prices]`` config table over the defaults: a number (flex = active) or a table
    ``{flex, active}`` per pool id or GPU type name; ``as_of`` dates the figures."""

    model_config = ConfigDict(extra="forbid")

    as_of: str = PRICES_AS_OF
    gpus: dict[str, GpuPrice] = Field(default_factory=lambda: {k: GpuPrice(flex=v) for k, v in DEFAULT_PRICES.items()})

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "gpus" in data:
            return data
        prices: dict[str, Any] = {k: GpuPrice(flex=v) for k, v in DEFAULT_PRICES.items()}
        for key, v in data.items():
            if key == "as_of":
                continue
            prices[str(key).upper() if str(key).upper() in DEFAULT_PRICES else str(key)] = (
                {"flex": v, "active": v} if isinstance(v, int | float) and not isinstance(v, bool) else v)
        return {"as_of": data.get("as_of", PRICES_AS_OF), "gpus": prices}

    def price(self, gpu: str | None, *, active: bool = False) -> float | None:
        """USD per second for one GPU of ``gpu`` (a pool id or a GPU type name), or None."""
        if not gpu:
            return None
        found = self.gpus.get(gpu) or self.gpus.get(gpu.upper())
        if found is None:
            lowered = {k.lower(): p for k, p in self.gpus.items()}
            found = lowered.get(gpu.lower())
        if found is None and (pool := pool_of(gpu)) is not None:
            found = self.gpus.get(pool)
        return found.per_s(active) if found is not None else None


def prices_from_config(table: Mapping[str, Any] | None) -> PriceTable:
    """The ``[prices]`` table as a :class:`PriceTable` (the defaults when absent)."""
    return PriceTable.model_validate(dict(table or {}))


def _first_priced(prices: PriceTable, gpus: Sequence[str]) -> str | None:
    return next((g for g in gpus if prices.price(g) is not None), None)


def running_cost_per_s(
    prices: PriceTable,
    *,
    running: int,
    gpus: Sequence[str] = (),
    gpu_count: int | None = 1,
    workers: Iterable[Any] | None = None,
    active: int = 0,
) -> float | None:
    """USD per second that ``running`` workers cost (None when no price is known).

    With the worker list (``workers``: items with ``status``, ``gpu_type``, ``gpu_count``),
    each RUNNING worker is priced by its own GPU; otherwise every worker by the first priced
    pool of the endpoint's ``gpus`` (RunPod tries them in that order). ``active``: how many
    of them are active workers (min workers), priced at the active price."""
    listed = [w for w in workers or () if str(getattr(w, "status", "")).upper() == "RUNNING"]
    fallback = _first_priced(prices, gpus)
    total, priced, left_active = 0.0, False, max(0, active)
    if listed:
        for w in listed:
            gpu = getattr(w, "gpu_type", None) or fallback
            rate = prices.price(gpu, active=left_active > 0)
            if rate is None:
                continue
            left_active -= 1
            total += rate * (getattr(w, "gpu_count", None) or gpu_count or 1)
            priced = True
        return total if priced else None
    if fallback is None:
        return None
    n_active = min(max(0, active), max(0, running))
    per_gpu = (n_active * prices.price(fallback, active=True)  # type: ignore[operator]
               + (max(0, running) - n_active) * prices.price(fallback))  # fmt: skip
    return per_gpu * (gpu_count or 1)


def endpoint_cost_per_s(prices: PriceTable, endpoint_info: Any, health: Any = None,
                        workers: Iterable[Any] | None = None) -> float | None:  # fmt: skip
    """:func:`running_cost_per_s` read from an ``EndpointInfo`` (``gpus``, ``gpu_count``,
    ``workers_min``) and a ``Health`` (``workers.running``) or the worker list."""
    wl = getattr(workers, "workers", workers)
    wl = list(wl) if wl is not None else None
    running = int(getattr(getattr(health, "workers", None), "running", 0) or 0)
    if wl is not None:
        running = max(running, sum(1 for w in wl if str(getattr(w, "status", "")).upper() == "RUNNING"))
    return running_cost_per_s(prices, running=running, gpus=tuple(getattr(endpoint_info, "gpus", ()) or ()),
                              gpu_count=getattr(endpoint_info, "gpu_count", None) or 1, workers=wl,
                              active=int(getattr(endpoint_info, "workers_min", 0) or 0))  # fmt: skip


def job_cost(prices: PriceTable, execution_ms: int | float | None, gpu: str | Sequence[str] | None,
             gpu_count: int | None = 1, *, active: bool = False) -> float | None:  # fmt: skip
    """USD a finished job's execution cost (execution time x price; None when unknown).
    ``gpu``: the worker's GPU type, or the endpoint's pools (the first priced one)."""
    if execution_ms is None:
        return None
    name = gpu if isinstance(gpu, str) or gpu is None else _first_priced(prices, gpu)
    rate = prices.price(name, active=active)
    if rate is None:
        return None
    return max(0.0, float(execution_ms)) / 1000.0 * rate * (gpu_count or 1)


def _money(usd: float) -> str:
    if usd <= 0:
        return "$0"
    if usd >= 1:
        return f"${usd:,.2f}"
    decimals = max(2, 1 - math.floor(math.log10(usd)))
    return f"${usd:.{decimals}f}"


def format_cost(usd: float | None) -> str:
    """``≈ $0.0042``, ``≈ $1.25``; ``-`` when unknown. Always marked as an estimate."""
    return "-" if usd is None else f"≈ {_money(usd)}"


def format_rate(usd_per_s: float | None, per: str = "s") -> str:
    """``≈ $0.0012/s`` (or per ``"min"``, ``"h"``); ``-`` when unknown."""
    if usd_per_s is None:
        return "-"
    factor = {"s": 1, "min": 60, "h": 3600}[per]
    return f"≈ {_money(usd_per_s * factor)}/{per}"
