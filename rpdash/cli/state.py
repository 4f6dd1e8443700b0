"""Exit codes of the command line, and what a command must not lose when it ends badly.

The exit codes are part of the output contract (see ``rpdash.cli``): scripts branch on them.
``State`` travels through a command: the job id and endpoint once known (printed on Ctrl-C
or after an error, so the user can follow the job), the key to scrub from any message, and
the knobs a test may turn (the clock the client waits on, how often it retries).
"""

from __future__ import annotations

from typing import Any

from rpdash.core.redact import redact

EXIT_OK = 0
EXIT_JOB = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_INTERRUPTED = 130


class State:
    """What the user must not lose if anything goes wrong: the job id, and the key to scrub."""

    def __init__(self, *, clock: Any = None, max_retries: int = 2,
                 stream_resumes: int = 3) -> None:  # fmt: skip
        self.job_id: str | None = None
        self.endpoint_id: str | None = None
        self.secret: str | None = None
        self.history: Any = None  # CliHistory of a command that submits jobs
        self.clock = clock
        self.max_retries = max_retries
        self.stream_resumes = stream_resumes

    def scrub(self, text: str) -> str:
        return redact(text, self.secret)


def exit_code(exc: BaseException) -> int:
    """The documented exit code for an rpdash error."""
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
