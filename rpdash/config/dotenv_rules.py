"""What a ``.env`` file may not do (issue 17.1).

rpdash reads ``./.env``, the file in whatever directory it is started from: a cloned
repository can ship one. Such a file is not the user's choice the way the shell's
environment, the command line and the config file are, so:

- it cannot allow plain http: ``RPDASH_ALLOW_INSECURE_HTTP`` there is ignored, with a
  warning naming the file;
- it cannot point the API key at a host the user never chose. A ``RUNPOD_BASE_URL`` from it
  that is not RunPod's (https to ``api.runpod.ai``, ``api.runpod.io``, ``rest.runpod.io``)
  nor loopback (the simulator) is used only when the key comes from the same file (then
  the file is a whole setup of its own: one warning line names it and the host before any
  request); with a key from anywhere else rpdash refuses to start and says how to choose
  the host yourself (``--base-url`` or ``RUNPOD_BASE_URL`` in the environment).

A ``.env`` holding a key and readable by others gets the config file's permission warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rpdash.config.messages import dotenv_shown, origin, permission_warning
from rpdash.config.names import env_name
from rpdash.config.sources import LoadContext
from rpdash.core.errors import ConfigError

#: RunPod's API hosts (data plane, control plane REST and GraphQL), over https only.
RUNPOD_HOSTS = frozenset({"api.runpod.ai", "api.runpod.io", "rest.runpod.io"})

_KEY_FIELDS = ("api_key", "endpoint_keys")
_PLACES = {"cli": "the command line", "env": "the environment", "file": "the config file"}


def is_trusted_host(url: str) -> bool:
    """RunPod's own API over https, or the machine itself (the simulator)."""
    from rpdash.api._owner import is_loopback  # the clients' own rule for plain http

    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (parts.scheme == "https" and host in RUNPOD_HOSTS) or is_loopback(host)


def _holds(values: dict[str, Any], field_name: str) -> bool:
    names = {field_name.lower(), env_name(field_name).lower()}
    return any(str(k).lower() in names and v not in (None, "", {}) for k, v in values.items())


def apply(settings: Any, ctx: LoadContext, env_path: Path | None) -> list[str]:
    """Hold the loaded ``settings`` to the rules above; return the warnings to show.
    Raises ConfigError when the key would go to a host only the ``.env`` chose."""
    if env_path is None:
        return []
    warnings: list[str] = []
    shown = dotenv_shown(env_path)
    dotenv = ctx.values("dotenv")

    def came_from_dotenv(field_name: str) -> bool:
        return origin(field_name, ctx.sources, ctx.config_path) == "dotenv"

    if settings.allow_insecure_http and came_from_dotenv("allow_insecure_http"):
        below = ctx.values("file").get("allow_insecure_http", False)
        settings.allow_insecure_http = below if isinstance(below, bool) else False
        warnings.append(
            f"{shown}: RPDASH_ALLOW_INSECURE_HTTP ignored: a .env file cannot allow plain "
            "http (use --allow-insecure-http, the environment or the config file)"
        )

    if came_from_dotenv("base_url") and not is_trusted_host(settings.base_url):
        parts = urlsplit(settings.base_url)
        host = f"{parts.scheme}://{parts.netloc}"
        others = [label for label, _ in ctx.sources
                  if label != "dotenv" and _holds(ctx.values(label), "endpoint_keys")]
        if settings.api_key is not None and not came_from_dotenv("api_key"):
            others.insert(0, origin("api_key", ctx.sources, ctx.config_path))
        if others:
            raise ConfigError(
                f"{shown}: RUNPOD_BASE_URL sends requests to {host}, which is not RunPod, "
                f"and the API key comes from {_PLACES.get(others[0], others[0])}: not sending "
                f"it there. Choose the host yourself (--base-url, or RUNPOD_BASE_URL in the "
                f"environment), or put RUNPOD_API_KEY in {shown} too"
            )
        warnings.append(f"{shown}: RUNPOD_BASE_URL sends requests to {host}, not to RunPod")

    if any(_holds(dotenv, f) for f in _KEY_FIELDS):
        warning = permission_warning(env_path)
        if warning:
            warnings.append(warning)
    return warnings
