"""Webhook delivery (send-requests.mdx; runpod-api.md 4 and 5.2).

When a job with a ``webhook`` ends COMPLETED, FAILED or TIMED_OUT, one POST carries the
job object as ``/status`` would return it. Any answer but 200 (or no answer) is retried
twice more, 10 s apart on the engine's clock. Whether cancelled jobs send one is not
documented: ours do not. Only loopback URLs (127.0.0.0/8, ::1, localhost) are sent to,
so the simulator never reaches the network; any other URL is stored and recorded as not
sent. Sending needs the engine attached to an asyncio loop (the server's); ``poster`` can
be replaced (tests), it takes (url, body) and returns the HTTP status.
Each attempt is recorded in ``SimJob.webhook_log``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from rpdash.sim.model import WEBHOOK_RETRIES, WEBHOOK_RETRY_GAP_S, SimJob

log = logging.getLogger("rpdash.sim")

Poster = Callable[[str, dict[str, Any]], Awaitable[int]]


def is_loopback_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def httpx_post(url: str, body: dict[str, Any]) -> int:
    import httpx

    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
        resp = await client.post(url, json=body)
        return resp.status_code


class Webhooks:
    """Sends each finished job's webhook, with retries on the engine's clock."""

    webhook_poster: Poster = staticmethod(httpx_post)  # type: ignore[assignment]

    def _send_webhook(self, job: SimJob) -> None:
        url = job.webhook
        assert url is not None
        if not is_loopback_url(url):
            job.webhook_log.append({"at": self.now(), "attempt": 1, "status": None, "sent": False})
            return
        self._webhook_attempt(job, url, self.view(job), 1)

    def _webhook_attempt(self, job: SimJob, url: str, body: dict[str, Any], n: int) -> None:
        loop = self._loop
        entry: dict[str, Any] = {"at": self.now(), "attempt": n, "status": None, "sent": True}
        job.webhook_log.append(entry)
        if loop is None:  # not served: nothing can be sent; counts as a failed attempt
            self._webhook_done(job, url, body, n, entry, None)
            return
        task = loop.create_task(self._webhook_post(url, body))
        self._webhook_tasks.add(task)

        def _done(t: asyncio.Task[int | None]) -> None:
            self._webhook_tasks.discard(t)
            status = None if t.cancelled() else t.result()
            if not self._closed:
                self.sync()
                self._webhook_done(job, url, body, n, entry, status)
                self._arm()

        task.add_done_callback(_done)

    async def _webhook_post(self, url: str, body: dict[str, Any]) -> int | None:
        try:
            return await self.webhook_poster(url, body)
        except Exception as exc:  # connection refused, timeout...: a failed attempt
            log.debug("webhook %s failed: %s", url, exc)
            return None

    def _webhook_done(self, job: SimJob, url: str, body: dict[str, Any], n: int,
                      entry: dict[str, Any], status: int | None) -> None:  # fmt: skip
        entry["status"] = status
        if status != 200 and n <= WEBHOOK_RETRIES:  # 10 s after the failed attempt began
            when = max(self.now(), entry["at"] + WEBHOOK_RETRY_GAP_S)
            self.schedule_at(when, self._webhook_attempt, job, url, body, n + 1)
