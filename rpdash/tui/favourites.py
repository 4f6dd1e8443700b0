"""Favourite endpoints: ``0``-``9`` switch to one, starred in the endpoint picker and kept
in the config file's ``[favourites]`` table (read, change, atomic write). No Textual here."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from rpdash.core.errors import ConfigError


class Favourites:
    """Digit -> endpoint id, read from the settings and saved to the config file."""

    def __init__(self, settings: Any, *, demo: bool = False) -> None:
        self.settings = settings
        self.favourites: dict[str, str] = dict(getattr(settings, "favourites", {}) or {})
        #: where they are saved (None: the settings' config file, else the default one)
        self.config_path: Path | None = None
        self.demo = demo
        if demo:  # the demo keeps its own config, as its own history
            from rpdash import paths
            from rpdash.config.saving import favourites_in

            self.config_path = paths.config_file(demo=True)
            self.favourites = favourites_in(self.config_path)

    def get(self, digit: str) -> str | None:
        return self.favourites.get(digit)

    def favourite_of(self, endpoint_id: str) -> str | None:
        for k, v in sorted(self.favourites.items()):
            if v == endpoint_id:
                return k
        return None

    def _config_file(self) -> Path:
        if self.config_path is not None:
            return self.config_path
        found = getattr(self.settings, "config_file", None)
        if found is not None:
            return Path(found)
        from rpdash import paths

        return paths.config_file()

    def set_favourite(self, digit: str, endpoint_id: str | None) -> Path:
        """Star ``endpoint_id`` as favourite ``digit`` (None clears it) and save it in the
        config file's ``[favourites]`` table (read, change, atomic write; the rest of the
        file is kept). An endpoint has one key: starring it again moves it."""
        from rpdash.config import read_config, write_config

        if digit not in tuple("0123456789"):
            raise ConfigError("favourite keys are 0 to 9")
        path = self._config_file()
        data = read_config(path)
        favs = {str(k): str(v) for k, v in dict(data.get("favourites") or {}).items()}
        if endpoint_id is None:
            favs.pop(digit, None)
        else:
            favs = {k: v for k, v in favs.items() if v != endpoint_id}
            favs[digit] = endpoint_id
        data["favourites"] = dict(sorted(favs.items()))
        written = write_config(path, data)
        self.favourites = dict(data["favourites"])
        settings = self.settings
        if settings is not None and not self.demo:
            with contextlib.suppress(Exception):
                settings.favourites = dict(self.favourites)
        return written
