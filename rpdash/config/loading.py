"""Loading the settings: one call reads every source in order, checks every value and
turns every problem into a one-line :class:`~rpdash.core.errors.ConfigError`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from rpdash import paths
from rpdash.config import dotenv_rules
from rpdash.config.messages import permission_warning, settings_error_message, validation_message
from rpdash.config.settings import Settings
from rpdash.config.sources import LOAD, LoadContext
from rpdash.core.errors import ConfigError


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
    ctx = LoadContext(config_path=path if exists else None)

    env_path: Path | None = Path(env_file).expanduser() if env_file is not None else None
    try:
        if env_path is not None and not env_path.is_file():
            env_path = None
    except OSError:  # e.g. the current directory cannot be read: there is no .env to use
        env_path = None

    token = LOAD.set(ctx)
    try:
        settings = Settings(_env_file=env_path, **cli_values)  # type: ignore[call-arg]
    except ValidationError as e:
        raise ConfigError(validation_message(e, Settings.model_fields, ctx.sources,
                                             ctx.config_path, env_path)) from None
    except SettingsError as e:
        raise ConfigError(settings_error_message(e, env_path)) from None
    finally:
        LOAD.reset(token)

    settings._config_file = path if exists else None
    if exists:
        warning = permission_warning(path)
        if warning:
            settings._warnings.append(warning)
    settings._warnings.extend(dotenv_rules.apply(settings, ctx, env_path))
    return settings
