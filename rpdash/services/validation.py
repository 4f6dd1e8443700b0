"""Checks made before anything is sent: the submit form's input, ids, policy, webhook, size.

Everything here is pure (no I/O) and raises ``InvalidInput`` with one line that says what is
wrong and where, so the submit form can show it next to the field and nothing reaches the
network. The limits are those of runpod-api.md (sections 4 and 7.2) as ``core.models`` holds
them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from rpdash.core.errors import InvalidInput
from rpdash.core.models import (
    EXECUTION_TIMEOUT_MAX_MS,
    EXECUTION_TIMEOUT_MIN_MS,
    RUN_MAX_BYTES,
    RUNSYNC_MAX_BYTES,
    TTL_MAX_MS,
    TTL_MIN_MS,
    Policy,
    RunRequest,
    is_safe_id,
)

MODES = ("run", "runsync", "stream")
WEBHOOK_MAX_LEN = 2048
#: the deepest nesting of lists and objects an input may have: deeper inputs would exhaust
#: Python's recursion limit (about 1000) somewhere between parsing, sending and storing
MAX_INPUT_DEPTH = 500


def _show(value: object, limit: int = 40) -> str:
    """A value quoted for a message, short and free of control characters."""
    text = str(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (use null or a string)")


def parse_input(value: str | dict[str, Any]) -> dict[str, Any]:
    """The job input as a dict. Text must be one JSON object; a mistake is reported with its
    line and column ("input is not valid JSON: Expecting ',' delimiter at line 3, column 5")."""
    if isinstance(value, dict):
        if nested_deeper_than(value, MAX_INPUT_DEPTH):
            raise InvalidInput(too_deep_message("input"))
        return value
    if not isinstance(value, str):
        raise InvalidInput(f"input must be a JSON object, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput('input is empty: enter a JSON object, e.g. {"prompt": "hello"}')
    try:
        data = json.loads(value, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise InvalidInput(
            f"input is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from None
    except ValueError as e:  # NaN / Infinity
        raise InvalidInput(f"input is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidInput(too_deep_message("input")) from None
    if nested_deeper_than(data, MAX_INPUT_DEPTH):
        raise InvalidInput(too_deep_message("input"))
    if not isinstance(data, dict):
        kind = {list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
            type(data), "a number"
        )
        raise InvalidInput(
            f'input must be a JSON object ({{"key": value, ...}}), got {kind}: RunPod hands '
            "the object to the worker as job['input']"
        )
    return data


def nested_deeper_than(value: Any, limit: int) -> bool:
    """True when lists and objects in ``value`` nest more than ``limit`` levels (checked
    without recursion, so any depth is safe to ask about)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children: Any = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


def too_deep_message(where: str) -> str:
    return (
        f"{where} nests lists and objects more than {MAX_INPUT_DEPTH} levels deep: "
        "rpdash cannot send it safely; flatten it"
    )


def check_endpoint_id(endpoint_id: object) -> str:
    if not isinstance(endpoint_id, str) or not endpoint_id.strip():
        raise InvalidInput("no endpoint chosen: pick an endpoint (or set RUNPOD_ENDPOINT_ID)")
    eid = endpoint_id.strip()
    if not is_safe_id(eid):
        raise InvalidInput(
            f"invalid endpoint id {_show(eid)}: use the id shown in the RunPod console "
            "(letters, digits, - _ . :)"
        )
    return eid


def check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str) or not job_id.strip():
        raise InvalidInput("no job id given")
    jid = job_id.strip()
    if not is_safe_id(jid):
        raise InvalidInput(f"invalid job id {_show(jid)}: letters, digits, - _ . : only")
    return jid


def check_mode(mode: object) -> str:
    if mode not in MODES:
        raise InvalidInput(f"unknown submit mode {_show(mode)}: use run, runsync or stream")
    return str(mode)


_POLICY_RANGES = {
    "executionTimeout": (EXECUTION_TIMEOUT_MIN_MS, EXECUTION_TIMEOUT_MAX_MS, "5 s and 7 days"),
    "ttl": (TTL_MIN_MS, TTL_MAX_MS, "10 s and 7 days"),
}


def check_policy(policy: Policy | dict[str, Any] | None) -> Policy | None:
    """A valid Policy (ranges re-checked even for a Policy built without validation)."""
    if policy is None:
        return None
    data = policy.model_dump(exclude_none=True) if isinstance(policy, Policy) else policy
    if not isinstance(data, dict):
        raise InvalidInput("policy must be an object with executionTimeout, ttl, lowPriority")
    try:
        checked = Policy.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        name = str(err["loc"][0]) if err.get("loc") else "policy"
        if name in _POLICY_RANGES:
            lo, hi, words = _POLICY_RANGES[name]
            raise InvalidInput(
                f"policy.{name} must be between {words} ({lo}–{hi} ms), got "
                f"{_show(data.get(name))}"
            ) from None
        if err.get("type") == "extra_forbidden":
            raise InvalidInput(
                f"unknown policy field {_show(name)}: use executionTimeout, ttl, lowPriority"
            ) from None
        raise InvalidInput(f"policy.{name}: {err.get('msg', 'invalid')}") from None
    return checked if checked.body() else None


def check_webhook(url: str | None) -> str | None:
    """An absolute http(s) URL, or None."""
    if url is None:
        return None
    if not isinstance(url, str):
        raise InvalidInput("webhook must be a URL string")
    u = url.strip()
    if not u:
        return None
    if len(u) > WEBHOOK_MAX_LEN:
        raise InvalidInput(f"webhook URL is longer than {WEBHOOK_MAX_LEN} characters")
    if any(c.isspace() or not c.isprintable() for c in u):
        raise InvalidInput(f"webhook URL {_show(u)} contains spaces or control characters")
    try:
        parts = urlsplit(u)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInput(f"webhook URL {_show(u)} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"webhook must be an http(s) URL such as https://example.com/hook, got {_show(u)}"
        )
    return u


def body_size(request: RunRequest) -> int:
    """Bytes of the request body as the client sends it (compact UTF-8 JSON)."""
    try:
        data = json.dumps(
            request.body(), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"the input cannot be sent as JSON: {e}") from None
    return len(data.encode("utf-8"))


def build_request(
    input: str | dict[str, Any],
    *,
    mode: str = "run",
    policy: Policy | dict[str, Any] | None = None,
    webhook: str | None = None,
) -> RunRequest:
    """Everything checked, the request to send. Raises ``InvalidInput``."""
    mode = check_mode(mode)
    data = parse_input(input)
    pol = check_policy(policy)
    hook = check_webhook(webhook)
    try:
        req = RunRequest(input=data, policy=pol, webhook=hook)
    except ValidationError as e:
        raise InvalidInput(f"invalid request: {e.errors(include_url=False)[0]['msg']}") from None
    limit = RUNSYNC_MAX_BYTES if mode == "runsync" else RUN_MAX_BYTES
    size = body_size(req)
    if size > limit:
        path = "/runsync" if mode == "runsync" else "/run"
        fits_runsync = mode != "runsync" and size <= RUNSYNC_MAX_BYTES
        hint = " (runsync takes up to 20 MB)" if fits_runsync else ""
        raise InvalidInput(
            f"input is {size / 1e6:.1f} MB; {path} accepts at most {limit / 1e6:g} MB{hint}: "
            "pass large data by URL (e.g. S3) instead"
        )
    return req
