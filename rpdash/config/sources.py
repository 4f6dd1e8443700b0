"""Where setting values come from, below the model: the TOML config file as a
pydantic-settings source, and the context one :func:`~rpdash.config.load_settings` call
hands to :meth:`Settings.settings_customise_sources` (which file, and the sources built, so
that a message can say which one a bad value came from)."""

from __future__ import annotations

import contextvars
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, TomlConfigSettingsSource

from rpdash import paths
from rpdash.config.messages import toml_error
from rpdash.core.errors import ConfigError


@dataclass
class LoadContext:
    """One load: the config file to read (None: none) and the sources, highest first,
    labelled "cli", "env", "dotenv" or "file"."""

    config_path: Path | None
    sources: list[tuple[str, PydanticBaseSettingsSource]] = field(default_factory=list)

    def values(self, label: str) -> dict[str, Any]:
        """What the source ``label`` holds ({} when it is not there or cannot be read)."""
        for name, source in self.sources:
            if name == label:
                try:
                    return dict(source())
                except Exception:  # noqa: BLE001 - the load itself reports it
                    return {}
        return {}


LOAD: contextvars.ContextVar[LoadContext] = contextvars.ContextVar("rpdash_settings_load")


def read_toml_text(path: Path) -> str:
    """The config file's text. Raises ConfigError naming the file."""
    where = paths.display_path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """``text`` (read from ``path``) as plain data. Raises ConfigError naming file and key."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(toml_error(paths.display_path(path), text, str(e))) from None


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
        return parse_toml(self.path, read_toml_text(Path(file_path)))

    def __repr__(self) -> str:
        return f"ConfigFileSource({paths.display_path(self.path)})"
