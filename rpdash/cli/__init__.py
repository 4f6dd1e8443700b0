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
  (``rpdash: job ID submitted to endpoint EP``), so it is never lost, even on Ctrl-C;
  ``run --sync`` submits with ``/run`` for that reason and waits with ``/status-sync``.
- exit codes: 0 success; 1 the job FAILED, was CANCELLED, TIMED_OUT (``run`` and ``status``
  alike) or did not finish within ``--timeout``; 2 usage or configuration error (nothing
  was sent); 3 API error (key rejected, not found, rate limited, server error, unreachable,
  bad response, no answer within ``--timeout``); 130 Ctrl-C.
- ``--timeout S`` is every headless command's overall deadline: 30 s by default for commands
  that only read, none while following a job or changing something (``rpdash.cli.deadline``).
- errors are one line, ``rpdash: error: ...``, never a traceback and never the API key.
- whatever came from the server is printed with control characters and escape sequences
  neutralised (``\\x1b`` is shown as text); ``--json`` output is ASCII-only JSON.

Start-up is kept light: the package imports only the standard library at import time;
httpx, pydantic and the settings are imported when a command needs them, Textual only when
the dashboard starts.

Modules: ``app`` (parsing and dispatch, exit codes), ``parser`` (arguments), ``jobs`` (run,
status, cancel, retry), ``request`` (the input and policy of ``run``), ``endpoint`` (health,
purge), ``ops`` and ``metrics`` (control-plane and history commands: endpoints, workers,
logs, metrics, diagnose), ``history`` (what the CLI records), ``output`` (what it prints),
``state`` (exit codes, what is never lost), ``deadline`` (``--timeout``).
"""

from __future__ import annotations

from typing import Any

from rpdash.cli.state import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_JOB,
    EXIT_OK,
    EXIT_USAGE,
    State,
)

__all__ = ["EXIT_API", "EXIT_INTERRUPTED", "EXIT_JOB", "EXIT_OK", "EXIT_USAGE", "main"]

#: A person is waiting: retry transient failures twice (about 2 s), not four times (8 s).
CLI_MAX_RETRIES = 2
#: How often ``run --stream`` reads again after the client gave up on a transient failure
#: (counted from the last chunk that arrived).
STREAM_RESUMES = 3
#: The clock the headless commands' client waits on (None: real time). Tests inject a fake
#: one so that backoffs and Retry-After waits take no real time.
CLOCK: Any = None


def main(argv: list[str] | None = None) -> int:
    """Entry point (``rpdash = rpdash.cli:main``). Returns the exit code."""
    from rpdash.cli.app import main as run

    state = State(clock=CLOCK, max_retries=CLI_MAX_RETRIES, stream_resumes=STREAM_RESUMES)
    return run(argv, state)
