"""A shared base for the clients that own one lazily created ``httpx.AsyncClient``."""

from __future__ import annotations

from typing import Any

import httpx


class HttpOwner:
    """``async with`` support and an idempotent :meth:`aclose` for one pooled client."""

    _http: httpx.AsyncClient | None = None
    _closed: bool = False

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(base_url={getattr(self, 'base_url', '?')!r})"

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()
