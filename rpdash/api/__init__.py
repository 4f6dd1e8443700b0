"""The RunPod client (``RunPodClient``) and the interface the services use (``RunPodAPI``).

Exports are resolved lazily so that importing ``rpdash.api.protocol`` (or this package) does
not pull in httpx and tenacity before a client is actually needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["RunPodClient", "RunPodAPI", "StreamEnd"]

if TYPE_CHECKING:
    from rpdash.api.client import RunPodClient
    from rpdash.api.protocol import RunPodAPI, StreamEnd


def __getattr__(name: str) -> Any:
    if name == "RunPodClient":
        from rpdash.api.client import RunPodClient

        return RunPodClient
    if name in ("RunPodAPI", "StreamEnd"):
        from rpdash.api import protocol

        return getattr(protocol, name)
    raise AttributeError(f"module 'rpdash.api' has no attribute {name!r}")
