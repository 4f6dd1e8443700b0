"""Headless operations commands: ``rpdash endpoints | workers | logs | metrics | diagnose``.

Hooked into the command line by two calls (``add_subcommands`` from ``rpdash.cli.parser``,
``dispatch`` from ``rpdash.cli.app``); this module imports only the standard library at
import time, so ``rpdash --help`` stays fast. ``metrics`` lives in ``rpdash.cli.metrics``.

    rpdash endpoints [--all] [--json]
    rpdash workers   [--endpoint ID] [--json]
    rpdash logs      [--endpoint ID] [--worker ID] [--follow] [--tail N] [--since T]
                     [--level L] [--grep TEXT] [--source container|system] [--job ID]
                     [--save PATH] [--json]
    rpdash metrics   [--endpoint ID] [--window 1h] [--json]
    rpdash diagnose  [--endpoint ID] [JOB_ID] [--json]

Same output contract as the other headless commands: results on stdout (``--json``: ASCII
JSON, one document per line; ``logs --json`` one line object per line), notes and errors on
stderr, errors one line (``rpdash: error: ...``) without traceback or key, server text made
inert for the terminal. Exit codes: 0 ok, 2 usage or configuration error (nothing was
sent), 3 API error, 130 Ctrl-C.

Where the control plane is: ``--control-url``, else ``RUNPOD_API_BASE_URL`` (the variable
runpod-python reads for the same host), else derived from the data-plane base URL
(``https://api.runpod.ai/v2`` -> ``https://api.runpod.io``; a simulator's
``http://127.0.0.1:PORT/v2`` -> ``http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rpdash.cli.deadline import add_timeout_argument
from rpdash.cli.output import plural, safe, table, to_json
from rpdash.cli.state import EXIT_API, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from rpdash.core.redact import redact

#: a log tail without --follow ends after this many quiet seconds (the API has no
#: end-of-backlog marker; see rpdash.api.control)
LOG_IDLE_S = 2.0

#: the subcommands this module adds
COMMANDS = frozenset({"endpoints", "workers", "logs", "metrics", "diagnose"})

def _tail_arg(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= v <= 5000:
        raise argparse.ArgumentTypeError("must be from 0 to 5000")
    return v


def _common_parser() -> argparse.ArgumentParser:
    """The options every headless command has (used when the caller passes none)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--endpoint", dest="endpoint", metavar="ID",
                        help="endpoint name (from the config file) or id; default RUNPOD_ENDPOINT_ID")  # fmt: skip
    common.add_argument("--json", action="store_true", help="print JSON (ASCII)")
    common.add_argument("--base-url", metavar="URL", help="data-plane base URL (default RunPod's)")
    common.add_argument("--allow-insecure-http", action="store_true",
                        help="allow sending the key over plain http to a non-loopback host")  # fmt: skip
    common.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file (TOML)")
    add_timeout_argument(common)
    return common


def add_subcommands(subparsers: Any, common: argparse.ArgumentParser | None = None) -> None:
    """Add ``endpoints``, ``workers``, ``logs``, ``metrics``, ``diagnose`` to ``subparsers``
    (the object ``add_subparsers()`` returned). ``common`` is the parent parser holding
    ``--endpoint --json --base-url --allow-insecure-http --config``; one is made if None."""
    parents = [common if common is not None else _common_parser()]
    control = argparse.ArgumentParser(add_help=False)
    control.add_argument("--control-url", metavar="URL",
                         help="control-plane origin (default https://api.runpod.io, or the "
                              "simulator's origin; env RUNPOD_API_BASE_URL)")  # fmt: skip

    e = subparsers.add_parser("endpoints", parents=[*parents, control],
                              help="list the account's endpoints (name, id, workers, GPU)")  # fmt: skip
    e.add_argument("--all", action="store_true", help="also list load-balancer endpoints")

    subparsers.add_parser("workers", parents=[*parents, control],
                          help="list an endpoint's active workers")  # fmt: skip

    lg = subparsers.add_parser(
        "logs", parents=[*parents, control], help="show or follow worker logs",
        description="Worker logs from RunPod's log stream. Without --worker, the logs of every "
        "active worker of the endpoint, merged by time (new workers are picked up while "
        "following).",
    )  # fmt: skip
    lg.add_argument("--worker", metavar="ID", help="one worker only")
    lg.add_argument("-f", "--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    lg.add_argument("--tail", type=_tail_arg, default=100, metavar="N", help="last N lines first (0-5000, default 100)")
    lg.add_argument("--since", metavar="T", help="lines since T: 2026-08-01T12:00:00Z, or 10m, 2h, 1d ago")
    lg.add_argument("--level", choices=("debug", "info", "warn", "error"), help="this level and worse only")
    lg.add_argument("--grep", metavar="TEXT", help="lines containing TEXT (case-insensitive)")
    lg.add_argument("--source", choices=("container", "system"), help="container (your code) or system lines")
    lg.add_argument("--job", metavar="JOB_ID", help="lines of one job (request id)")
    lg.add_argument("--save", metavar="PATH", help="write the lines to PATH (private file) instead of stdout")

    m = subparsers.add_parser(
        "metrics", parents=parents,
        help="latency, failures, throughput and cold starts from rpdash's job history",
        description="Computed from the jobs rpdash submitted or watched (its history file) "
        "and the health samples it stored; no request is made.",
    )  # fmt: skip
    m.add_argument("--window", default="1h", metavar="W", help="how far back: 15m, 1h, 24h, 7d (default 1h)")

    d = subparsers.add_parser("diagnose", parents=[*parents, control],
                              help="say in plain words why jobs wait in the queue")  # fmt: skip
    d.add_argument("job_id", nargs="?", metavar="JOB_ID", help="a queued job to explain")


def dispatch(args: argparse.Namespace, settings: Any) -> int:
    """Run the command ``args.command`` with ``settings`` (rpdash.config.Settings).
    Returns the exit code; every error is one line on stderr."""
    from rpdash.core.errors import (
        ConfigError,
        InsecureTransport,
        InvalidInput,
        RpdashError,
    )

    from rpdash.files import SaveError

    secret = settings.api_key.get_secret_value() if getattr(settings, "api_key", None) else ""
    ctx = _Ctx(args, settings, secret)
    try:
        return _run(ctx)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except RpdashError as exc:
        ctx.error(str(exc))
        return EXIT_USAGE if isinstance(exc, ConfigError | InvalidInput | InsecureTransport) else EXIT_API
    except SaveError as exc:  # --save: a link, a directory, no such directory, no room
        ctx.error(f"--save: {exc}")
        return EXIT_USAGE


class _Ctx:
    def __init__(self, args: argparse.Namespace, settings: Any, secret: str) -> None:
        self.args = args
        self.settings = settings
        self.secret = secret
        self.save: Any = None
        self.saved = 0

    def scrub(self, text: str) -> str:
        return redact(text, self.secret)

    def error(self, message: str) -> None:
        print(f"rpdash: error: {safe(self.scrub(message))}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        print(f"rpdash: {safe(self.scrub(message))}", file=sys.stderr, flush=True)

    def out(self, line: str) -> None:
        if self.save is not None:
            self.save.write(line + "\n")
            self.saved += 1
        else:
            print(line, flush=True)

    # -------------------------------------------------------------- settings

    def key(self) -> str:
        from rpdash.core.errors import ConfigError

        if not self.secret:
            raise ConfigError("no API key: set RUNPOD_API_KEY (or put it in a .env file)")
        return self.secret

    def endpoint(self) -> str:
        from rpdash.cli.endpoint import resolve_endpoint
        from rpdash.core.errors import ConfigError

        a = self.args
        name = getattr(a, "endpoint", None) or ((getattr(a, "endpoints", None) or [None])[0]) \
            or self.settings.endpoint_id  # fmt: skip
        if not name:
            raise ConfigError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
        return resolve_endpoint(self.settings, name)

    def control_url(self) -> str:
        from rpdash.api.control import control_url_for

        explicit = getattr(self.args, "control_url", None) or os.environ.get("RUNPOD_API_BASE_URL", "").strip()
        if explicit:
            return explicit
        base = getattr(self.args, "base_url", None) or self.settings.base_url
        return control_url_for(base)

    def control(self) -> Any:
        from rpdash.api.control import ControlClient

        return ControlClient(
            self.key(),
            self.control_url(),
            timeout=float(getattr(self.settings, "request_timeout", 30.0)),
            allow_insecure_http=bool(getattr(self.args, "allow_insecure_http", False)
                                     or getattr(self.settings, "allow_insecure_http", False)),  # fmt: skip
        )


def _run(ctx: _Ctx) -> int:
    import asyncio
    from urllib.parse import urlsplit

    from rpdash.cli.deadline import seconds_for, within

    cmd = ctx.args.command
    if cmd == "metrics":
        from rpdash.cli.metrics import cmd_metrics

        return cmd_metrics(ctx)
    fn = {"endpoints": _cmd_endpoints, "workers": _cmd_workers, "logs": _cmd_logs,
          "diagnose": _cmd_diagnose}[cmd]  # fmt: skip
    follows = cmd == "logs" and ctx.args.follow
    seconds = seconds_for(ctx.args, reads_only=not follows)
    where = urlsplit(ctx.control_url()).netloc or "RunPod"
    return asyncio.run(within(fn(ctx), seconds, what=f"rpdash {cmd}", where=where,
                              default=getattr(ctx.args, "timeout", None) is None))  # fmt: skip


# ---------------------------------------------------------------------------- endpoints


async def _cmd_endpoints(ctx: _Ctx) -> int:
    async with ctx.control() as cc:
        eps = await cc.list_endpoints(queue_only=not ctx.args.all)
        if cc.last_source == "graphql":
            ctx.note(f"listed through GraphQL (REST v2: {cc.fallback_reason})")
    if ctx.args.json:
        print(to_json([e.to_dict() for e in eps]), flush=True)
        return EXIT_OK
    if not eps:
        ctx.note("no queue-based endpoints in this account" if not ctx.args.all else "no endpoints")
        return EXIT_OK
    rows = []
    for e in eps:
        workers = f"{_n(e.workers_min)}-{_n(e.workers_max)}"
        idle = f"{e.idle_timeout_s} s" if e.idle_timeout_s is not None else "-"
        row = [safe(e.name), safe(e.id), workers, safe(e.gpu_text), idle]
        if ctx.args.all:
            row.append(safe(e.type))
        rows.append(row)
    header = ["NAME", "ID", "WORKERS", "GPU", "IDLE TIMEOUT"] + (["TYPE"] if ctx.args.all else [])
    for line in table(rows, header):
        print(line, flush=True)
    return EXIT_OK


def _n(v: int | None) -> str:
    return "?" if v is None else str(v)


async def _cmd_workers(ctx: _Ctx) -> int:
    from rpdash.services.diagnosis import uptime_text

    endpoint_id = ctx.endpoint()
    async with ctx.control() as cc:
        wl = await cc.workers(endpoint_id)
    if ctx.args.json:
        print(to_json(wl.to_dict()), flush=True)
        return EXIT_OK
    s = wl.summary
    print(f"endpoint {safe(endpoint_id)}: {plural(s.get('total', len(wl.workers)), 'worker')}: running "
          f"{s.get('running', 0)}, idle {s.get('idle', 0)}, initializing {s.get('initializing', 0)}, "
          f"throttled {s.get('throttled', 0)}, unhealthy {s.get('unhealthy', 0)}", flush=True)  # fmt: skip
    if wl.workers:
        rows = [[safe(w.id), safe(w.status), safe(w.gpu_type or "-") + (f" x{w.gpu_count}" if w.gpu_count and w.gpu_count > 1 else ""),
                 safe(w.data_center or "-"), uptime_text(w.uptime_s), _n(w.version) + (" (stale)" if w.is_stale else "")]
                for w in wl.workers]  # fmt: skip
        for line in table(rows, ["ID", "STATUS", "GPU", "DATA CENTER", "UPTIME", "VERSION"]):
            print(line, flush=True)
    return EXIT_OK


# ---------------------------------------------------------------------------- logs


async def _cmd_logs(ctx: _Ctx) -> int:
    from rpdash.api.control import parse_since
    from rpdash.core.clock import RealClock

    a = ctx.args
    endpoint_id = ctx.endpoint()
    since = parse_since(a.since, RealClock().time()) if a.since else None
    cc = ctx.control()  # everything is checked before --save touches a file
    if not a.save:
        shown = await _print_logs(ctx, cc, endpoint_id, since)
    else:
        from rpdash.files import private_writer

        done = False
        try:
            # a new private file renamed over PATH at the end: a command that fails before
            # the first line leaves PATH as it was; Ctrl-C keeps the lines that came
            with private_writer(a.save) as fh:
                ctx.save = fh
                shown = await _print_logs(ctx, cc, endpoint_id, since)
            done = True
        finally:
            ctx.save = None
            if done or ctx.saved:
                ctx.note(f"saved {plural(ctx.saved, 'line')} to {a.save}")
    if shown == 0 and not a.follow and not a.json:
        ctx.note("no log lines" + (" match" if (a.level or a.grep or a.job) else ""))
    return EXIT_OK


async def _print_logs(ctx: _Ctx, cc: Any, endpoint_id: str, since: float | None) -> int:
    """Print (or save) the lines that pass the filters; return how many."""
    from rpdash.api.control import log_matches
    from rpdash.api.control.loglines import format_log_line

    a = ctx.args
    shown = 0
    async with cc:
        if a.worker:
            stream = cc.worker_logs(endpoint_id, a.worker, tail=a.tail, since=since,
                                    source=a.source, follow=a.follow, idle=LOG_IDLE_S)  # fmt: skip
        else:
            stream = cc.endpoint_logs(endpoint_id, tail=a.tail, since=since, source=a.source,
                                      follow=a.follow, idle=LOG_IDLE_S)  # fmt: skip
        async for line in stream:
            if not log_matches(line, level=a.level, grep=a.grep, request_id=a.job):
                continue
            shown += 1
            ctx.out(to_json(line.to_dict()) if a.json else format_log_line(line, with_worker=not a.worker))
    return shown


# ---------------------------------------------------------------------------- diagnose


async def _cmd_diagnose(ctx: _Ctx) -> int:
    from rpdash.api.client import RunPodClient
    from rpdash.core.clock import RealClock
    from rpdash.core.errors import AuthError, RateLimited, RpdashError
    from rpdash.core.records import JobRecord
    from rpdash.services.diagnosis import diagnose

    endpoint_id = ctx.endpoint()
    base = getattr(ctx.args, "base_url", None) or ctx.settings.base_url
    insecure = bool(getattr(ctx.args, "allow_insecure_http", False) or ctx.settings.allow_insecure_http)
    limited: bool | float = False
    job = None
    async with RunPodClient(ctx.key(), base, timeout=ctx.settings.request_timeout,
                            allow_insecure_http=insecure, max_retries=1) as data:  # fmt: skip
        try:
            health = await data.health(endpoint_id)
        except RateLimited as exc:
            limited, health = exc.retry_after or True, None
        if ctx.args.job_id:
            j = await data.status(endpoint_id, ctx.args.job_id)
            job = JobRecord(j.id, endpoint_id, j.status, delay_ms=j.delayTime,
                            execution_ms=j.executionTime, worker_id=j.workerId)  # fmt: skip
            job = _with_history(ctx, job)
    workers = info = None
    async with ctx.control() as cc:
        try:
            workers = await cc.workers(endpoint_id)
            info = await cc.get_endpoint(endpoint_id)
        except AuthError:
            raise
        except RpdashError as exc:
            ctx.note(f"control plane unavailable, diagnosing from /health only ({exc})")
    findings = diagnose(health, workers, info, job, RealClock().time(), limited)
    if ctx.args.json:
        print(to_json([f.to_dict() for f in findings]), flush=True)
    else:
        for f in findings:
            print(f"{f.severity.upper():<5}  {safe(f.text)}", flush=True)
    return EXIT_OK


def _with_history(ctx: _Ctx, job: Any) -> Any:
    """Add what the history knows of the job (submit time, policy) without creating it."""
    from pathlib import Path

    from rpdash.store.history import HistoryStore, StoreError

    path = Path(ctx.settings.history_file())
    if not path.exists():
        return job
    try:
        with HistoryStore(path) as store:
            rec = store.get(job.job_id)
    except StoreError:
        return job
    if rec is None:
        return job
    return rec.copy(status=job.status, delay_ms=job.delay_ms or rec.delay_ms,
                    worker_id=job.worker_id or rec.worker_id)  # fmt: skip
