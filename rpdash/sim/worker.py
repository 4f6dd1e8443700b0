"""The mock-worker handler contract (runpod-api.md section 13) as a plan of timed steps.

A simulated worker does not run Python code for a job: :func:`plan` reads the job input
once, when a worker takes the job, and returns what the real ``runpod/mock-worker`` image
(running under runpod-python 1.12) would do and when, as a list of :class:`Step` s whose
``at`` is seconds after the job started. The engine schedules one step at a time on its
clock, so a job costs a few heap entries, never a task or a sleep, and is exact under a
fake clock.

Input keys (all under ``input``; endpoint ``defaults`` play the role of the mock worker's
``MOCK_*`` environment variables and are overridden by the input):

- ``mock_return``: the output; for generator handlers the items to yield (a string is
  iterated per character, a dict per key, a number fails like Python would).
  Defaults: ``"Hello World!"`` / ``["Hello World!"]``.
- ``mock_delay`` (seconds): standard handler sleeps once before returning (and before
  raising or crashing); generator handlers sleep before each yield.
- ``mock_progress`` ``{updates: [...], wait_time: s}``: standard handler sends each update
  as a progress update (visible as ``output`` on ``/status`` while IN_PROGRESS), sleeping
  ``wait_time`` after each, after ``mock_delay``.
- ``mock_error``: raise ``Exception("Mock error")`` after ``mock_delay`` -> FAILED. The
  ``error`` string has the shape runpod-python gives it (section 5): a JSON-encoded object
  for a standard handler, ``"handler: <message> \\ntraceback: ..."`` for a generator.
- ``mock_crash``: the worker process exits (code 1) after ``mock_delay``. What the platform
  does is [unconfirmed]; the simulator's choice is in engine.py.
- ``mock_refresh``: output becomes ``{"mock_return": value}`` and the worker restarts
  after the job (``refresh_worker`` in a returned dict does the same, as in runpod-python).
- ``mock_external.error_job_return``: the result is never delivered; the job ends by its
  execution timeout.
- ``mock_logs`` ``[{level, message}]``: log lines written at job start (``debug`` is logged
  as ``info``), kept per worker by the engine.

A standard handler returning a dict with an ``error`` key fails with that value as
``error`` and the remaining keys as ``output``; an empty dict output is omitted. A
generator item that is a dict with a truthy ``error`` stops the stream and fails the job
with ``str(error)``; that item is not sent as a chunk, and the aggregate output is lost
(runpod-python >= 1.7.7 behaviour, section 9.4).

Handlers: ``"mock"`` (standard), ``"stream"`` (generator with ``return_aggregate_stream``:
final output is the list of items), ``"llm"`` (a generator that, without ``mock_return``,
yields word tokens made up from ``prompt``, ``max_tokens`` of them).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HANDLERS = ("mock", "stream", "llm")
RUNPOD_VERSION = "1.12.0"


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: "no output" (distinct from an output of ``None``)
MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the worker does ``at`` seconds after it took the job."""

    at: float
    #: "log" | "progress" | "chunk" | "complete" | "fail" | "crash" | "hang"
    kind: str
    #: log: (level, message); progress/chunk: the value; complete/fail: the output or MISSING
    value: Any = MISSING
    error: str | None = None
    #: complete: restart the worker after this job (mock_refresh / refresh_worker)
    refresh: bool = False


# --------------------------------------------------------------------- error strings

_TB_HEAD = (
    "Traceback (most recent call last):\n"
    '  File "/usr/local/lib/python3.11/site-packages/runpod/serverless/modules/rp_job.py",'
)


def _traceback(exc_type: str, message: str, where: str, line: str) -> str:
    return (
        f"{_TB_HEAD} line 252, in run_job\n    handler_return = handler(job)\n"
        f'  File "/handler.py", line 31, in {where}\n    {line}\n'
        f"{exc_type}: {message}\n"
    )


def handler_error(exc_type: str, message: str, *, worker_id: str, line: str = "") -> str:
    """The ``error`` of a job whose standard handler raised (runpod-python ``run_job``)."""
    return json.dumps(
        {
            "error_type": f"<class '{exc_type}'>",
            "error_message": message,
            "error_traceback": _traceback(exc_type, message, "handler", line or "raise"),
            "hostname": f"{worker_id}-64410c2e" if worker_id else "unknown",
            "worker_id": worker_id or "unknown",
            "runpod_version": RUNPOD_VERSION,
        }
    )


def generator_error(exc_type: str, message: str, *, line: str = "") -> str:
    """The ``error`` of a job whose generator handler raised (``run_job_generator``)."""
    tb = _traceback(exc_type, message, "generator_handler", line or "raise")
    return f"handler: {message} \ntraceback: {tb}"


# ---------------------------------------------------------------------------- plan


class _Raise(Exception):
    """A Python exception the real handler would have raised."""

    def __init__(self, exc_type: str, message: str, line: str = "") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.message = message
        self.line = line


def _seconds(value: Any, what: str) -> float:
    """What ``time.sleep(value)`` accepts, or the exception it raises."""
    if isinstance(value, bool) or isinstance(value, int | float):
        v = float(value)
        if v != v:  # NaN
            raise _Raise("ValueError", "Invalid value NaN (not a number)", f"time.sleep({what})")
        if v < 0:
            raise _Raise("ValueError", "sleep length must be non-negative", f"time.sleep({what})")
        return v
    tname = type(value).__name__
    raise _Raise(
        "TypeError", f"'{tname}' object cannot be interpreted as an integer", f"time.sleep({what})"
    )


def _logs(inp: Mapping[str, Any]) -> list[Step]:
    raw = inp.get("mock_logs")
    out: list[Step] = []
    if not isinstance(raw, list):
        return out
    for entry in raw[:1000]:
        if isinstance(entry, dict):
            level = str(entry.get("level", "info")).lower()
            message = entry.get("message", "")
        else:
            level, message = "info", entry
        if level == "debug":
            level = "info"
        if level not in ("info", "warn", "warning", "error"):
            level = "info"
        out.append(Step(0.0, "log", (level, str(message))))
    return out


def _truthy(v: Any) -> bool:
    return bool(v)


def plan(
    job_input: Mapping[str, Any],
    *,
    handler: str = "mock",
    defaults: Mapping[str, Any] | None = None,
    job_id: str = "",
    worker_id: str = "",
) -> list[Step]:
    """What a mock worker does with ``job_input``, in time order (``at`` never decreases)."""
    inp: dict[str, Any] = {**(defaults or {}), **job_input}
    steps = _logs(inp)
    if handler == "mock":
        return steps + _standard(inp, worker_id)
    return steps + _generator(inp, handler, job_id)


def _standard(inp: dict[str, Any], worker_id: str) -> list[Step]:
    steps: list[Step] = []
    t = 0.0
    try:
        t = _seconds(inp.get("mock_delay", 0), "job_input.get('mock_delay', 0)")
        if _truthy(inp.get("mock_crash")):
            return [Step(t, "crash")]
        if _truthy(inp.get("mock_error")):
            raise _Raise("Exception", "Mock error", "raise Exception('Mock error')")
        prog = inp.get("mock_progress")
        if prog is not None:
            if not isinstance(prog, dict):
                raise _Raise(
                    "AttributeError",
                    f"'{type(prog).__name__}' object has no attribute 'get'",
                    "updates = mock_progress.get('updates', [])",
                )
            updates = prog.get("updates", [])
            wait = _seconds(prog.get("wait_time", 0), "mock_progress.get('wait_time', 0)")
            if not isinstance(updates, list):
                raise _Raise(
                    "TypeError",
                    f"'{type(updates).__name__}' object is not iterable",
                    "for update in updates:",
                )
            for update in updates:
                steps.append(Step(t, "progress", update))
                t += wait
    except _Raise as exc:
        err = handler_error(exc.exc_type, exc.message, worker_id=worker_id, line=exc.line)
        return steps + [Step(t, "fail", MISSING, err)]

    ext = inp.get("mock_external")
    if isinstance(ext, dict) and _truthy(ext.get("error_job_return")):
        return steps + [Step(t, "hang")]

    output: Any = inp.get("mock_return", "Hello World!")
    if _truthy(inp.get("mock_refresh")):
        output = {"refresh_worker": True, "mock_return": output}

    # runpod-python run_job: a dict output loses "error" and "refresh_worker" keys
    error: Any = None
    refresh = False
    if isinstance(output, dict):
        output = dict(output)
        error = output.pop("error", None)
        refresh = bool(output.pop("refresh_worker", None))
        if output == {}:
            output = MISSING
    if error:
        err_text = error if isinstance(error, str) else json.dumps(error)
        return steps + [Step(t, "fail", output, err_text, refresh)]
    return steps + [Step(t, "complete", output, None, refresh)]


_VOCAB = (
    "the model streams tokens one at a time so the reader sees the answer grow while the "
    "worker is still thinking about what comes next and each chunk arrives as soon as it "
    "is ready a queue of jobs waits for warm workers cold starts take a while GPUs hum "
    "softly in the data center latency matters throughput matters too"
).split()


def llm_tokens(prompt: str, n: int, seed: str) -> list[str]:
    """Deterministic word tokens that read a little like text (for the demo's LLM)."""
    rng = random.Random(f"{seed}:{prompt}")
    words = [w for w in prompt.lower().split() if w.isalpha()][:8] + list(_VOCAB)
    out: list[str] = []
    for i in range(n):
        w = rng.choice(words)
        if i == 0 or (out and out[-1].endswith(".")):
            w = w.capitalize()
        if rng.random() < 0.08 or i == n - 1:
            w += "."
        out.append(w if i == 0 else " " + w)
    return out


def _generator(inp: dict[str, Any], handler: str, job_id: str) -> list[Step]:
    steps: list[Step] = []
    try:
        delay = _seconds(inp.get("mock_delay", 0), "job_input.get('mock_delay', 0)")
    except _Raise as exc:
        return [Step(0.0, "fail", MISSING, generator_error(exc.exc_type, exc.message, line=exc.line))]
    if _truthy(inp.get("mock_crash")):
        return [Step(delay, "crash")]
    if _truthy(inp.get("mock_error")):
        err = generator_error("Exception", "Mock error", line="raise Exception('Mock error')")
        return [Step(delay, "fail", MISSING, err)]

    if "mock_return" in inp:
        source: Any = inp["mock_return"]
    elif handler == "llm":
        n = inp.get("max_tokens", 48)
        n = n if isinstance(n, int) and not isinstance(n, bool) else 48
        source = llm_tokens(str(inp.get("prompt", "")), max(1, min(n, 4096)), job_id)
    else:
        source = ["Hello World!"]

    if isinstance(source, str | list | tuple | dict):
        items = list(source)
    else:
        msg = f"'{type(source).__name__}' object is not iterable"
        return [Step(0.0, "fail", MISSING, generator_error("TypeError", msg, line="for output in job_output:"))]

    t = 0.0
    aggregate: list[Any] = []
    for item in items:
        t += delay
        if isinstance(item, dict) and _truthy(item.get("error")):
            return steps + [Step(t, "fail", MISSING, str(item["error"]))]
        steps.append(Step(t, "chunk", item))
        aggregate.append(item)
    steps.append(Step(t, "complete", aggregate))
    return steps
