"""The settings' names and words: defaults, the variable each field is read from, and what a
valid value looks like (the text of an error about that field). No logic, no imports."""

from __future__ import annotations

DEFAULT_BASE_URL = "https://api.runpod.ai/v2"
HEALTH_INTERVAL_FLOOR = 1.0
STATUS_INTERVAL_FLOOR = 0.5

#: Fields that take RunPod's own variable names instead of ``RPDASH_<FIELD>``.
RUNPOD_ENV_NAMES = {
    "api_key": "RUNPOD_API_KEY",
    "endpoint_id": "RUNPOD_ENDPOINT_ID",
    "base_url": "RUNPOD_BASE_URL",
}

#: What a valid value looks like, per field: the message when a value does not fit.
HINTS = {
    "api_key": "must be a string (the RunPod API key)",
    "endpoint_id": "must be an endpoint id (letters, digits, '-', '_', '.', ':')",
    "base_url": f"must be an http(s) URL such as {DEFAULT_BASE_URL}",
    "endpoints": 'must be a table of name = "endpoint id"',
    "health_interval": f"must be a number >= {HEALTH_INTERVAL_FLOOR:g} (seconds)",
    "status_interval": f"must be a number >= {STATUS_INTERVAL_FLOOR:g} (seconds)",
    "readonly": "must be true or false",
    "allow_insecure_http": "must be true or false",
    "history_path": "must be a file path",
    "history_retention_days": "must be a number >= 0 (days; 0 keeps all history)",
    "request_timeout": "must be a number > 0 (seconds)",
    "account_worker_cap": "must be a whole number >= 1 (workers over all endpoints of the account)",
    "keymap": 'must be a table of binding_id = "keys"',
    "favourites": 'must be a table of digit = "endpoint id" ("0" to "9")',
    "endpoint_keys": 'must be a table of endpoint name or id = "API key"',
    "theme": "must be a theme name",
    "alerts": "must be a table of alert settings (see the README)",
    "prices": "must be a table of GPU prices in USD per second (see the README)",
}

#: Fields that are tables of settings of their own: an error inside one names the key and
#: says what pydantic found wrong with it (the whole table's hint would not help).
NESTED_TABLES = frozenset({"alerts", "prices"})

#: A base URL with ``user:password@`` would make httpx send Basic credentials in place of
#: the key (and keep a password in a setting that gets shown): refused in every base URL.
USERINFO_REFUSED = (
    "must not hold a user name or password (user:pw@host): rpdash signs in with the API key"
)


def env_name(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return RUNPOD_ENV_NAMES.get(field_name, "RPDASH_" + field_name.upper())
