"""``rpdash``: the dashboard by default, plus a simulator and headless commands.


    rpdash [--endpoint ID ...] [--demo] [--readonly] [--config PATH]   the dashboard
    rpdash --local-worker [URL]                                        dashboard on a local dev worker
    rpdash sim [--host H] [--port N] [--api-key KEY] [--scenario S] ...  local RunPod simulator
    rpdash run|status|cancel|retry|health|purge ...                      headless commands

Output contract of the headless commands (scripts can rely on it):

- stdout carries the result only: for plain ``run`` the job id (one line), for
  ``run --sync/--follow`` the job's output, for ``run --stream`` one line per chunk as it
  arrives. With ``--json`` stdout is the API's JSON instead (one document per line; ``--stream``
  prints one line per chunk, then the final job).
- stderr carries progress and errors. When a command follows a job (``--sync``, ``--stream``,
  ``--follow``, ``--wait``) the job id is printed there the moment it is known
  (``rpdash: job ID submitted to endpoint EP``), so it is never lost, even on Ctrl-C.
- exit codes: 0 success; 1 the job FAILED, was CANCELLED, TIMED_OUT or did not finish within
  ``--timeout``; 2 usage or configuration error (nothing was sent); 3 API error (key
  rejected, not found, rate limited, server error, unreachable, bad response); 130 Ctrl-C.
- errors are one line, ``rpdash: error: ...``, never a traceback and never the API key.
- whatever came from the server is printed with control characters and escape sequences
  neutralised (``\\x1b`` is shown as text); ``--json`` output is ASCII-only JSON.

Start-up is kept light: this module imports only the standard library at import time;
httpx, pydantic and the settings are imported when a command needs them, Textual only when
the dashboard starts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

from rpdash.core.redact import redact

EXIT_OK = 0
EXIT_JOB = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_INTERRUPTED = 130

#: A person is waiting: retry transient failures twice (about 2 s), not four times (8 s).
CLI_MAX_RETRIES = 2
#: How often ``run --stream`` reads again after the client gave up on a transient failure
#: (counted from the last chunk that arrived).
STREAM_RESUMES = 3
#: The clock the headless commands' client waits on (None: real time). Tests inject a fake
#: one so that backoffs and Retry-After waits take no real time.
CLOCK: Any = None

_ISSUES_HINT = "this is a bug in rpdash; please report it with the command you ran"

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group(0))
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def safe(text: object, *, one_line: bool = True) -> str:
    """Text from the server made harmless for a terminal (escape sequences shown as text)."""
    s = text if isinstance(text, str) else str(text)
    return (_UNSAFE_ONE_LINE if one_line else _UNSAFE).sub(_escape, s)


def to_json(obj: Any) -> str:
    """Machine output: ASCII-only JSON (every control or non-ASCII character escaped)."""
    return json.dumps(obj, ensure_ascii=True, default=str).replace("\x7f", "\\u007f")


class _State:
    """What the user must not lose if anything goes wrong: the job id, and the key to scrub."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.endpoint_id: str | None = None
        self.secret: str | None = None
        self.history: Any = None  # _History of a command that submits jobs

    def scrub(self, text: str) -> str:
        return redact(text, self.secret)


def _err(state: _State, message: str) -> None:
    print(f"rpdash: error: {safe(state.scrub(message))}", file=sys.stderr, flush=True)


def _note(message: str) -> None:
    print(f"rpdash: {message}", file=sys.stderr, flush=True)


def _retry_note(state: _State, exc: BaseException, delay: float, n: int, most: int) -> None:
    """A transient failure the client is about to retry: one progress line on stderr
    ("rpdash: RunPod rate limit hit on /status ... (429): retry in 4 s; retrying in 4 s
    (retry 1 of 2)"), so a person knows why nothing happens."""
    when = f"{delay:.0f} s" if delay >= 1 else f"{delay:.1f} s"
    print(f"rpdash: {safe(state.scrub(str(exc)))}; retrying in {when} (retry {n} of {most})",
          file=sys.stderr, flush=True)


class _History:
    """What the headless commands write to the job history (the same SQLite file as the
    dashboard's): a submitted job's id, committed the moment it is known, then its final
    state and stream chunks. The history never decides the outcome of a command: when it
    cannot be opened or written, one warning line goes to stderr (once) and the command
    carries on; the job id is still printed."""

    #: stream chunks are written in batches of this many (one transaction each)
    CHUNK_BATCH = 500

    def __init__(self, path: Any, state: _State) -> None:
        self.path = path
        self._state = state
        self._store: Any = None
        self._broken = False
        self._chunks: list[Any] = []
        self._chunk_seq = 0
        self._chunk_job: str | None = None

    def _warn(self, exc: BaseException, what: str = "the job is not recorded in the "
              "history") -> None:
        if not self._broken:
            self._broken = True
            msg = str(exc) or type(exc).__name__
            print(f"rpdash: warning: {safe(self._state.scrub(msg))}; {what}",
                  file=sys.stderr, flush=True)

    def _open(self) -> Any:
        if self._store is None and not self._broken and self.path is not None:
            try:
                from rpdash.store.history import HistoryStore

                store = HistoryStore(self.path)
                if not store.writable:
                    problem = store.problem
                    store.close()
                    raise problem or OSError("history is read-only")
                self._store = store
            except Exception as exc:  # noqa: BLE001 - the history must not fail a command
                self._warn(exc)
        return self._store

    def _do(self, method: str, *args: Any) -> None:
        store = self._open()
        if store is None:
            return
        try:
            getattr(store, method)(*args)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    def submitted(self, job_id: str, endpoint_id: str, mode: str, request: Any) -> None:
        import time

        from rpdash.core.models import JobStatus
        from rpdash.core.records import JobRecord

        now = time.time()
        extra: dict[str, Any] = {"via": "cli"}
        if request is not None and getattr(request, "policy", None) is not None:
            extra["policy"] = request.policy.body()
        rec = JobRecord(
            job_id=job_id, endpoint_id=endpoint_id, status=JobStatus.IN_QUEUE, mode=mode,
            input=getattr(request, "input", None), submitted_at=now, updated_at=now,
            extra=extra,
        )
        store = self._open()
        if store is None:
            return
        try:
            store.record_submitted(rec)
            return
        except Exception as exc:  # noqa: BLE001
            first = exc
        # A full disk often still has room for the id alone (a big input does not fit):
        # the id is what must not be lost.
        try:
            store.record_submitted(rec.copy(input=None, extra={**extra, "input": "not saved"}))
        except Exception:  # noqa: BLE001
            self._warn(first)
        else:
            self._warn(first, "the job id is recorded in the history, its input and "
                              "results are not")

    def job(self, job: Any, endpoint_id: str, mode: str) -> None:
        """The job's latest state as the API answered it (status, output, error, times)."""
        import time

        from rpdash.core.records import JobRecord

        if self._chunk_job == job.id:
            self.flush_chunks()
        try:
            raw = job.raw()
        except Exception:  # noqa: BLE001
            raw = None
        rec = JobRecord(
            job_id=job.id, endpoint_id=endpoint_id, status=job.status, mode=mode,
            updated_at=time.time(), delay_ms=job.delayTime, execution_ms=job.executionTime,
            retries=job.retries or 0,
            progress=None if job.terminal else job.output,
            output=job.output if job.terminal else None,
            error=job.error_text, worker_id=job.workerId,
            chunk_count=self._chunk_seq if self._chunk_job == job.id else 0,
        )
        self._do("update", rec, raw)

    def chunk(self, job_id: str, output: Any) -> None:
        if self._broken:
            return
        if self._chunk_job != job_id:
            self._chunk_job, self._chunk_seq, self._chunks = job_id, 0, []
        self._chunks.append(output)
        if len(self._chunks) >= self.CHUNK_BATCH:
            self.flush_chunks()

    def flush_chunks(self) -> None:
        if self._chunks and self._chunk_job is not None:
            outputs, self._chunks = self._chunks, []
            self._do("append_chunks", self._chunk_job, self._chunk_seq, outputs)
            self._chunk_seq += len(outputs)

    def close(self) -> None:
        self.flush_chunks()
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                pass
            self._store = None


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rpdash",
        description="Terminal dashboard and command line for RunPod serverless endpoints.",
        epilog=(
            "Without a command the dashboard starts. Environment: RUNPOD_API_KEY, "
            "RUNPOD_ENDPOINT_ID, RUNPOD_BASE_URL, RPDASH_* (see README). Exit codes: 0 ok, "
            "1 job failed/cancelled/timed out, 2 usage or config error, 3 API error, 130 Ctrl-C."
        ),
    )
    p.add_argument(
        "--endpoint", dest="endpoints", action="append", metavar="ID",
        help="endpoint to watch (name from the config file or id); repeatable",
    )
    p.add_argument("--demo", action="store_true", help="run against a built-in simulated RunPod")
    p.add_argument("--readonly", action="store_true", help="hide and refuse destructive actions")
    p.add_argument("--local-worker", metavar="URL", nargs="?", const="http://localhost:8000",
                   help="drive a local dev worker (python handler.py --rp_serve_api; default "
                        "http://localhost:8000) instead of RunPod")
    p.add_argument("--config", metavar="PATH", help="config file (TOML) to read")
    p.add_argument("--version", action="version", version=f"rpdash {_version()}")

    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint", dest="endpoint", metavar="ID",
        help="endpoint name (from the config file) or id; default RUNPOD_ENDPOINT_ID",
    )
    common.add_argument("--json", action="store_true", help="print the API's JSON (ASCII)")
    common.add_argument("--base-url", metavar="URL", help="API base URL (default RunPod's)")
    common.add_argument(
        "--allow-insecure-http", action="store_true",
        help="allow sending the key over plain http to a non-loopback host",
    )
    common.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="config file (TOML) to read"
    )
    common.add_argument(
        "--readonly", action="store_true", default=argparse.SUPPRESS,
        help="refuse commands that change anything",
    )

    follow = argparse.ArgumentParser(add_help=False)
    follow.add_argument(
        "--follow", action="store_true", help="keep following the job until it ends"
    )
    follow.add_argument(
        "--wait", type=_positive_int, metavar="MS",
        help="long-poll hold per request in ms (1000-300000); implies --follow",
    )
    follow.add_argument(
        "--timeout", type=_positive_float, metavar="S",
        help="give up following after S seconds (the job keeps running; exit 1)",
    )

    r = sub.add_parser(
        "run", parents=[common, follow], help="submit a job",
        description="Submit a job. Plain run prints the job id on stdout at once; --sync, "
        "--stream, --follow and --wait print the id on stderr and the result on stdout.",
    )
    r.add_argument(
        "--input", default="{}", metavar="JSON|@FILE|@-",
        help="the job's input object: JSON text, @file, or @- for stdin (default {})",
    )
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--sync", action="store_true", help="use /runsync and wait for the result")
    mode.add_argument("--stream", action="store_true", help="print streamed chunks as they arrive")
    r.add_argument("--execution-timeout", type=_positive_int, metavar="MS",
                   help="policy.executionTimeout in ms (5000-604800000)")
    r.add_argument("--ttl", type=_positive_int, metavar="MS",
                   help="policy.ttl in ms (10000-604800000)")
    r.add_argument("--low-priority", action="store_true", help="policy.lowPriority")
    r.add_argument("--webhook", metavar="URL", help="URL RunPod POSTs the result to")

    s = sub.add_parser("status", parents=[common, follow], help="show a job's status")
    s.add_argument("job_id", metavar="JOB_ID")

    c = sub.add_parser("cancel", parents=[common], help="cancel jobs")
    c.add_argument("job_ids", nargs="+", metavar="JOB_ID")

    rt = sub.add_parser("retry", parents=[common, follow], help="requeue a FAILED/TIMED_OUT job")
    rt.add_argument("job_id", metavar="JOB_ID")

    sub.add_parser("health", parents=[common], help="show an endpoint's jobs and workers")

    pg = sub.add_parser("purge", parents=[common], help="remove every queued job of an endpoint")
    pg.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    sm = sub.add_parser("sim", help="run the local RunPod simulator")
    sm.add_argument("--host", default="127.0.0.1")
    sm.add_argument("--port", type=int, default=8000)
    sm.add_argument("--api-key", default="sim-key", metavar="KEY",
                    help="key clients must send (default sim-key)")
    sm.add_argument("--scenario", default="default", metavar="NAME")
    sm.add_argument("--seed", type=int, default=None, metavar="N",
                    help="seed for job ids, worker ids and faults (default: random; repeatable runs with a fixed seed)")
    sm.add_argument("--time-scale", type=_positive_float, default=1.0, metavar="X")

    from rpdash import cli_ops

    cli_ops.add_subcommands(sub, common)
    return p


def _version() -> str:
    from rpdash import __version__

    return __version__


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return v


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Entry point (``rpdash = rpdash.cli:main``). Returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors (argparse printed them)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    state = _State()
    try:
        if args.command is None:
            return _dashboard(args, state)
        if args.command == "sim":
            return _sim(args)
        if args.demo or args.local_worker:
            flag = "--demo" if args.demo else "--local-worker"
            _err(state, f"{flag} starts the dashboard; it does not apply to headless commands")
            return EXIT_USAGE
        from rpdash import cli_ops

        if args.command in cli_ops.COMMANDS:
            return cli_ops.dispatch(args, _load_settings(args))
        return _headless(args, state)
    except KeyboardInterrupt:
        if state.job_id:
            _note(
                f"interrupted; job {safe(state.job_id)} keeps running on endpoint "
                f"{safe(state.endpoint_id or '?')}: rpdash status {safe(state.job_id)} "
                f"--endpoint {safe(state.endpoint_id or '?')}"
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
            _err(state, str(exc))
            if state.job_id and state.job_id not in str(exc):
                _note(f"job id: {safe(state.job_id)}")
            return _exit_code(exc)
        _err(state, f"unexpected {type(exc).__name__}: {exc} ({_ISSUES_HINT})")
        if state.job_id:
            _note(f"job id: {safe(state.job_id)}")
        return EXIT_API


def _exit_code(exc: BaseException) -> int:
    from rpdash.core.errors import (
        ConfigError,
        InsecureTransport,
        InvalidInput,
        JobFailed,
        Timeout,
    )

    if isinstance(exc, JobFailed):
        return EXIT_JOB
    if isinstance(exc, Timeout) and getattr(exc, "still_running", False):
        return EXIT_JOB  # the job outlived --timeout: it did not finish (the id is printed)
    if isinstance(exc, (ConfigError, InvalidInput, InsecureTransport)):
        return EXIT_USAGE
    return EXIT_API


def _load_settings(args: argparse.Namespace, *, endpoint: str | None = None) -> Any:
    from pathlib import Path

    from rpdash.config import load_settings

    cli: dict[str, Any] = {}
    if getattr(args, "base_url", None):
        cli["base_url"] = args.base_url
    if getattr(args, "allow_insecure_http", False):
        cli["allow_insecure_http"] = True
    if getattr(args, "readonly", False):
        cli["readonly"] = True
    config = getattr(args, "config", None)
    if config:
        settings = load_settings(cli=cli, config_file=Path(config))
    else:
        settings = load_settings(cli=cli)
    for warning in getattr(settings, "warnings", None) or ():
        print(f"rpdash: warning: {safe(warning)}", file=sys.stderr, flush=True)
    return settings


# ---------------------------------------------------------------------------- dashboard, sim


def _dashboard(args: argparse.Namespace, state: _State) -> int:
    import gc

    # Start-up allocates a great deal and frees little: the collector's passes over it are
    # ~20 % of the time to the first full frame. The app turns it back on once the
    # dashboard has painted (RpdashApp._settle_heap); the finally is the safety net.
    gc.disable()
    try:
        return _dashboard_run(args, state)
    finally:
        gc.enable()


def _dashboard_run(args: argparse.Namespace, state: _State) -> int:
    settings = _load_settings(args)
    if settings.api_key is not None:
        state.secret = settings.api_key.get_secret_value() or None
    endpoints = [settings.resolve_endpoint(e) for e in args.endpoints] if args.endpoints else None
    try:
        from rpdash.tui.app import run_tui
    except ImportError as exc:
        _err(
            state,
            f"the dashboard is not available ({exc}); the headless commands work: rpdash --help",
        )
        return EXIT_USAGE
    if args.local_worker:
        if args.demo:
            _err(state, "--local-worker and --demo do not go together: pick one")
            return EXIT_USAGE
        return int(run_tui(settings, local_worker=args.local_worker) or 0)
    return int(run_tui(settings, demo=args.demo, endpoints=endpoints) or 0)


def _sim(args: argparse.Namespace) -> int:
    from rpdash.sim.server import serve

    serve(
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        scenario=args.scenario,
        seed=args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big"),
        time_scale=args.time_scale,
    )
    return EXIT_OK


# ---------------------------------------------------------------------------- headless

_MUTATING = frozenset({"run", "cancel", "retry", "purge"})


def _headless(args: argparse.Namespace, state: _State) -> int:
    import asyncio

    from rpdash.core.errors import ConfigError

    settings = _load_settings(args)
    key = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    state.secret = key or None
    if settings.readonly and args.command in _MUTATING:
        raise ConfigError(
            f"read-only mode (--readonly or RPDASH_READONLY) refuses `{args.command}`"
        )
    name = args.endpoint or (args.endpoints[0] if args.endpoints else None) or settings.endpoint_id
    if not name:
        raise ConfigError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
    endpoint_id = settings.resolve_endpoint(name)
    state.endpoint_id = endpoint_id
    if not key:
        raise ConfigError("no API key: set RUNPOD_API_KEY (or put it in a .env file)")

    request = _build_request(args) if args.command == "run" else None
    if args.command == "purge" and not args.yes and not _confirm_purge(endpoint_id):
        return EXIT_OK
    return asyncio.run(_run_command(args, settings, endpoint_id, request, state))


def _confirm_purge(endpoint_id: str) -> bool:
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
    _note("nothing purged")
    return False


def _read_input(spec: str) -> dict[str, Any]:
    from rpdash.core.errors import InvalidInput

    if spec.startswith("@"):
        path = spec[1:]
        try:
            if path == "-":
                text = sys.stdin.read()
            else:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"cannot read --input {safe(path)}: {exc}") from None
        where = "stdin" if path == "-" else path
    else:
        text, where = spec, "--input"
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{safe(where)} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{safe(where)} must be a JSON object (it becomes the job's \"input\"), "
            f"not {type(data).__name__}"
        )
    return data


def _build_request(args: argparse.Namespace) -> Any:
    from rpdash.core.errors import InvalidInput
    from rpdash.core.models import (
        EXECUTION_TIMEOUT_MAX_MS,
        EXECUTION_TIMEOUT_MIN_MS,
        TTL_MAX_MS,
        TTL_MIN_MS,
        Policy,
        RunRequest,
    )

    data = _read_input(args.input)
    et, ttl = args.execution_timeout, args.ttl
    if et is not None and not EXECUTION_TIMEOUT_MIN_MS <= et <= EXECUTION_TIMEOUT_MAX_MS:
        raise InvalidInput(
            f"--execution-timeout must be {EXECUTION_TIMEOUT_MIN_MS}-{EXECUTION_TIMEOUT_MAX_MS} "
            f"ms (5 s to 7 days), got {et}"
        )
    if ttl is not None and not TTL_MIN_MS <= ttl <= TTL_MAX_MS:
        raise InvalidInput(
            f"--ttl must be {TTL_MIN_MS}-{TTL_MAX_MS} ms (10 s to 7 days), got {ttl}"
        )
    if args.webhook is not None and not re.match(r"^https?://[^\s/]+", args.webhook):
        raise InvalidInput(f"--webhook must be an http(s) URL, got {safe(args.webhook)!r}")
    policy = None
    if et is not None or ttl is not None or args.low_priority:
        policy = Policy(
            executionTimeout=et, ttl=ttl, lowPriority=True if args.low_priority else None
        )
    return RunRequest(input=data, webhook=args.webhook, policy=policy)


async def _run_command(
    args: argparse.Namespace, settings: Any, endpoint_id: str, request: Any, state: _State
) -> int:
    from rpdash.api.client import RunPodClient

    async with RunPodClient(
        settings.api_key,
        settings.base_url,
        timeout=settings.request_timeout,
        allow_insecure_http=settings.allow_insecure_http,
        max_retries=CLI_MAX_RETRIES,
        clock=CLOCK,
        on_retry=lambda exc, delay, n, most: _retry_note(state, exc, delay, n, most),
    ) as client:
        cmd = args.command
        if cmd == "run":
            state.history = _History(settings.history_file(), state)
            try:
                return await _cmd_run(client, endpoint_id, request, args, state)
            finally:
                state.history.close()
        if cmd == "status":
            return await _cmd_status(client, endpoint_id, args, state)
        if cmd == "cancel":
            return await _cmd_cancel(client, endpoint_id, args, state)
        if cmd == "retry":
            return await _cmd_retry(client, endpoint_id, args, state)
        if cmd == "health":
            return await _cmd_health(client, endpoint_id, args)
        if cmd == "purge":
            return await _cmd_purge(client, endpoint_id, args)
    raise AssertionError(f"unknown command {cmd}")  # pragma: no cover (argparse prevents it)


def _follows(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "follow", False) or getattr(args, "wait", None))


def _got_id(state: _State, job_id: str, endpoint_id: str, *, announce: bool) -> None:
    state.job_id = job_id
    if announce:
        _note(f"job {safe(job_id)} submitted to endpoint {safe(endpoint_id)}")


async def _cmd_run(client: Any, endpoint_id: str, request: Any, args: argparse.Namespace,
                   state: _State) -> int:
    history = state.history or _History(None, state)
    if args.sync:

        def on_job_id(jid: str) -> None:
            _got_id(state, jid, endpoint_id, announce=True)
            history.submitted(jid, endpoint_id, "runsync", request)

        job = await client.runsync(
            endpoint_id, request, wait_ms=args.wait, timeout=args.timeout, on_job_id=on_job_id,
        )
        history.job(job, endpoint_id, "runsync")
        return _finish(job, args)
    ref = await client.run(endpoint_id, request)
    mode = "stream" if args.stream else "run"
    # the id is announced (when following) and committed to the history before anything else
    _got_id(state, ref.id, endpoint_id, announce=args.stream or _follows(args))
    history.submitted(ref.id, endpoint_id, mode, request)
    if args.stream:
        return await _stream(client, endpoint_id, ref.id, args, history)
    if _follows(args):
        job = await _follow(client, endpoint_id, ref.id, args)
        history.job(job, endpoint_id, mode)
        return _finish(job, args)
    print(to_json(ref.raw()) if args.json else safe(ref.id), flush=True)
    return EXIT_OK


async def _follow(client: Any, endpoint_id: str, job_id: str, args: argparse.Namespace) -> Any:
    """Long-poll /status-sync until the job ends or --timeout passes (Timeout, exit 1)."""
    return await client.follow(endpoint_id, job_id, timeout=args.timeout, wait_ms=args.wait)


async def _stream(client: Any, endpoint_id: str, job_id: str, args: argparse.Namespace,
                  history: Any = None) -> int:
    from rpdash.api.protocol import StreamEnd
    from rpdash.core.errors import RpdashError

    out = sys.stdout
    resumes = 0
    while True:
        try:
            async for item in client.stream(endpoint_id, job_id, wait_ms=args.wait):
                if isinstance(item, StreamEnd):
                    if history is not None:
                        history.job(item.job, endpoint_id, "stream")
                    return _finish(item.job, args, print_output=False)
                resumes = 0  # data flows again
                if history is not None:
                    history.chunk(job_id, item.output)
                if args.json:
                    out.write(to_json(item.raw()) + "\n")
                else:
                    out.write(_render_output(item.output) + "\n")
                out.flush()
        except RpdashError as exc:
            # The client already retried this read. /stream drains only what it delivered,
            # so reading again resumes right after the last chunk printed: none twice,
            # none missing.
            if not exc.transient or resumes >= STREAM_RESUMES:
                raise
            resumes += 1
            _note(f"stream dropped ({safe(str(exc))}); resuming ({resumes} of "
                  f"{STREAM_RESUMES})")
            continue
        return EXIT_API  # pragma: no cover (the stream always ends with StreamEnd)


def _render_output(value: Any) -> str:
    if isinstance(value, str):
        return safe(value, one_line=False)
    try:
        text = json.dumps(value, ensure_ascii=False, indent=None if _small(value) else 2)
    except (TypeError, ValueError):
        text = repr(value)
    return safe(text, one_line=False)


def _small(value: Any) -> bool:
    return not isinstance(value, (dict, list)) or len(json.dumps(value, default=str)) <= 100


def _finish(job: Any, args: argparse.Namespace, *, print_output: bool = True) -> int:
    """Print a finished job: its output on stdout (or its JSON), the outcome on stderr."""
    from rpdash.core.models import JobStatus

    ok = job.status is JobStatus.COMPLETED
    if args.json:
        print(to_json(job.raw()), flush=True)
    elif print_output and ok and job.output is not None:
        print(_render_output(job.output), flush=True)
    times = _times(job)
    if ok:
        _note(f"job {safe(job.id)} COMPLETED{times}")
        return EXIT_OK
    error = job.error_text
    detail = f": {safe(_short_error(error))}" if error else ""
    print(f"rpdash: job {safe(job.id)} {job.status.value}{times}{detail}", file=sys.stderr,
          flush=True)
    return EXIT_JOB


def _short_error(error: str) -> str:
    """The useful part of a worker error (runpod-python sends a JSON string with a traceback)."""
    try:
        data = json.loads(error)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error_message"), str):
        kind = data.get("error_type")
        if isinstance(kind, str):
            m = re.fullmatch(r"<class '([\w.]+)'>", kind)  # str(type(exc)) in runpod-python
            return f"{m.group(1) if m else kind}: {data['error_message']}"
        return data["error_message"]
    first = error.strip().splitlines()[0] if error.strip() else error
    return first[:500]


def _times(job: Any) -> str:
    parts = []
    if job.delayTime is not None:
        parts.append(f"queued {job.delayTime / 1000:.1f} s")
    if job.executionTime is not None:
        parts.append(f"ran {job.executionTime / 1000:.1f} s")
    return f" ({', '.join(parts)})" if parts else ""


async def _cmd_status(client: Any, endpoint_id: str, args: argparse.Namespace,
                      state: _State) -> int:
    state.job_id = args.job_id
    if _follows(args):
        job = await _follow(client, endpoint_id, args.job_id, args)
    else:
        job = await client.status(endpoint_id, args.job_id)
    if args.json:
        print(to_json(job.raw()), flush=True)
        return EXIT_OK
    lines = [f"id:        {safe(job.id)}", f"status:    {_status_text(job)}"]
    if job.delayTime is not None:
        lines.append(f"queued:    {job.delayTime / 1000:.1f} s")
    if job.executionTime is not None:
        lines.append(f"ran:       {job.executionTime / 1000:.1f} s")
    if job.workerId:
        lines.append(f"worker:    {safe(job.workerId)}")
    if job.output is not None:
        label = "progress:" if not job.terminal else "output:  "
        lines.append(f"{label}  {_render_output(job.output)}")
    if job.error is not None:
        lines.append(f"error:     {safe(job.error_text or '', one_line=False)}")
    print("\n".join(lines), flush=True)
    return EXIT_OK


def _status_text(job: Any) -> str:
    from rpdash.core.models import JobStatus

    if job.status is JobStatus.UNKNOWN and job.raw_status:
        return f"UNKNOWN ({safe(job.raw_status)})"
    return job.status.value


async def _cmd_cancel(client: Any, endpoint_id: str, args: argparse.Namespace,
                      state: _State) -> int:
    from rpdash.core.errors import RpdashError

    worst = EXIT_OK
    for job_id in args.job_ids:
        try:
            ref = await client.cancel(endpoint_id, job_id)
        except RpdashError as exc:
            _err(state, str(exc))
            worst = max(worst, _exit_code(exc))
            continue
        if args.json:
            print(to_json(ref.raw()), flush=True)
        else:
            print(f"{safe(ref.id)} {ref.status.value}", flush=True)
    return worst


async def _cmd_retry(client: Any, endpoint_id: str, args: argparse.Namespace,
                     state: _State) -> int:
    ref = await client.retry(endpoint_id, args.job_id)
    state.job_id = ref.id
    if _follows(args):
        _note(f"job {safe(ref.id)} requeued ({ref.status.value})")
        job = await _follow(client, endpoint_id, ref.id, args)
        return _finish(job, args)
    print(to_json(ref.raw()) if args.json else f"{safe(ref.id)} {ref.status.value}", flush=True)
    return EXIT_OK


async def _cmd_health(client: Any, endpoint_id: str, args: argparse.Namespace) -> int:
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


async def _cmd_purge(client: Any, endpoint_id: str, args: argparse.Namespace) -> int:
    res = await client.purge_queue(endpoint_id)
    if args.json:
        print(to_json(res.raw()), flush=True)
    else:
        print(f"removed {res.removed} queued job(s) from endpoint {safe(endpoint_id)}", flush=True)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
