"""Endpoint commands on the data plane (``rpdash health``, ``rpdash purge``) and how the
command line names an endpoint (``--endpoint``: an id or a name from the config file)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from rpdash.cli.output import note, plural, safe, to_json
from rpdash.cli.state import EXIT_OK


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://|^www\.", re.IGNORECASE)


def resolve_endpoint(settings: Any, name: str, *, where: str = "--endpoint") -> str:
    """The endpoint id ``name`` stands for (a config-file name or an id). A URL is refused
    with what to do instead: the base URL is a setting of its own."""
    from urllib.parse import urlsplit

    from rpdash.core.errors import ConfigError

    text = name.strip()
    if _URL.match(text):
        parts = urlsplit(text if "://" in text else f"https://{text}")
        m = re.fullmatch(r"(.*/v2)/([^/]+)(?:/.*)?", parts.path)
        hint = ""
        if m:
            base = f"{parts.scheme}://{parts.netloc}{m.group(1)}"
            hint = f" (here: --base-url {safe(base)} --endpoint {safe(m.group(2))})"
        raise ConfigError(
            f"{where} {safe(text)!r} looks like a URL; it takes an endpoint id or a name from "
            "the config file. A base URL goes in --base-url or RUNPOD_BASE_URL, ending in "
            f"/v2, with the endpoint id after it in {where}{hint}"
        )
    return settings.resolve_endpoint(text)


async def cmd_health(client: Any, endpoint_id: str, args: argparse.Namespace) -> int:
    h = await client.health(endpoint_id)
    if args.json:
        print(to_json(h.raw()), flush=True)
        return EXIT_OK
    j, w = h.jobs, h.workers
    print(
        f"endpoint {safe(endpoint_id)}\n"
        f"jobs:    in queue {j.inQueue}, in progress {j.inProgress}, completed {j.completed}, "
        f"failed {j.failed}, retried {j.retried}\n"
        f"workers: idle {w.idle}, running {w.running}, initializing {w.initializing}, "
        f"ready {w.ready}, throttled {w.throttled}, unhealthy {w.unhealthy}",
        flush=True,
    )
    return EXIT_OK


def confirm_purge(endpoint_id: str) -> bool:
    """Ask on the terminal before a purge; refuse (ConfigError, exit 2) without one."""
    from rpdash.core.errors import ConfigError

    if not sys.stdin.isatty():
        raise ConfigError("purge asks for confirmation but stdin is not a terminal: pass --yes")
    print(
        f"Purge every queued job of endpoint {safe(endpoint_id)}? Jobs in progress keep "
        "running. [y/N] ",
        end="", file=sys.stderr, flush=True,
    )
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    note("nothing purged")
    return False


async def cmd_purge(client: Any, endpoint_id: str, args: argparse.Namespace) -> int:
    res = await client.purge_queue(endpoint_id)
    if args.json:
        print(to_json(res.raw()), flush=True)
    else:
        print(f"removed {plural(res.removed, 'queued job')} from endpoint {safe(endpoint_id)}",
              flush=True)
    return EXIT_OK
