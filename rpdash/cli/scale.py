"""Headless scaling commands: ``rpdash scale | drain | restore``.

Hooked into the command line by two calls (``add_subcommands`` from ``rpdash.cli.parser``,
``dispatch`` from ``rpdash.cli.app``); only the standard library at import time.

    rpdash scale   --endpoint X [--min N] [--max N] [--idle-timeout S]
                   [--scaler queue-delay|request-count] [--scaler-value N] [--json]
    rpdash drain   --endpoint X --confirm NAME [--json]
    rpdash restore --endpoint X [--json]

Each prints ``before -> after`` on stdout, the values read back from RunPod's answer; drain
adds how many queued jobs it removed. ``drain`` saves the endpoint's scale in the history
file, sets min and max workers to 0 and purges the queue; ``--confirm`` must be the
endpoint's name or id, or nothing happens. ``restore`` puts the saved scale back.
``--readonly`` refuses all three. Exit codes as the other headless commands: 0 ok, 2 usage,
configuration, a refusal (read-only, wrong confirmation, nothing saved, a value out of
range: nothing was changed), 3 API error (including "may have been applied": the answer was
lost; the message gives the values read again), 130 Ctrl-C.
"""

from __future__ import annotations

import argparse
from typing import Any

from rpdash.cli.output import safe, to_json
from rpdash.cli.state import EXIT_API, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

#: the subcommands this module adds
COMMANDS = frozenset({"scale", "drain", "restore"})

_SCALERS = {"queue-delay": "QUEUE_DELAY", "request-count": "REQUEST_COUNT"}


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return v


def add_subcommands(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add ``scale``, ``drain``, ``restore`` to ``subparsers``; ``common`` holds
    ``--endpoint --json --base-url --allow-insecure-http --config --readonly``."""
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--control-url", metavar="URL",
                         help="control-plane origin (default https://api.runpod.io, or the "
                              "simulator's origin; env RUNPOD_API_BASE_URL)")  # fmt: skip
    parents = [common, control]
    s = subparsers.add_parser(
        "scale", parents=parents, help="change an endpoint's workers, idle timeout or scaler",
        description="Change what is given, leave the rest; prints before -> after as RunPod "
        "now has it.",
    )  # fmt: skip
    s.add_argument("--min", dest="workers_min", type=_count, metavar="N", help="min (active) workers")
    s.add_argument("--max", dest="workers_max", type=_count, metavar="N", help="max workers (0 stops new ones)")
    s.add_argument("--idle-timeout", type=_count, metavar="S", help="idle timeout, 1-3600 seconds")
    s.add_argument("--scaler", choices=sorted(_SCALERS), help="scale by queue delay or by request count")
    s.add_argument("--scaler-value", type=_count, metavar="N",
                   help="seconds of queue delay, or requests per worker (>= 1)")  # fmt: skip
    d = subparsers.add_parser(
        "drain", parents=parents, help="save the scale, set workers to 0 and purge the queue",
        description="Saves the endpoint's scale (min, max, idle timeout, scaler) in the history "
        "file, sets min and max workers to 0, and removes every queued job. Running jobs "
        "finish. `rpdash restore` puts the scale back.",
    )  # fmt: skip
    d.add_argument("--confirm", metavar="NAME", help="the endpoint's name or id, typed out (required)")
    subparsers.add_parser("restore", parents=parents, help="put back the scale the last drain saved")


def dispatch(args: argparse.Namespace, settings: Any) -> int:
    """Run ``args.command``; returns the exit code, every error one line on stderr."""
    import asyncio

    from rpdash.cli.ops import _Ctx
    from rpdash.core.errors import ConfigError, InsecureTransport, InvalidInput, RpdashError

    secret = settings.api_key.get_secret_value() if getattr(settings, "api_key", None) else ""
    ctx = _Ctx(args, settings, secret)
    try:
        if settings.readonly:
            raise InvalidInput(f"read-only mode (--readonly or RPDASH_READONLY) refuses `{args.command}`")
        if args.command == "drain" and not (args.confirm or "").strip():
            raise InvalidInput("drain removes every queued job: confirm with --confirm NAME "
                               "(the endpoint's name or id)")  # fmt: skip
        return asyncio.run(_run(ctx))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RpdashError as exc:
        ctx.error(str(exc))
        cap = getattr(exc, "cap", None)  # WorkerCapRefused: RunPod named the account's cap
        if cap is not None and getattr(settings, "account_worker_cap", None) != cap:
            ctx.note(f"the account's worker cap is {cap}: put `account_worker_cap = {cap}` in the "
                     "config file so the dashboard and `rpdash watch` can say when it holds "
                     "an endpoint back")  # fmt: skip
        return EXIT_USAGE if isinstance(exc, ConfigError | InvalidInput | InsecureTransport) else EXIT_API


async def _run(ctx: Any) -> int:
    from rpdash.api.client import RunPodClient
    from rpdash.core.errors import InvalidInput
    from rpdash.services.scaling import Scaling, confirms
    from rpdash.store.history import HistoryStore
    from rpdash.store.scale_memory import ScaleMemory

    a, settings = ctx.args, ctx.settings
    endpoint_id = ctx.endpoint()
    key = ctx.key()
    base = getattr(a, "base_url", None) or settings.base_url
    insecure = bool(getattr(a, "allow_insecure_http", False) or settings.allow_insecure_http)
    history = HistoryStore(settings.history_file()) if a.command != "scale" else None
    try:
        async with ctx.control() as control, RunPodClient(
            key, base, timeout=settings.request_timeout, allow_insecure_http=insecure,
        ) as data:  # fmt: skip
            svc = Scaling(control, data, ScaleMemory(history) if history is not None else None)
            if a.command == "scale":
                result = await svc.scale(endpoint_id, workers_min=a.workers_min,
                                         workers_max=a.workers_max, idle_timeout=a.idle_timeout,
                                         scaler_type=_SCALERS.get(a.scaler or ""),
                                         scaler_value=a.scaler_value)  # fmt: skip
            elif a.command == "drain":
                ep = await control.get_endpoint(endpoint_id)
                if not confirms(ep, a.confirm):
                    raise InvalidInput(f"--confirm {a.confirm.strip()!r} is neither the name "
                                       f"({ep.name!r}) nor the id of endpoint {ep.id}: nothing "
                                       "was changed")  # fmt: skip
                result = await svc.drain(endpoint_id)
            else:
                result = await svc.restore(endpoint_id)
            if control.update_source == "graphql":
                ctx.note("changed through GraphQL saveEndpoint (REST v2 does not offer the update here)")
    finally:
        if history is not None:
            history.close()
    if a.json:
        print(to_json(result.to_dict()), flush=True)
    else:
        print(safe(result.summary), flush=True)
    if result.note:
        ctx.note(result.note)
    if result.action == "drain" and result.saved is not None:
        ctx.note(f"saved the previous scale; put it back with: rpdash restore --endpoint {safe(endpoint_id)}")
    return EXIT_OK
