"""Endpoint commands on the data plane: ``rpdash health`` and ``rpdash purge``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rpdash.cli.output import note, safe, to_json
from rpdash.cli.state import EXIT_OK


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
        print(f"removed {res.removed} queued job(s) from endpoint {safe(endpoint_id)}", flush=True)
    return EXIT_OK
