"""``rpdash watch``: the dashboard's alert rules without a screen, for a terminal, a script
or a monitoring system.

    rpdash watch [--endpoint ID ...] [--interval S] [--prometheus [HOST:]PORT] [--json]
    rpdash watch --once [--endpoint ID ...] [--json]

Without ``--endpoint`` every endpoint of the settings is watched (``RUNPOD_ENDPOINT_ID`` and
``[endpoints]``). Each cycle polls ``/health`` (the control plane's worker list too, when it
answers) and runs the same verdicts and alert rules (``[alerts]``) as the dashboard
(:mod:`rpdash.services.watch`).

Continuous: one line per change on stdout, ``TIME FIRED|RECOVERED SEVERITY LABEL: TEXT
[rule]`` or ``TIME VERDICT SEVERITY LABEL: TEXT`` (``--json``: one object per line), until
Ctrl-C (exit 0). Fired and recovered alerts (the alert history) and every good answer (a
health sample) go to the job history's file, as the dashboard does. ``--prometheus`` serves
the exporter (:mod:`rpdash.services.prometheus`) on a loopback address meanwhile.

``--once``: one poll, judged at once with every hold time ignored (a condition seen once
counts: a check run every minute by Nagios/Icinga has no earlier poll to hold against), one
summary line (``CRITICAL - llm-chat: crash-looping (3 unhealthy, 0 running); whisper: ok``)
and the plugin convention's exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (RunPod did
not answer, or the configuration is wrong; a rejected key or an unknown endpoint is
CRITICAL). Worst wins, in the order OK < WARNING < UNKNOWN < CRITICAL. ``--once`` writes no alert history (nothing would ever
recover there).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rpdash.cli.output import err, note, safe, to_json
from rpdash.cli.state import EXIT_OK, State

#: Nagios/Icinga plugin states: exit code, and rank (worst wins)
STATUS_CODES = {"OK": 0, "WARNING": 1, "CRITICAL": 2, "UNKNOWN": 3}
_RANK = {"OK": 0, "WARNING": 1, "UNKNOWN": 2, "CRITICAL": 3}
_BY_SEVERITY = {"ok": "OK", "info": "OK", "warn": "WARNING", "critical": "CRITICAL"}
#: alert rules the verdict's own text already tells (not repeated in the summary)
_TOLD_BY = {"unhealthy": {"crash_loop", "bad_release"}, "key_rejected": {"key_rejected"},
            "no_answer": {"no_answer"}}  # fmt: skip


def add_subcommand(subparsers: Any) -> None:
    """Add ``watch`` to the parser's subcommands."""
    w = subparsers.add_parser(
        "watch", help="alert on endpoints from the command line (or as a Nagios/Icinga check)",
        description="Poll endpoints and apply the dashboard's alert rules: print a line per "
        "change until Ctrl-C, or with --once one summary line and exit 0 OK, 1 WARNING, "
        "2 CRITICAL, 3 UNKNOWN.",
    )  # fmt: skip
    w.add_argument("--endpoint", dest="watch_endpoints", action="append", metavar="ID",
                   help="endpoint name (from the config file) or id; repeatable "
                        "(default: every configured one)")  # fmt: skip
    w.add_argument("--once", action="store_true", help="check once (hold times ignored), print a summary, exit 0-3")
    w.add_argument("--interval", type=float, metavar="S",
                   help="seconds between polls (default health_interval, at least 1)")  # fmt: skip
    w.add_argument("--prometheus", metavar="[HOST:]PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT (loopback only) while watching")  # fmt: skip
    w.add_argument("--json", action="store_true", help="JSON lines (ASCII)")
    w.add_argument("--base-url", metavar="URL", help="API base URL (default RunPod's)")
    w.add_argument("--control-url", metavar="URL", help="control-plane origin (default derived from the base URL)")
    w.add_argument("--allow-insecure-http", action="store_true",
                   help="allow sending the key over plain http to a non-loopback host")  # fmt: skip
    w.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file (TOML) to read")


def run_watch(args: argparse.Namespace, state: State, load_settings: Callable[[argparse.Namespace], Any]) -> int:
    """``rpdash watch`` from the dispatcher. With ``--once`` a configuration error exits 3
    (UNKNOWN: a monitoring system must not read it as CRITICAL), not the usual 2."""
    from rpdash.core.errors import RpdashError

    try:
        return cmd_watch(args, load_settings(args), state)
    except RpdashError as exc:
        if not args.once:
            raise
        err(state, str(exc))
        return STATUS_CODES["UNKNOWN"]


def cmd_watch(args: argparse.Namespace, settings: Any, state: State, *, clock: Any = None,
              stop: Callable[[Any], bool] | None = None) -> int:  # fmt: skip
    """Run ``rpdash watch``. ``clock``: what the loop waits on (tests pass one that does not
    really wait); ``stop(watcher)``: checked after each cycle (tests end a watch with it)."""
    import asyncio

    from rpdash.config.names import HEALTH_INTERVAL_FLOOR
    from rpdash.core.errors import ConfigError

    secret = settings.api_key.get_secret_value() if settings.api_key is not None else ""
    state.secret = secret or None
    names = args.watch_endpoints or getattr(args, "endpoints", None)
    endpoint_ids = [settings.resolve_endpoint(n) for n in names] if names else settings.watched_endpoints()
    if not endpoint_ids:
        raise ConfigError("no endpoint: pass --endpoint ID or set RUNPOD_ENDPOINT_ID")
    if not secret and not settings.own_keys(endpoint_ids):
        raise ConfigError("no API key: set RUNPOD_API_KEY (or put it in a .env file)")
    interval = args.interval if args.interval is not None else settings.health_interval
    if not HEALTH_INTERVAL_FLOOR <= interval < float("inf"):
        raise ConfigError(f"--interval must be at least {HEALTH_INTERVAL_FLOOR:g} s")
    if args.once and args.prometheus:
        raise ConfigError("--prometheus serves while watching; it does not go with --once")
    exporter_at = _listen_address(args.prometheus) if args.prometheus else None
    try:
        return asyncio.run(_watch(args, settings, state, endpoint_ids, interval, exporter_at, clock, stop))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how a watch ends


def _listen_address(text: str) -> tuple[str, int]:
    from rpdash.core.errors import InvalidInput
    from rpdash.services.prometheus import loopback_host

    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise InvalidInput(f"--prometheus takes a port or HOST:PORT, not {text[:40]!r}") from None
    return loopback_host(host or "127.0.0.1"), number


async def _watch(args: argparse.Namespace, settings: Any, state: State, endpoint_ids: list[str], interval: float,
                 exporter_at: tuple[str, int] | None, clock: Any, stop: Any) -> int:  # fmt: skip
    import contextlib

    from rpdash.services.incidents import Incidents
    from rpdash.services.watch import Watcher, immediate_rules

    rules = immediate_rules(settings.alerts) if args.once else settings.alerts
    history = _History(settings, state, create=not args.once)
    incidents = Incidents(rules, clock, outlets=[] if args.once else [history.record_alert])
    names = {ep: n for ep in endpoint_ids if (n := settings.endpoint_name(ep))}
    exporter = None
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(_client(args, settings, state, endpoint_ids))
        control = await _control(args, settings, state, stack)
        say = None if args.once else lambda m: note(safe(state.scrub(m)))  # --once: the summary only
        watcher = Watcher(client, endpoint_ids, incidents, clock=incidents.clock, names=names, control=control,
                          jobs=history.finished_jobs, note=say,
                          on_health=None if args.once else history.record_health,
                          account_cap=settings.account_worker_cap)  # fmt: skip
        try:
            if args.once:
                await watcher.poll()
                return _summary(watcher, args.json)
            if exporter_at is not None:
                from rpdash.services.prometheus import Exporter

                exporter = Exporter(incidents.board, host=exporter_at[0], port=exporter_at[1]).start()
                note(f"serving Prometheus metrics at {exporter.url}")
            await watcher.run(lambda changes: _print_changes(changes, args.json), interval, stop)
        finally:
            if exporter is not None:
                exporter.stop()
            history.close()
    return EXIT_OK


def _client(args: argparse.Namespace, settings: Any, state: State, endpoint_ids: list[str]) -> Any:
    from rpdash.api.client import RunPodClient
    from rpdash.api.keyed import KeyedClient

    base = args.base_url or settings.base_url
    insecure = bool(args.allow_insecure_http or settings.allow_insecure_http)

    def make(key: Any) -> RunPodClient:
        # watching, the next cycle is the retry; a check gets one more try before UNKNOWN
        return RunPodClient(key, base, timeout=settings.request_timeout, allow_insecure_http=insecure,
                            max_retries=1 if args.once else 0, clock=state.clock)  # fmt: skip

    default = make(settings.api_key)
    own = {ep: make(key) for ep, key in settings.own_keys(endpoint_ids).items()}
    return KeyedClient(default, own) if own else default


async def _control(args: argparse.Namespace, settings: Any, state: State, stack: Any) -> Any:
    """The control-plane client (None without a default key: the worker list is optional)."""
    from rpdash.cli.ops import _Ctx
    from rpdash.core.errors import RpdashError

    if settings.api_key is None:
        return None
    try:
        return await stack.enter_async_context(_Ctx(args, settings, state.secret or "").control())
    except RpdashError as exc:  # e.g. a control URL that is not allowed: watch from /health
        note(f"control plane unavailable, judging from /health only ({safe(state.scrub(str(exc)))})")
        return None


class _History:
    """The job history file: recent finished jobs (job metrics) in, alerts and health samples
    out, as the dashboard does. Never fails a watch: a file that cannot be opened or written
    is one warning line, then left alone."""

    def __init__(self, settings: Any, state: State, *, create: bool) -> None:
        from pathlib import Path

        self._state = state
        self._store: Any = None
        self._alerts: Any = None
        self._samples: Any = None
        self._warned = False
        path = Path(settings.history_file())
        if not create and not path.exists():
            return
        try:
            from rpdash.store.alerts import AlertStore
            from rpdash.store.history import HistoryStore
            from rpdash.store.metrics_store import MetricsStore

            self._store = HistoryStore(path)
            if create and not self._store.writable:
                raise self._store.problem or OSError("the history is read-only")
            self._alerts, self._samples = AlertStore(self._store), MetricsStore(self._store)
        except Exception as exc:  # noqa: BLE001 - a watch works without its history
            self._give_up(exc)

    def _give_up(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            note(f"warning: {safe(self._state.scrub(str(exc) or type(exc).__name__))}; "
                 "alerts and health samples are not recorded in the history")  # fmt: skip
        self._alerts = self._samples = None

    def record_alert(self, event: Any) -> None:
        if self._alerts is not None:
            try:
                self._alerts.record(event)
            except Exception as exc:  # noqa: BLE001
                self._give_up(exc)

    def record_health(self, endpoint_id: str, health: Any, at: float) -> None:
        if self._samples is not None:
            try:
                self._samples.record_health(endpoint_id, health, at=at)
            except Exception as exc:  # noqa: BLE001
                self._give_up(exc)

    def finished_jobs(self, endpoint_id: str) -> list[Any]:
        if self._store is None:
            return []
        return [j for j in self._store.recent(2000, endpoint_id, with_output=False) if j.status.terminal]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


# ---------------------------------------------------------------------------- output


def _stamp(at: float) -> str:
    return datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")


def _print_changes(changes: list[Any], as_json: bool) -> None:
    for c in changes:
        if as_json:
            doc = {"time": _stamp(c.at), "at": c.at, "event": c.kind, "endpoint_id": c.endpoint_id,
                   "name": c.label, "severity": c.severity, "message": c.message, "rule": c.rule}  # fmt: skip
            if c.verdict is not None:
                doc["verdict"] = c.verdict.to_dict()
            print(to_json(doc), flush=True)
        elif c.kind == "verdict":
            was = f" (was: {safe(c.previous.short_text)})" if c.previous is not None else ""
            print(f"{_stamp(c.at)} VERDICT {c.severity.upper()} {safe(c.label)}: {safe(c.message)}{was}", flush=True)
        else:
            print(f"{_stamp(c.at)} {c.kind.upper()} {c.severity.upper()} {safe(c.message)} [{c.rule}]", flush=True)


def endpoint_status(watcher: Any, endpoint_id: str) -> tuple[str, str]:
    """(plugin status, text) of one endpoint after a poll with hold times ignored."""
    st = watcher.endpoints[endpoint_id]
    if not st.answered:
        if st.state == "rate limited":
            return "UNKNOWN", "rate limited, no numbers yet"
        return "UNKNOWN", f"no answer ({st.reason or st.state})"
    incidents = watcher.incidents
    verdict = incidents.verdict(endpoint_id)
    kind = verdict.kind if verdict is not None else "unknown"
    alerts = incidents.engine.active(endpoint_id)
    status = max((_BY_SEVERITY.get(a.severity, "OK") for a in alerts), key=_RANK.__getitem__, default="OK")
    texts = [verdict.short_text] if verdict is not None and (verdict.kind != "ok" or not alerts) else []
    for a in alerts:
        if a.rule != "verdict" and kind not in _TOLD_BY.get(a.rule, ()):
            texts.append(a.message.split(": ", 1)[-1].replace(" for 0 s)", ")"))
    return status, ", ".join(dict.fromkeys(texts)) or "ok"


def _summary(watcher: Any, as_json: bool) -> int:
    rows = []
    for ep, st in watcher.endpoints.items():
        status, text = endpoint_status(watcher, ep)
        rows.append((ep, st, status, text))
    worst = max((r[2] for r in rows), key=_RANK.__getitem__, default="UNKNOWN")
    line = f"{worst} - " + "; ".join(f"{safe(st.label)}: {safe(text)}" for _, st, _, text in rows)
    if as_json:
        v = watcher.incidents.verdict
        print(to_json({"status": worst, "exit_code": STATUS_CODES[worst], "summary": line, "endpoints": [
            {"endpoint_id": ep, "name": st.label, "status": status, "text": text,
             "verdict": v(ep).to_dict() if v(ep) is not None else None,
             "health": st.health.raw() if st.health is not None else None,
             "alerts": [{"rule": a.rule, "severity": a.severity, "message": a.message}
                        for a in watcher.incidents.engine.active(ep)]}
            for ep, st, status, text in rows]}), flush=True)  # fmt: skip
    else:
        print(line, flush=True)
    return STATUS_CODES[worst]
