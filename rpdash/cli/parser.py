"""The command line's arguments: the dashboard's options and every subcommand.

Only argparse is imported here, so ``rpdash --help`` stays fast; the control-plane
commands add their own subparsers (``rpdash.cli.ops.add_subcommands``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rpdash.cli.deadline import add_timeout_argument, positive_float


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
    p.add_argument("--scenario", metavar="NAME", default=None,
                   help="with --demo: the simulator's scenario, e.g. an incident drill such as "
                        "crashloop (list: rpdash sim --list-scenarios; default demo)")
    p.add_argument("--pickup", metavar="ORDER", default=None,
                   help="with --demo: how workers take queued jobs: fifo, batch or random")
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
    add_timeout_argument(common)

    follow = argparse.ArgumentParser(add_help=False)
    follow.add_argument(
        "--follow", action="store_true", help="keep following the job until it ends"
    )
    follow.add_argument(
        "--wait", type=_positive_int, metavar="MS",
        help="long-poll hold per request in ms (1000-300000); implies --follow",
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
    mode.add_argument("--sync", action="store_true", help="wait for the result (submitted with /run: the job id is "
                      "printed and saved at once, and RunPod keeps the result 30 min)")
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

    from rpdash.cli import scale

    scale.add_subcommands(sub, common)  # scale, drain, restore

    sm = sub.add_parser("sim", help="run the local RunPod simulator")
    sm.add_argument("--host", default="127.0.0.1")
    sm.add_argument("--port", type=int, default=8000)
    sm.add_argument("--api-key", default="sim-key", metavar="KEY",
                    help="key clients must send (default sim-key)")
    sm.add_argument("--scenario", default="default", metavar="NAME",
                    help="a named world or incident drill (listed below; default: default)")
    sm.add_argument("--pickup", metavar="ORDER", default=None,
                    help="how workers take queued jobs: fifo, batch or random "
                         "(default: each scenario's own, fifo); RunPod does not promise FIFO")
    sm.add_argument("--list-scenarios", action="store_true",
                    help="print the scenarios with one line each and exit")
    sm.format_help = _with_scenarios(sm.format_help)  # type: ignore[method-assign]
    sm.add_argument("--seed", type=int, default=None, metavar="N",
                    help="seed for job ids, worker ids and faults (default: random; repeatable runs with a fixed seed)")
    sm.add_argument("--time-scale", type=positive_float, default=1.0, metavar="X")

    from rpdash.cli import ops, watch

    ops.add_subcommands(sub, common)
    watch.add_subcommand(sub)
    return p


def _with_scenarios(format_help: Callable[[], str]) -> Callable[[], str]:
    """``rpdash sim --help`` ends with the scenario list, imported only when help is shown
    (the simulator's modules are too heavy for every ``rpdash`` start)."""

    def formatted() -> str:
        from rpdash.sim.scenarios import scenario_catalog

        return format_help() + "\nscenarios:\n" + scenario_lines(scenario_catalog()) + "\n"

    return formatted


def scenario_lines(catalog: list[tuple[str, str]]) -> str:
    width = max((len(name) for name, _ in catalog), default=0)
    return "\n".join(f"  {name.ljust(width)}  {text}" for name, text in catalog)


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
