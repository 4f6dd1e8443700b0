"""Reading and writing the config file for a change rpdash makes itself (a favourite).

The file is the user's: a save changes only the values that changed and keeps everything
else as it was, comments, blank lines, key order, quoting (tomlkit round-trips it). It is
written through :func:`rpdash.files.write_private`: atomically, mode 0600, and through a
symbolic link to its target (a config kept in a dotfiles repository stays a link).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rpdash import paths
from rpdash.config.sources import parse_toml, read_toml_text
from rpdash.core.errors import ConfigError


def _config_path(path: Path | str | None) -> Path:
    return Path(path).expanduser() if path is not None else paths.config_file()


def read_config(path: Path | str | None = None) -> dict[str, Any]:
    """The config file's tables as a dict ({} when the file does not exist), for a
    read-modify-write with :func:`write_config`. Raises ConfigError."""
    path = _config_path(path)
    if not path.exists():
        return {}
    return parse_toml(path, read_toml_text(path))


def favourites_in(path: Path | str) -> dict[str, str]:
    """The ``[favourites]`` of a config file; {} when it has none or cannot be read (the
    next save reports why)."""
    try:
        table = read_config(path).get("favourites")
    except ConfigError:
        return {}
    if not isinstance(table, dict):
        return {}
    return {str(k): str(v) for k, v in table.items()}


def write_config(path: Path | str | None, data: Mapping[str, Any]) -> Path:
    """Make the config file hold ``data``, changing only what differs from what it holds.

    Keys not in ``data`` are removed, changed values replaced in place (their comments
    kept), new keys added at the end of their table. The directory is created 0700 when
    missing. Returns the path. Raises ConfigError.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    from rpdash.files import SaveError, write_private

    path = _config_path(path)
    where = paths.display_path(path)
    old = ""
    if path.exists():
        old = read_toml_text(path)
        parse_toml(path, old)  # a broken file is reported, not overwritten
    try:
        doc = tomlkit.parse(old)
        _sync(doc, data, top=True)
        raw = tomlkit.dumps(doc).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"cannot write config {where}: not valid Unicode text") from None
    except (TOMLKitError, TypeError, ValueError) as e:
        raise ConfigError(f"cannot write config {where}: {type(e).__name__}") from None
    try:
        paths.ensure_private_dir(path.parent)
        write_private(path, raw, through_symlink=True)
    except SaveError as e:
        raise ConfigError(f"{where}: cannot write: {_reason(e)}") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot write: {e.strerror or e}") from None
    return path


def _reason(e: Exception) -> str:
    text = str(e)
    return text.split(": ", 1)[1] if ": " in text else text


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "__fspath__"):
        return str(v.__fspath__())
    return v


def _sync(container: Any, data: Mapping[str, Any], *, top: bool = False) -> None:
    """Change ``container`` (a tomlkit document or table) until it holds ``data``."""
    from tomlkit.items import InlineTable, Table

    data = {str(k): v for k, v in data.items()}
    for key in [k for k in container if k not in data]:
        del container[key]
    for key, value in data.items():
        if key in container:
            current = container[key]
            if isinstance(value, Mapping) and isinstance(current, Table | InlineTable):
                _sync(current, value)
            elif _unwrapped(current) != _plain(value):
                container[key] = _plain(value)
        elif top or not isinstance(container, Table):
            container[key] = _plain(value)
        else:
            _add_to_table(container, key, _plain(value))


def _unwrapped(item: Any) -> Any:
    return item.unwrap() if hasattr(item, "unwrap") else item


def _add_to_table(table: Any, key: str, value: Any) -> None:
    """A new key goes right after the table's last key, before the blank lines and
    comments that lead to the next table."""
    last = None
    for k in table:
        last = k
    if last is None:
        table[key] = value
        return
    try:
        table.value._insert_after(last, key, value)  # tomlkit has no public insert
    except (AttributeError, TypeError, KeyError):
        table[key] = value
