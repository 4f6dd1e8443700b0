"""``rpdash run``'s request, checked before anything is sent: the input object (JSON text,
``@file`` or ``@-`` for stdin), the policy and the webhook. Mistakes raise ``InvalidInput``
(exit 2) naming the option."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from rpdash.cli.output import safe


def read_input(spec: str) -> dict[str, Any]:
    from rpdash.core.errors import InvalidInput
    from rpdash.services.validation import MAX_INPUT_DEPTH, nested_deeper_than, too_deep_message

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
    except RecursionError:
        raise InvalidInput(too_deep_message(safe(where))) from None
    if nested_deeper_than(data, MAX_INPUT_DEPTH):
        raise InvalidInput(too_deep_message(safe(where)))
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{safe(where)} must be a JSON object (it becomes the job's \"input\"), "
            f"not {type(data).__name__}"
        )
    return data


def build_request(args: argparse.Namespace) -> Any:
    from rpdash.core.errors import InvalidInput
    from rpdash.core.models import (
        EXECUTION_TIMEOUT_MAX_MS,
        EXECUTION_TIMEOUT_MIN_MS,
        TTL_MAX_MS,
        TTL_MIN_MS,
        Policy,
        RunRequest,
    )

    data = read_input(args.input)
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
