"""Job commands: ``rpdash run``, ``status``, ``cancel``, ``retry``.

A job id is announced on stderr and committed to the history the moment it is known, before
anything else can go wrong, so it is never lost (see ``rpdash.cli`` for the contract).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rpdash.cli.history import CliHistory
from rpdash.cli.output import (
    err,
    job_lines,
    note,
    render_output,
    safe,
    short_error,
    times,
    to_json,
)
from rpdash.cli.state import EXIT_API, EXIT_JOB, EXIT_OK, State, exit_code


def follows(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "follow", False) or getattr(args, "wait", None))


def follows_job(args: argparse.Namespace) -> bool:
    """The command waits for a job to end (``run --sync/--stream``, ``--follow``, ``--wait``)."""
    if args.command == "run":
        return bool(args.sync or args.stream or follows(args))
    return args.command in ("status", "retry") and follows(args)


def _got_id(state: State, job_id: str, endpoint_id: str, *, announce: bool) -> None:
    state.job_id = job_id
    if announce:
        note(f"job {safe(job_id)} submitted to endpoint {safe(endpoint_id)}")


def _fits_run(request: Any) -> bool:
    from rpdash.core.models import RUN_MAX_BYTES
    from rpdash.services.validation import body_size

    return body_size(request) <= RUN_MAX_BYTES


async def cmd_run(client: Any, endpoint_id: str, request: Any, args: argparse.Namespace,
                  state: State) -> int:
    """Submit with ``/run``: the id is known (printed on stderr when following, committed to
    the history) before anything else can go wrong. ``--sync`` then waits with ``/status``
    long-polls, so Ctrl-C or a kill never loses the id, and RunPod keeps the result 30 min
    (a ``/runsync`` answer carries the id only with the result and is kept 1 min). Only an
    input too big for ``/run`` (10-20 MB) goes through ``/runsync``."""
    history = _history(state)
    if args.sync and not _fits_run(request):
        return await _runsync(client, endpoint_id, request, args, state, history)
    ref = await client.run(endpoint_id, request)
    mode = "runsync" if args.sync else "stream" if args.stream else "run"
    # the id is announced (when following) and committed to the history before anything else
    _got_id(state, ref.id, endpoint_id, announce=follows_job(args))
    history.submitted(ref.id, endpoint_id, mode, request)
    if args.stream:
        return await _stream(client, endpoint_id, ref.id, args, state, history)
    if follows_job(args):
        job = await _follow(client, endpoint_id, ref.id, args)
        history.job(job, endpoint_id, mode)
        return finish(job, args)
    print(to_json(ref.raw()) if args.json else safe(ref.id), flush=True)
    return EXIT_OK


async def _runsync(client: Any, endpoint_id: str, request: Any, args: argparse.Namespace,
                   state: State, history: Any) -> int:
    """``/runsync`` for an input over /run's 10 MB: its id arrives with the answer only."""
    note("the input is over /run's 10 MB: sending it with /runsync, whose answer brings the "
         "job id (up to 90 s); an interrupt before then loses it")

    def on_job_id(jid: str) -> None:
        _got_id(state, jid, endpoint_id, announce=True)
        history.submitted(jid, endpoint_id, "runsync", request, sent_with="/runsync")

    job = await client.runsync(
        endpoint_id, request, wait_ms=args.wait, timeout=args.timeout, on_job_id=on_job_id,
    )
    history.job(job, endpoint_id, "runsync")
    return finish(job, args)


async def _follow(client: Any, endpoint_id: str, job_id: str, args: argparse.Namespace) -> Any:
    """Long-poll /status-sync until the job ends or --timeout passes (Timeout, exit 1)."""
    return await client.follow(endpoint_id, job_id, timeout=args.timeout, wait_ms=args.wait)


async def _stream(client: Any, endpoint_id: str, job_id: str, args: argparse.Namespace,
                  state: State, history: Any = None) -> int:
    from rpdash.api.protocol import StreamEnd
    from rpdash.core.errors import RpdashError

    out = sys.stdout
    resumes = 0
    most = state.stream_resumes
    while True:
        try:
            async for item in client.stream(endpoint_id, job_id, wait_ms=args.wait):
                if isinstance(item, StreamEnd):
                    if history is not None:
                        history.job(item.job, endpoint_id, "stream")
                    return finish(item.job, args, print_output=False)
                resumes = 0  # data flows again
                if history is not None:
                    history.chunk(job_id, item.output)
                if args.json:
                    out.write(to_json(item.raw()) + "\n")
                else:
                    out.write(render_output(item.output) + "\n")
                out.flush()
        except RpdashError as exc:
            # The client already retried this read. /stream drains only what it delivered,
            # so reading again resumes right after the last chunk printed: none twice,
            # none missing.
            if not exc.transient or resumes >= most:
                raise
            resumes += 1
            note(f"stream dropped ({safe(str(exc))}); resuming ({resumes} of {most})")
            continue
        return EXIT_API  # pragma: no cover (the stream always ends with StreamEnd)


def finish(job: Any, args: argparse.Namespace, *, print_output: bool = True) -> int:
    """Print a finished job: its output on stdout (or its JSON), the outcome on stderr."""
    from rpdash.core.models import JobStatus

    ok = job.status is JobStatus.COMPLETED
    if args.json:
        print(to_json(job.raw()), flush=True)
    elif print_output and ok and job.output is not None:
        print(render_output(job.output), flush=True)
    took = times(job)
    if ok:
        note(f"job {safe(job.id)} COMPLETED{took}")
        return EXIT_OK
    error = job.error_text
    detail = f": {safe(short_error(error))}" if error else ""
    print(f"rpdash: job {safe(job.id)} {job.status.value}{took}{detail}", file=sys.stderr,
          flush=True)
    return EXIT_JOB


async def cmd_status(client: Any, endpoint_id: str, args: argparse.Namespace,
                     state: State) -> int:
    """A job's status; exit 1 when it ended FAILED, CANCELLED or TIMED_OUT (as ``run``)."""
    state.job_id = args.job_id
    if follows(args):
        job = await _follow(client, endpoint_id, args.job_id, args)
    else:
        job = await client.status(endpoint_id, args.job_id)
    if job.id == args.job_id:  # (an answer about another id is shown, not recorded)
        _history(state).job(job, endpoint_id)
    if args.json:
        print(to_json(job.raw()), flush=True)
    else:
        print("\n".join(job_lines(job)), flush=True)
    return _outcome(job)


def _outcome(job: Any) -> int:
    """Exit code of a job as far as it got: 1 once it ended other than COMPLETED."""
    from rpdash.core.models import JobStatus

    return EXIT_JOB if job.terminal and job.status is not JobStatus.COMPLETED else EXIT_OK


def _history(state: State) -> Any:
    return state.history or CliHistory(None, state)


async def cmd_cancel(client: Any, endpoint_id: str, args: argparse.Namespace,
                     state: State) -> int:
    from rpdash.core.errors import RpdashError

    worst = EXIT_OK
    for job_id in args.job_ids:
        try:
            ref = await client.cancel(endpoint_id, job_id)
        except RpdashError as exc:
            err(state, str(exc))
            worst = max(worst, exit_code(exc))
            continue
        _history(state).answered(ref, endpoint_id)
        if args.json:
            print(to_json(ref.raw()), flush=True)
        else:
            print(f"{safe(ref.id)} {ref.status.value}", flush=True)
    return worst


async def cmd_retry(client: Any, endpoint_id: str, args: argparse.Namespace,
                    state: State) -> int:
    ref = await client.retry(endpoint_id, args.job_id)
    state.job_id = ref.id
    _history(state).answered(ref, endpoint_id, retried=True)
    if follows(args):
        note(f"job {safe(ref.id)} requeued ({ref.status.value})")
        job = await _follow(client, endpoint_id, ref.id, args)
        _history(state).job(job, endpoint_id)
        return finish(job, args)
    print(to_json(ref.raw()) if args.json else f"{safe(ref.id)} {ref.status.value}", flush=True)
    return EXIT_OK
