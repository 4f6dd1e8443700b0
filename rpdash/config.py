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

    [endpoints]                     # more endpoints to watch, by name
    prod = "abc123"
    staging = "def456"

    [keymap]                        # binding id = keys
    cancel_job = "ctrl+d,delete"

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
"""

from __future__ import annotations

import contextvars
import difflib
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from rpdash import paths
from rpdash.core.errors import ConfigError, InvalidInput
from rpdash.core.models import is_safe_id

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
_HINTS = {
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
    "keymap": 'must be a table of binding_id = "keys"',
    "favourites": 'must be a table of digit = "endpoint id" ("0" to "9")',
    "endpoint_keys": 'must be a table of endpoint name or id = "API key"',
    "theme": "must be a theme name",
}


def env_name(field_name: str) -> str:
    """The environment variable that sets ``field_name``."""
    return RUNPOD_ENV_NAMES.get(field_name, "RPDASH_" + field_name.upper())


def _looks_like_url(value: str) -> bool:
    return "://" in value or value.lower().startswith(("http:", "https:", "www."))


def _endpoint_id_value(v: Any) -> str:
    if not isinstance(v, str) or not is_safe_id(v.strip()):
        raise ValueError("not a valid endpoint id")
    return v.strip()


def _keys_value(v: Any) -> str:
    """Keys for one binding: "ctrl+k,f5" or ["ctrl+k", "f5"] -> "ctrl+k,f5"."""
    if isinstance(v, list | tuple) and all(isinstance(k, str) for k in v):
        v = ",".join(v)
    if not isinstance(v, str) or not v.strip():
        raise ValueError('keys must be a string like "ctrl+k,f5"')
    return ",".join(k.strip() for k in v.split(",") if k.strip())


_EndpointIdValue = Annotated[str, BeforeValidator(_endpoint_id_value)]
_KeysValue = Annotated[str, BeforeValidator(_keys_value)]


class Settings(BaseSettings):
    """Everything rpdash can be told. Build it with :func:`load_settings`.

    Constructed directly (``Settings(...)``) it reads the environment but neither the
    ``.env`` file nor the config file; ``load_settings`` adds both and turns every
    validation problem into a :class:`ConfigError`.
    """

    model_config = SettingsConfigDict(
        env_prefix="RPDASH_",
        env_file=None,
        env_ignore_empty=True,  # RUNPOD_BASE_URL= (empty) means "not set"
        case_sensitive=False,
        extra="ignore",  # unknown keys in the config file are refused by its source
        validate_by_name=True,
        validate_by_alias=True,
        validate_assignment=True,
    )

    api_key: SecretStr | None = Field(default=None, validation_alias="RUNPOD_API_KEY")
    endpoint_id: str | None = Field(default=None, validation_alias="RUNPOD_ENDPOINT_ID")
    base_url: str = Field(default=DEFAULT_BASE_URL, validation_alias="RUNPOD_BASE_URL")
    endpoints: dict[str, _EndpointIdValue] = Field(default_factory=dict)
    health_interval: float = Field(default=5.0, ge=HEALTH_INTERVAL_FLOOR, allow_inf_nan=False)
    status_interval: float = Field(default=2.0, ge=STATUS_INTERVAL_FLOOR, allow_inf_nan=False)
    readonly: bool = False
    allow_insecure_http: bool = False
    history_path: Path | None = None
    history_retention_days: float = Field(default=30.0, ge=0, allow_inf_nan=False)
    request_timeout: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    keymap: dict[str, _KeysValue] = Field(default_factory=dict)
    #: favourite endpoints by key "0"-"9" (set from the endpoint picker; digits jump to them)
    favourites: dict[str, _EndpointIdValue] = Field(default_factory=dict)
    #: API keys of endpoints that do not use ``api_key`` (another account or a scoped key),
    #: by endpoint name (from ``endpoints``) or id
    endpoint_keys: dict[str, SecretStr] = Field(default_factory=dict)
    #: Textual theme name; None leaves the app's default.
    theme: str | None = None

    _config_file: Path | None = PrivateAttr(default=None)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    # ------------------------------------------------------------------ sources

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """cli (init kwargs) > env > .env > config file. No secrets dir."""
        ctx = _LOAD.get(None)
        sources: list[tuple[str, PydanticBaseSettingsSource]] = [
            ("cli", init_settings),
            ("env", env_settings),
            ("dotenv", dotenv_settings),
        ]
        if ctx is not None and ctx.config_path is not None:
            sources.append(("file", ConfigFileSource(settings_cls, ctx.config_path)))
        if ctx is not None:
            ctx.sources = sources
        return tuple(s for _, s in sources)

    # ------------------------------------------------------------------ validation

    @field_validator("api_key", mode="before")
    @classmethod
    def _api_key(cls, v: Any) -> Any:
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(_HINTS["api_key"])
        v = v.strip()
        if not v:
            return None
        if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in v):
            raise ValueError("must not contain spaces or control characters")
        return v

    @field_validator("endpoint_id", mode="before")
    @classmethod
    def _endpoint_id(cls, v: Any) -> Any:
        if v is None:
            return None
        if not isinstance(v, str):
            raise ValueError(_HINTS["endpoint_id"])
        v = v.strip()
        if not v:
            return None
        if _looks_like_url(v):
            raise ValueError(
                "looks like a URL, not an endpoint id: rpdash keeps them apart; put the "
                "endpoint id alone in RUNPOD_ENDPOINT_ID and the API URL (default "
                f"{DEFAULT_BASE_URL}) in RUNPOD_BASE_URL"
            )
        if not is_safe_id(v):
            raise ValueError(_HINTS["endpoint_id"])
        return v

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError(_HINTS["base_url"])
        v = v.strip()
        if not v:
            return DEFAULT_BASE_URL
        if "://" not in v and is_safe_id(v):
            raise ValueError(
                "looks like an endpoint id, not a URL: rpdash keeps them apart (RunPod's "
                "Go samples pass RUNPOD_BASE_URL as the endpoint id); put the endpoint id "
                "in RUNPOD_ENDPOINT_ID and leave RUNPOD_BASE_URL unset or set it to the API "
                f"URL ({DEFAULT_BASE_URL})"
            )
        try:
            parts = urlsplit(v)
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            raise ValueError(_HINTS["base_url"]) from None
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or not port_ok
            or parts.query
            or parts.fragment
            or parts.username is not None
            or any(c.isspace() for c in v)
        ):
            raise ValueError(_HINTS["base_url"])
        return v.rstrip("/")

    @field_validator("endpoint_keys", mode="before")
    @classmethod
    def _endpoint_keys(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError(_HINTS["endpoint_keys"])
        out: dict[str, str] = {}
        for name, key in v.items():
            if isinstance(key, SecretStr):
                key = key.get_secret_value()
            if not isinstance(key, str) or not key.strip():
                raise ValueError(_HINTS["endpoint_keys"])
            key = key.strip()
            if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in key):
                raise ValueError("keys must not contain spaces or control characters")
            out[str(name).strip()] = key
        return out

    @field_validator("favourites", mode="after")
    @classmethod
    def _favourite_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if key not in "0123456789" or len(key) != 1:
                raise ValueError(_HINTS["favourites"])
        return v

    @field_validator("endpoints", "keymap", "favourites", mode="before")
    @classmethod
    def _tables(cls, v: Any, info: Any) -> Any:
        if not isinstance(v, Mapping):
            raise ValueError(_HINTS[info.field_name])
        out: dict[str, Any] = {}
        for name, value in v.items():
            name = str(name).strip()
            if not name:
                raise ValueError("names must not be empty")
            out[name] = value
        return out

    @field_validator("history_path", mode="before")
    @classmethod
    def _history_path(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, str | os.PathLike):
            return Path(v).expanduser()
        raise ValueError(_HINTS["history_path"])

    # ------------------------------------------------------------------ helpers

    @property
    def config_file(self) -> Path | None:
        """The config file that was read (None when there was none)."""
        return self._config_file

    @property
    def warnings(self) -> list[str]:
        """Things the user should fix that do not stop rpdash (a world-readable config)."""
        return self._warnings

    def watched_endpoints(self) -> list[str]:
        """Endpoint ids to watch: the default endpoint first, then the named ones, no
        duplicates, order kept."""
        ids = ([self.endpoint_id] if self.endpoint_id else []) + list(self.endpoints.values())
        return list(dict.fromkeys(ids))

    def resolve_endpoint(self, name_or_id: str) -> str:
        """A name from ``[endpoints]`` becomes its id; anything else is taken as an id.

        Raises InvalidInput when the result could not be an endpoint id (it would be put in
        a URL path).
        """
        key = name_or_id.strip()
        if key in self.endpoints:
            return self.endpoints[key]
        if not is_safe_id(key):
            known = ", ".join(self.endpoints) or "none configured"
            raise InvalidInput(f"not an endpoint id or a known name (names: {known})")
        return key

    def key_for(self, endpoint_id: str) -> SecretStr | None:
        """The API key for one endpoint: its own from ``[endpoint_keys]`` (by id, or by a
        name in ``[endpoints]`` that names it), else ``api_key``."""
        own = self.endpoint_keys.get(endpoint_id)
        if own is None:
            for name, ep in self.endpoints.items():
                if ep == endpoint_id and name in self.endpoint_keys:
                    own = self.endpoint_keys[name]
                    break
        return own if own is not None else self.api_key

    def own_keys(self, endpoint_ids: list[str]) -> dict[str, SecretStr]:
        """The endpoints among ``endpoint_ids`` that have a key of their own."""
        out: dict[str, SecretStr] = {}
        for ep in endpoint_ids:
            key = self.key_for(ep)
            if key is not None and key is not self.api_key:
                out[ep] = key
        return out

    def history_file(self, demo: bool = False) -> Path:
        """Where the job history lives: the demo always uses its own file."""
        if demo:
            return paths.history_file(demo=True)
        return self.history_path or paths.history_file()

    @property
    def retention_seconds(self) -> float | None:
        """How old finished jobs may get before pruning; None keeps everything."""
        return self.history_retention_days * 86400 if self.history_retention_days > 0 else None


# ---------------------------------------------------------------------- config file


class ConfigFileSource(TomlConfigSettingsSource):
    """The TOML config file, with errors that name the file and the key.

    tomllib's errors become ConfigError (with the line and, when it can be told, the key);
    a key that is no setting is refused here (the model itself ignores extras so that
    stray ``RPDASH_*`` lines in a ``.env`` do not stop rpdash).
    """

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        self.path = path
        super().__init__(settings_cls, toml_file=path)
        where = paths.display_path(path)
        known = set(settings_cls.model_fields)
        for key in self.toml_data:
            if key not in known:
                guess = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {guess[0]}?)" if guess else ""
                raise ConfigError(f"{where}: {key}: unknown setting{hint}")

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        where = paths.display_path(self.path)
        try:
            data = Path(file_path).read_bytes()
        except IsADirectoryError:
            raise ConfigError(f"{where}: is a directory, not a config file") from None
        except OSError as e:
            raise ConfigError(f"{where}: cannot read: {e.strerror or e}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not UTF-8 text") from None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(_toml_error(where, text, str(e))) from None

    def __repr__(self) -> str:
        return f"ConfigFileSource({paths.display_path(self.path)})"


_AT = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)\s*$")
_BARE_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]")


def _toml_error(where: str, text: str, msg: str) -> str:
    """One line for a TOML syntax error: file, key (when the line has one), what is wrong.

    The offending line is never quoted: it may hold the API key.
    """
    m = _AT.search(msg)
    line_no = int(m.group(1)) if m and m.group(1) else None
    what = _AT.sub("", msg)
    # tomllib quotes the offending character; drop it (it could be part of a secret).
    what = re.sub(r"(character) '.*?'", r"\1", what)
    lines = text.splitlines()
    key = None
    if line_no is not None and 0 < line_no <= len(lines):
        km = _BARE_KEY.match(lines[line_no - 1])
        if km:
            key = km.group(1).strip().strip("\"'")
            table = None
            for prev in reversed(lines[: line_no - 1]):
                tm = _TABLE.match(prev)
                if tm:
                    table = tm.group(1).strip()
                    break
            if table:
                key = f"{table}.{key}"
    loc = f"line {line_no}" if line_no else "end of file"
    if key:
        loc += f", {key}"
    return f"{where}: {loc}: invalid TOML: {what[:1].lower() + what[1:]}"


# ---------------------------------------------------------------------- loading


@dataclass
class _LoadContext:
    config_path: Path | None
    sources: list[tuple[str, PydanticBaseSettingsSource]] = field(default_factory=list)


_LOAD: contextvars.ContextVar[_LoadContext] = contextvars.ContextVar("rpdash_settings_load")


def load_settings(
    *,
    cli: Mapping[str, Any] | None = None,
    config_file: Path | str | None = None,
    env_file: str | Path | None = ".env",
) -> Settings:
    """Read the settings. Precedence: ``cli`` > environment > ``env_file`` > config file.

    ``cli`` holds flag values by field name (``{"health_interval": 2}``); None values are
    flags that were not given. ``config_file`` (a ``--config`` flag) must exist; otherwise
    ``$RPDASH_CONFIG`` or the default location is read when present. Raises ConfigError.
    """
    cli_values = {k: v for k, v in (cli or {}).items() if v is not None}
    for key in cli_values:
        if key not in Settings.model_fields:
            raise ConfigError(f"command line: {key}: unknown setting")

    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.exists():
            raise ConfigError(f"{paths.display_path(path)}: config file not found")
    else:
        path = paths.config_file()
    if path.is_dir():
        raise ConfigError(f"{paths.display_path(path)}: is a directory, not a config file")
    exists = path.exists()
    ctx = _LoadContext(config_path=path if exists else None)

    env_path: Path | None = Path(env_file).expanduser() if env_file is not None else None
    try:
        if env_path is not None and not env_path.is_file():
            env_path = None
    except OSError:  # e.g. the current directory cannot be read: there is no .env to use
        env_path = None

    token = _LOAD.set(ctx)
    try:
        settings = Settings(_env_file=env_path, **cli_values)  # type: ignore[call-arg]
    except ValidationError as e:
        raise ConfigError(_validation_message(e, ctx, env_path)) from None
    except SettingsError as e:
        raise ConfigError(_settings_error_message(e, env_path)) from None
    finally:
        _LOAD.reset(token)

    settings._config_file = path if exists else None
    if exists:
        warning = _permission_warning(path)
        if warning:
            settings._warnings.append(warning)
    return settings


def _permission_warning(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        where = paths.display_path(path)
        return (
            f"{where} can be read by other users (mode {mode & 0o777:04o}) and may hold your "
            f"API key: run chmod 600 {where}"
        )
    return None


def _field_of(loc0: Any) -> str | None:
    name = str(loc0)
    if name in Settings.model_fields:
        return name
    for f, alias in RUNPOD_ENV_NAMES.items():
        if alias.lower() == name.lower():
            return f
    return None


def _origin(field_name: str, ctx: _LoadContext) -> str:
    """Which source gave ``field_name`` its (bad) value: the first, in precedence order,
    whose values hold it."""
    names = {field_name.lower(), env_name(field_name).lower()}
    for label, source in ctx.sources:
        try:
            values = source()
        except Exception:  # noqa: BLE001 - only used to word a message
            continue
        if any(str(k).lower() in names for k in values):
            return label
    return "file" if ctx.config_path is not None else "env"


def _where(label: str, field_name: str, sub: str, ctx: _LoadContext, env_path: Path | None) -> str:
    suffix = f".{sub}" if sub else ""
    if label == "cli":
        return f"command line: --{field_name.replace('_', '-')}{suffix}"
    if label == "dotenv":
        dotenv = paths.display_path(env_path) if env_path else ".env"
        return f"{dotenv}: {env_name(field_name)}{f' [{sub}]' if sub else ''}"
    if label == "file" and ctx.config_path is not None:
        return f"{paths.display_path(ctx.config_path)}: {field_name}{suffix}"
    return f"{env_name(field_name)}{f' [{sub}]' if sub else ''}"


def _validation_message(exc: ValidationError, ctx: _LoadContext, env_path: Path | None) -> str:
    parts: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err.get("loc") or ()
        field_name = _field_of(loc[0]) if loc else None
        if field_name is None:
            parts.append(f"{loc[0] if loc else 'settings'}: invalid")
            continue
        sub = ".".join(str(x) for x in loc[1:])
        if err.get("type") == "value_error":
            text = str((err.get("ctx") or {}).get("error") or _HINTS.get(field_name, "invalid"))
        else:
            text = _HINTS.get(field_name) or err.get("msg", "invalid")
        where = _where(_origin(field_name, ctx), field_name, sub, ctx, env_path)
        parts.append(f"{where}: {text}")
    parts = list(dict.fromkeys(parts))
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


_SETTINGS_ERR = re.compile(r'field "(\w+)" from source "(\w+)"')


def _settings_error_message(exc: SettingsError, env_path: Path | None) -> str:
    """pydantic-settings could not decode a complex value (a table given as bad JSON)."""
    m = _SETTINGS_ERR.search(str(exc))
    if not m:
        return "invalid settings in the environment"
    field_name, source = m.group(1), m.group(2)
    var = env_name(field_name)
    example = ', e.g. {"name": "endpoint-id"}' if field_name == "endpoints" else ""
    if source.startswith("DotEnv"):
        dotenv = paths.display_path(env_path) if env_path else ".env"
        return f"{dotenv}: {var}: must be a JSON object{example}"
    return f"{var}: must be a JSON object{example}"


# ---------------------------------------------------------------------- writing


def read_config(path: Path | str | None = None) -> dict[str, Any]:
    """The config file's tables as a dict ({} when the file does not exist), for a
    read-modify-write with :func:`write_config`. Raises ConfigError."""
    path = Path(path).expanduser() if path is not None else paths.config_file()
    where = paths.display_path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(_toml_error(where, text, str(e))) from None


def write_config(path: Path | str | None, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as the TOML config file, mode 0600, atomically.

    A temporary file in the same directory is written, flushed to disk and renamed over
    the old one, so a crash leaves either the old file or the new one, never half of one;
    the directory is created 0700 when missing. Returns the path. Raises ConfigError.
    """
    path = Path(path).expanduser() if path is not None else paths.config_file()
    where = paths.display_path(path)
    text = dumps_toml(data)
    tmp: str | None = None
    try:
        paths.ensure_private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as e:
        raise ConfigError(f"{where}: cannot write: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML text for ``data``: tomli-w when installed, else :func:`_dumps_flat_toml`."""
    try:
        import tomli_w
    except ImportError:
        return _dumps_flat_toml(data)
    try:
        text = tomli_w.dumps(_plain(data))
        text.encode("utf-8")  # lone surrogates cannot be written
        return text
    except (TypeError, ValueError) as e:
        raise ConfigError(f"cannot write config: {type(e).__name__}") from None


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return v


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _dumps_flat_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for what rpdash's config holds: top-level scalars and one level
    of tables of scalars (``[endpoints]``, ``[keymap]``). Lists of scalars are allowed."""
    scalars: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            body = []
            for k, v in value.items():
                if isinstance(v, Mapping):
                    raise ConfigError(f"cannot write config: {key}.{k}: nested tables unsupported")
                body.append(f"{_toml_key(k)} = {_toml_value(v, f'{key}.{k}')}")
            tables.append(f"[{_toml_key(key)}]\n" + "".join(line + "\n" for line in body))
        else:
            scalars.append(f"{_toml_key(key)} = {_toml_value(value, str(key))}\n")
    out = "".join(scalars)
    if scalars and tables:
        out += "\n"
    return out + "\n".join(tables)


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if _BARE.match(key) else _toml_str(key, key)


def _toml_str(s: str, where: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if 0xD800 <= o <= 0xDFFF:
            raise ConfigError(f"cannot write config: {where}: not valid Unicode text")
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str | os.PathLike):
        return _toml_str(str(v), where)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    raise ConfigError(f"cannot write config: {where}: unsupported value type")
