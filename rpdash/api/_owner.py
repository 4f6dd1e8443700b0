"""A shared base for the clients that own one lazily created ``httpx.AsyncClient``, and
the loopback test of the key rules they share."""

from __future__ import annotations

import ipaddress
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


#: user:pw@ in a base URL: httpx would send Basic credentials in place of the key
NO_USERINFO = "no user name or password (user:pw@host) in it: rpdash signs in with the API key"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` names and loopback addresses: the only hosts the API key may
    reach over plain http without the user's explicit leave."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
