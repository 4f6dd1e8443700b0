"""Parsing and dispatch: which command runs, with which settings, and how its end (an error,
Ctrl-C, a closed pipe) becomes one line on stderr and a documented exit code."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rpdash.cli.output import err, note, retry_note, safe
from rpdash.cli.state import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    State,
    exit_code,
)

_ISSUES_HINT = "this is a bug in rpdash; please report it with the command you ran"

_MUTATING = frozenset({"run", "cancel", "retry", "purge"})


def main(argv: list[str] | None, state: State) -> int:
    """Parse ``argv``, run the command, return its exit code; never raises."""
    from rpdash.cli.parser import build_parser

    # httpx imports its own command line (click, rich.syntax, pygments: ~25-40 ms) unless
    # that import fails, and then defines a stub; rpdash never runs httpx's command line.
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        if args.command != "sim" and (problem := _demo_option_problem(args)):
            err(state, problem)
            return EXIT_USAGE
        if args.command is None:
            return _dashboard(args, state)
        if args.command == "sim":
            return _sim(args)
        if args.demo or args.local_worker:
            flag = "--demo" if args.demo else "--local-worker"
            err(state, f"{flag} starts the dashboard; it does not apply to headless commands")
            return EXIT_USAGE
        from rpdash.cli import ops, scale

        if args.command == "watch":
            from rpdash.cli.watch import run_watch

            return run_watch(args, state, load_settings)
        if args.command in ops.COMMANDS:
            return ops.dispatch(args, load_settings(args))
        if args.command in scale.COMMANDS:
            return scale.dispatch(args, load_settings(args))
        return _headless(args, state)
    except KeyboardInterrupt:
        if state.job_id:
            note(
                f"interrupted; job {safe(state.job_id)} keeps running on endpoint "
                f"{safe(state.endpoint_id or '?')}; follow it with: rpdash status "
                f"{safe(state.job_id)} --endpoint {safe(state.endpoint_id or '?')} --follow"
            )
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `rpdash ... | head`: the reader left; not an error
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # last resort: one line, no traceback, no key
        from rpdash.core.errors import RpdashError

        if isinstance(exc, RpdashError):
            err(state, str(exc))
            if state.job_id and state.job_id not in str(exc):
                note(f"job id: {safe(state.job_id)}")
            return exit_code(exc)
        err(state, f"unexpected {type(exc).__name__}: {exc} ({_ISSUES_HINT})")
        if state.job_id:
            note(f"job id: {safe(state.job_id)}")
        return EXIT_API


def load_settings(args: argparse.Namespace) -> Any:
    """Settings from the environment, .env and the config file, with the command line's
    ``--base-url``, ``--allow-insecure-http`` and ``--readonly`` on top; warnings to stderr."""
    from pathlib import Path

    from rpdash.config import load_settings as load

    cli: dict[str, Any] = {}
    if getattr(args, "base_url", None):
        cli["base_url"] = args.base_url
    if getattr(args, "allow_insecure_http", False):
        cli["allow_insecure_http"] = True
    if getattr(args, "readonly", False):
        cli["readonly"] = True
    config = getattr(args, "config", None)
    if config:
        settings = load(cli=cli, config_file=Path(config))
    else:
        settings = load(cli=cli)
    for warning in getattr(settings, "warnings", None) or ():
        print(f"rpdash: warning: {safe(warning)}", file=sys.stderr, flush=True)
    return settings


# ---------------------------------------------------------------------------- dashboard, sim


def _demo_option_problem(args: argparse.Namespace) -> str | None:
    """``--scenario`` / ``--pickup`` belong to ``--demo``: what is wrong with them, if anything."""
    given = [(k, v) for k in ("scenario", "pickup") if (v := getattr(args, k, None)) is not None]
    if not given:
        return None
    k, v = given[0]
    if args.command is not None:
        return f"--{k} is for the dashboard's demo; it does not apply to headless commands"
    if not args.demo:
        return f"--{k} goes with --demo (the dashboard's simulator): rpdash --demo --{k} {safe(v)}"
    from rpdash.sim.scenarios import pickup_orders, scenario_names

    for k, v, valid in (("scenario", args.scenario, scenario_names()),
                        ("pickup", args.pickup, list(pickup_orders()))):  # fmt: skip
        if v is not None and v not in valid:
            return f"unknown --{k} {safe(v)}; choose one of: {', '.join(valid)}"
    return None


def _dashboard(args: argparse.Namespace, state: State) -> int:
    import gc

    # Start-up allocates a great deal and frees little: the collector's passes over it are
    # ~20 % of the time to the first full frame. The app turns it back on once the
    # dashboard has painted (RpdashApp._settle_heap); the finally is the safety net.
    gc.disable()
    try:
        return _dashboard_run(args, state)
    finally:
        gc.enable()


def _dashboard_run(args: argparse.Namespace, state: State) -> int:
    settings = load_settings(args)
    if settings.api_key is not None:
        state.secret = settings.api_key.get_secret_value() or None
    from rpdash.cli.endpoint import resolve_endpoint

    endpoints = [resolve_endpoint(settings, e) for e in args.endpoints] if args.endpoints else None
    try:
        from rpdash.tui.app import run_tui
    except ImportError as exc:
        err(
            state,
            f"the dashboard is not available ({exc}); the headless commands work: rpdash --help",
        )
        return EXIT_USAGE
    demo_opts = {k: v for k in ("scenario", "pickup") if (v := getattr(args, k, None)) is not None}
    if args.local_worker:
        if args.demo:
            err(state, "--local-worker and --demo do not go together: pick one")
            return EXIT_USAGE
        return int(run_tui(settings, local_worker=args.local_worker) or 0)
    return int(run_tui(settings, demo=args.demo, endpoints=endpoints, **demo_opts) or 0)


def _sim(args: argparse.Namespace) -> int:
    import ipaddress

    from rpdash.core.errors import ConfigError
    from rpdash.sim.server import serve

    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"the simulator binds loopback addresses only (127.0.0.1, ::1, localhost), not "
            f"{safe(args.host)}: it is a local test double; no command-line flag changes that"
        )

    if args.list_scenarios:
        from rpdash.cli.parser import scenario_lines
        from rpdash.sim.scenarios import scenario_catalog

        print(scenario_lines(scenario_catalog()))
        return EXIT_OK
    serve(
        pickup=args.pickup,
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        scenario=args.scenario,
        seed=args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big"),
        time_scale=args.time_scale,
    )
    return EXIT_OK


# ---------------------------------------------------------------------------- headless


def _headless(args: argparse.Namespace, state: State) -> int:
    import asyncio

    from rpdash.cli.endpoint import confirm_purge, resolve_endpoint
    from rpdash.core.errors import ConfigError

    settings = load_settings(args)
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    state.secret = key or None
    if settings.readonly and args.command in _MUTATING:
        raise ConfigError(
            f"read-only mode (--readonly or RPDASH_READONLY) refuses `{args.command}`"
        )
    given = args.endpoint or (args.endpoints[0] if args.endpoints else None)
    name = given or settings.endpoint_id
    if not name:
        raise ConfigError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
    endpoint_id = resolve_endpoint(settings, name, where="--endpoint" if given else "RUNPOD_ENDPOINT_ID")
    state.endpoint_id = endpoint_id
    if not key:
        raise ConfigError("no API key: set RUNPOD_API_KEY (or put it in a .env file)")

    request = None
    if args.command == "run":
        from rpdash.cli.request import build_request

        request = build_request(args)
    if args.command == "purge" and not args.yes and not confirm_purge(endpoint_id):
        return EXIT_OK
    return asyncio.run(_within_deadline(
        _run_command(args, settings, endpoint_id, request, state), args, settings, state))


async def _within_deadline(work: Any, args: argparse.Namespace, settings: Any,
                           state: State) -> int:
    """The command under its overall deadline (``--timeout``; see rpdash.cli.deadline)."""
    from urllib.parse import urlsplit

    from rpdash.cli.deadline import FOLLOW_GRACE_S, seconds_for, within
    from rpdash.cli.jobs import follows_job

    cmd = args.command
    following = follows_job(args)
    seconds = seconds_for(args, reads_only=cmd in ("health", "status") and not following)

    def job() -> tuple[str, str] | None:
        if following and state.job_id:
            return state.job_id, state.endpoint_id or "?"
        return None

    return await within(
        work, seconds, what=f"rpdash {cmd}", where=urlsplit(settings.base_url).netloc or "RunPod",
        job=job, may_have_changed=cmd in _MUTATING, default=args.timeout is None,
        grace=FOLLOW_GRACE_S if following else 0.0,
    )  # fmt: skip


async def _run_command(
    args: argparse.Namespace, settings: Any, endpoint_id: str, request: Any, state: State
) -> int:
    from rpdash.api.client import RunPodClient
    from rpdash.cli import endpoint, jobs
    from rpdash.cli.history import CliHistory

    async with RunPodClient(
        settings.api_key,
        settings.base_url,
        timeout=settings.request_timeout,
        allow_insecure_http=settings.allow_insecure_http,
        max_retries=state.max_retries,
        clock=state.clock,
        on_retry=lambda exc, delay, n, most: retry_note(state, exc, delay, n, most),
    ) as client:
        cmd = args.command
        if cmd in ("run", "status", "cancel", "retry"):
            # what the CLI learns about jobs goes to the history (opened on first use)
            state.history = CliHistory(settings.history_file(), state)
            try:
                if cmd == "run":
                    return await jobs.cmd_run(client, endpoint_id, request, args, state)
                command = {"status": jobs.cmd_status, "cancel": jobs.cmd_cancel,
                           "retry": jobs.cmd_retry}[cmd]  # fmt: skip
                return await command(client, endpoint_id, args, state)
            finally:
                state.history.close()
        if cmd == "health":
            return await endpoint.cmd_health(client, endpoint_id, args)
        if cmd == "purge":
            return await endpoint.cmd_purge(client, endpoint_id, args)
    raise AssertionError(f"unknown command {cmd}")  # pragma: no cover (argparse prevents it)
