"""The settings model: every setting rpdash has, its type, bounds and default, and the
checks on each value. Where values come from is in ``settings_customise_sources``; loading
and the wording of errors are in :mod:`rpdash.config.loading` and
:mod:`rpdash.config.messages`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rpdash import paths
from rpdash.config.names import (
    DEFAULT_BASE_URL,
    HEALTH_INTERVAL_FLOOR,
    STATUS_INTERVAL_FLOOR,
    USERINFO_REFUSED,
)
from rpdash.config.names import HINTS as _HINTS
from rpdash.config.sources import LOAD, ConfigFileSource
from rpdash.core.errors import InvalidInput
from rpdash.core.models import is_safe_id
from rpdash.services.alerts import AlertRules, AlertThresholds
from rpdash.services.cost import PriceTable


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
    #: the account's cap on workers over all its endpoints (RunPod: 5 by default, more by
    #: balance; no API reads it). None: unknown until a refused scale update names it
    account_worker_cap: int | None = Field(default=None, ge=1, le=100_000)
    keymap: dict[str, _KeysValue] = Field(default_factory=dict)
    #: favourite endpoints by key "0"-"9" (set from the endpoint picker; digits jump to them)
    favourites: dict[str, _EndpointIdValue] = Field(default_factory=dict)
    #: API keys of endpoints that do not use ``api_key`` (another account or a scoped key),
    #: by endpoint name (from ``endpoints``) or id
    endpoint_keys: dict[str, SecretStr] = Field(default_factory=dict)
    #: Textual theme name; None leaves the app's default.
    theme: str | None = None
    #: the ``[alerts]`` table: thresholds and hold times of the alert rules, with
    #: ``[alerts.endpoints.NAME]`` overrides by endpoint name or id (rpdash.services.alerts)
    alerts: AlertRules = Field(default_factory=AlertRules)
    #: the ``[prices]`` table: USD per GPU-second by pool id or GPU name (rpdash.services.cost)
    prices: PriceTable = Field(default_factory=PriceTable)

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
        ctx = LOAD.get(None)
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
        if "@" in parts.netloc:
            raise ValueError(USERINFO_REFUSED)
        if (
            parts.scheme.lower() not in ("http", "https")
            or not parts.hostname
            or not port_ok
            or parts.query
            or parts.fragment
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

    def alerts_for(self, endpoint_id: str) -> AlertThresholds:
        """The alert settings of one endpoint: ``[alerts]`` with the override named by the
        endpoint's id or by a name in ``[endpoints]`` that stands for it (a name first)."""
        names = [name for name, ep in self.endpoints.items() if ep == endpoint_id]
        return self.alerts.for_endpoint(*names, endpoint_id)

    def endpoint_name(self, endpoint_id: str) -> str | None:
        """The first name ``[endpoints]`` gives the id (None when it has none)."""
        return next((name for name, ep in self.endpoints.items() if ep == endpoint_id), None)

    def history_file(self, demo: bool = False) -> Path:
        """Where the job history lives: the demo always uses its own file."""
        if demo:
            return paths.history_file(demo=True)
        return self.history_path or paths.history_file()

    @property
    def retention_seconds(self) -> float | None:
        """How old finished jobs may get before pruning; None keeps everything."""
        return self.history_retention_days * 86400 if self.history_retention_days > 0 else None
