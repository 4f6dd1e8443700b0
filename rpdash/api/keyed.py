"""Per-endpoint API keys: one ``RunPodAPI`` that sends each endpoint's calls with its key.

An operator may watch endpoints of two accounts, or use a key scoped to one endpoint
(``[endpoint_keys]`` in the config file). Every data-plane call names its endpoint first,
so :class:`KeyedClient` routes each call to the client holding that endpoint's key and
everything else to the default client. The services see one client and never know.
Each inner client keeps its own connection pool, pacing and key scrubbing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

__all__ = ["KeyedClient"]

_ROUTED = frozenset({"run", "runsync", "status", "status_sync", "stream_once", "stream", "cancel",
                     "retry", "health", "purge_queue", "which_not_found"})  # fmt: skip


class KeyedClient:
    """``default`` for every endpoint not in ``by_endpoint`` (endpoint id -> client)."""

    def __init__(self, default: Any, by_endpoint: Mapping[str, Any]) -> None:
        self.default = default
        self.by_endpoint = dict(by_endpoint)
        self.base_url = default.base_url

    def client_for(self, endpoint_id: str) -> Any:
        return self.by_endpoint.get(endpoint_id, self.default)

    def __getattr__(self, name: str) -> Any:
        # only reached for names not set on the instance: the API methods, and anything
        # else the default client has
        target = getattr(self.default, name)
        if name not in _ROUTED:
            return target

        def routed(endpoint_id: str, *args: Any, **kw: Any) -> Any:
            return getattr(self.client_for(endpoint_id), name)(endpoint_id, *args, **kw)

        routed.__name__ = name
        return routed

    async def aclose(self) -> None:
        seen: set[int] = set()
        for c in (self.default, *self.by_endpoint.values()):
            if id(c) in seen:
                continue
            seen.add(id(c))
            with contextlib.suppress(Exception):
                await c.aclose()

    async def __aenter__(self) -> KeyedClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:  # never a key
        return f"KeyedClient(base_url={self.base_url!r}, own keys for {sorted(self.by_endpoint)})"
