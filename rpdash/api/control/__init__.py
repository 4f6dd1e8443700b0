"""Client for RunPod's control plane: the endpoint list, workers and live worker logs.

RunPod keeps these apart from the job data plane: REST v2 at ``https://api.runpod.io/v2``
(``/serverless``, ``/serverless/{id}``, ``/serverless/{id}/workers``, and the log tail
``/serverless/{id}/workers/{workerId}/logs`` as Server-Sent Events) and GraphQL at
``https://api.runpod.io/graphql`` (``myself { endpoints }``). ``ControlClient`` takes the
*origin* (``https://api.runpod.io``, or a simulator's ``http://127.0.0.1:PORT``) and derives
both; :func:`control_url_for` gives the origin that goes with a data-plane base URL.

The package, one concept a module:

- ``connection``: the key rules, JSON requests with retries, error answers;
- ``models``: endpoints and workers as listed;
- ``listing``: the endpoint list (REST v2, GraphQL as the fallback) and the worker list;
- ``loglines``: one log line (level, message, job id), filters, ``since``, time order;
- ``sse``: the text/event-stream parser;
- ``tail``: one worker's resumable tail and the endpoint-wide merge;
- ``scaling``: changing an endpoint's min/max workers, idle timeout and scaler;
- ``account_cap``: the account's worker cap (configured, or learned from a refusal);
- ``client``: ``ControlClient``, the facade over all of them.
"""

from __future__ import annotations

from rpdash.api.control.account_cap import AccountCap, WorkerCapRefused, cap_in
from rpdash.api.control.client import ControlClient
from rpdash.api.control.connection import DEFAULT_CONTROL_URL, control_url_for
from rpdash.api.control.loglines import (
    LEVELS,
    LogLine,
    level_at_least,
    log_matches,
    merge_sorted,
    parse_line,
    parse_since,
)
from rpdash.api.control.models import EndpointInfo, WorkerInfo, WorkerList
from rpdash.api.control.scaling import ScaleChange, UpdateUncertain, scale_text

__all__ = [
    "DEFAULT_CONTROL_URL",
    "AccountCap",
    "ControlClient",
    "EndpointInfo",
    "LEVELS",
    "LogLine",
    "ScaleChange",
    "UpdateUncertain",
    "WorkerCapRefused",
    "WorkerInfo",
    "WorkerList",
    "cap_in",
    "control_url_for",
    "level_at_least",
    "log_matches",
    "merge_sorted",
    "parse_line",
    "parse_since",
    "scale_text",
]
