"""The overall deadline of a headless command (``--timeout SECONDS``).

A server that accepts the connection and never answers must not hold a person for minutes
(each request may wait ``request_timeout``, 30 s, and reads are tried three times). So a
command that only reads stops after ``READ_TIMEOUT_S`` unless ``--timeout`` says otherwise,
and says that this deadline is what ran out. Commands that follow a job (``--sync``,
``--stream``, ``--follow``, ``--wait``, ``logs --follow``) and commands that change
something have no default: they wait for as long as the job or the answer takes, and
``--timeout`` bounds them when given.

When the deadline runs out while a job is followed, the job did not finish in time (exit 1,
its id and how to follow it are printed); otherwise RunPod did not answer in time (exit 3).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

#: default overall deadline of a command that only reads (seconds)
READ_TIMEOUT_S = 30.0
#: a followed job's own deadline is checked by the client; the overall one leaves it this
#: much more (seconds), so the client's report (with the job's last status) comes first
FOLLOW_GRACE_S = 1.0


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return v


def add_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=positive_float, metavar="S",
        help=f"give up after S seconds: a followed job keeps running (exit 1), any other "
        f"command stops waiting for RunPod (exit 3); default {READ_TIMEOUT_S:g} s for "
        "commands that only read, no limit while following a job or changing something",
    )  # fmt: skip


def seconds_for(args: argparse.Namespace, *, reads_only: bool) -> float | None:
    """The command's overall deadline: ``--timeout``, else the default for reads."""
    given = getattr(args, "timeout", None)
    if given is not None:
        return float(given)
    return READ_TIMEOUT_S if reads_only else None


async def within(
    work: Awaitable[T], seconds: float | None, *, what: str, where: str,
    job: Any = None, may_have_changed: bool = False, default: bool = False,
    grace: float = 0.0,
) -> T:
    """Await ``work``; when ``seconds`` pass first, stop it and raise ``Timeout`` saying that
    the overall deadline (``--timeout``) ran out and what was waited for.

    ``job`` is ``(job_id, endpoint_id)`` once a followed job is known (or a callable giving
    that or None): the error then says the job did not finish and exits 1. ``default``
    says the deadline is the default for reads (not a --timeout the user gave); ``grace``
    is waited on top of ``seconds`` (the message names ``seconds``)."""
    import asyncio

    from rpdash.core.errors import Timeout

    if seconds is None:
        return await work
    try:
        async with asyncio.timeout(seconds + grace) as cm:
            return await work
    except TimeoutError:
        if not cm.expired():
            raise
    known = job() if callable(job) else job
    if known is not None:
        job_id, endpoint_id = known
        err = Timeout(
            f"job {job_id} on endpoint {endpoint_id} did not finish within --timeout "
            f"{seconds:g} s; it may still be running: rpdash status {job_id} --endpoint "
            f"{endpoint_id} --follow"
        )
        err.job_id = job_id  # type: ignore[attr-defined]
        err.still_running = True  # type: ignore[attr-defined]
        raise err
    message = (
        f"`{what}` ran out of time: no answer from {where} within --timeout {seconds:g} s "
        "(the overall deadline of the command"
        + (", the default for reads" if default else "")
        + "; pass --timeout to wait longer)"
    )
    if may_have_changed:
        message += (
            "; RunPod may have received the request: check before repeating it"
        )
    raise Timeout(message)
