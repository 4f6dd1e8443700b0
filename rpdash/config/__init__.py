"""rpdash's settings: environment, ``.env``, a TOML config file, and command-line flags.

Where each setting comes from, highest precedence first (pydantic-settings sources, see
``Settings.settings_customise_sources``)::

    command-line flags  (load_settings(cli={...}))
    environment         RUNPOD_API_KEY, RUNPOD_ENDPOINT_ID, RUNPOD_BASE_URL, RPDASH_*
    .env file           same names (load_settings(env_file=...), default ./.env)
    config file         TOML at $RPDASH_CONFIG or paths.config_file(); field names as keys,
                        named endpoints in [endpoints], key bindings in [keymap]
    defaults

Tables (``endpoints``, ``keymap``) are merged across sources, the higher one winning per key.
In the environment they are JSON (``RPDASH_ENDPOINTS='{"prod": "abc123"}'``). A config file::

    endpoint_id = "abc123"          # the default endpoint
    health_interval = 5             # seconds, >= 1
    status_interval = 2             # seconds, >= 0.5
    readonly = false
    history_retention_days = 30     # 0 keeps everything
    account_worker_cap = 5          # the account's worker cap (RunPod: 5 by default)

    [endpoints]                     # more endpoints to watch, by name
    prod = "abc123"
    staging = "def456"

    [keymap]                        # binding id = keys
    cancel = "ctrl+d,delete"

    [favourites]                    # key 0-9 = endpoint id (the endpoint picker writes it)
    1 = "abc123"

    [endpoint_keys]                 # endpoints that do not use api_key, by name or id
    staging = "rpa_..."

The RunPod names (``RUNPOD_*``) are the ones RunPod's own SDKs read, so an existing setup
just works. One trap is refused explicitly: RunPod's Go samples read ``RUNPOD_BASE_URL`` and
pass it as the *endpoint id*. rpdash keeps the two apart and says so when one looks like the
other, rather than sending requests to a wrong URL.

Every problem is a :class:`~rpdash.core.errors.ConfigError` of one line that names where the
bad value is (file and key, or the variable) and never contains the value itself, which
could be the API key.

The package, one concept a module: :mod:`~rpdash.config.names` (defaults, variable names,
hints), :mod:`~rpdash.config.settings` (the model), :mod:`~rpdash.config.sources` (the
config file as a source), :mod:`~rpdash.config.loading` (``load_settings``),
:mod:`~rpdash.config.messages` (error wording) and :mod:`~rpdash.config.saving` (writing the
file back, comments kept).
"""

from __future__ import annotations

from rpdash.config.loading import load_settings
from rpdash.config.names import (
    DEFAULT_BASE_URL,
    HEALTH_INTERVAL_FLOOR,
    RUNPOD_ENV_NAMES,
    STATUS_INTERVAL_FLOOR,
    env_name,
)
from rpdash.config.saving import read_config, write_config
from rpdash.config.settings import Settings
from rpdash.config.sources import ConfigFileSource

__all__ = [
    "DEFAULT_BASE_URL",
    "HEALTH_INTERVAL_FLOOR",
    "RUNPOD_ENV_NAMES",
    "STATUS_INTERVAL_FLOOR",
    "ConfigFileSource",
    "Settings",
    "env_name",
    "load_settings",
    "read_config",
    "write_config",
]
