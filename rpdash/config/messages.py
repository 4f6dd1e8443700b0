"""What a user reads when a setting is wrong: one line that names where the bad value is
(file and key, the variable, or the flag) and what a good one looks like, never the value
itself (it could be the API key) and never a traceback."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from rpdash import paths
from rpdash.config.names import HINTS, NESTED_TABLES, RUNPOD_ENV_NAMES, env_name

#: (label, source) pairs, highest precedence first: "cli", "env", "dotenv", "file"
Sources = Sequence[tuple[str, Any]]

_AT = re.compile(r"\s*\(at (?:line (\d+), column \d+|end of document)\)\s*$")
_BARE_KEY = re.compile(r"^\s*([A-Za-z0-9_.\-\"' ]+?)\s*=")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]")


def toml_error(where: str, text: str, msg: str) -> str:
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


def field_of(loc0: Any, fields: Collection[str]) -> str | None:
    """The field an error location names (by field name or by its variable)."""
    name = str(loc0)
    if name in fields:
        return name
    for f, alias in RUNPOD_ENV_NAMES.items():
        if alias.lower() == name.lower():
            return f
    return None


def origin(field_name: str, sources: Sources, config_path: Path | None) -> str:
    """Which source gave ``field_name`` its value: the first, in precedence order, whose
    values hold it."""
    names = {field_name.lower(), env_name(field_name).lower()}
    for label, source in sources:
        try:
            values = source()
        except Exception:  # noqa: BLE001 - only used to word a message
            continue
        if any(str(k).lower() in names for k in values):
            return label
    return "file" if config_path is not None else "env"


def dotenv_shown(env_path: Path | None) -> str:
    return paths.display_path(env_path) if env_path else ".env"


def where(label: str, field_name: str, sub: str, config_path: Path | None,
          env_path: Path | None) -> str:
    """The place a value came from, as a message starts: ``file: key``, ``VARIABLE``..."""
    suffix = f".{sub}" if sub else ""
    if label == "cli":
        return f"command line: --{field_name.replace('_', '-')}{suffix}"
    if label == "dotenv":
        return f"{dotenv_shown(env_path)}: {env_name(field_name)}{f' [{sub}]' if sub else ''}"
    if label == "file" and config_path is not None:
        return f"{paths.display_path(config_path)}: {field_name}{suffix}"
    return f"{env_name(field_name)}{f' [{sub}]' if sub else ''}"


def validation_message(exc: ValidationError, fields: Collection[str], sources: Sources,
                       config_path: Path | None, env_path: Path | None) -> str:
    """pydantic's errors as one line: up to three places and what each needs."""
    parts: list[str] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err.get("loc") or ()
        field_name = field_of(loc[0], fields) if loc else None
        if field_name is None:
            parts.append(f"{loc[0] if loc else 'settings'}: invalid")
            continue
        inner = loc[2:] if field_name == "prices" and loc[1:2] == ("gpus",) else loc[1:]  # the model's own layer
        sub = ".".join(str(x) for x in inner)
        if field_name in NESTED_TABLES and sub:
            text = nested_text(err)
        elif err.get("type") == "value_error":
            text = str((err.get("ctx") or {}).get("error") or HINTS.get(field_name, "invalid"))
        else:
            text = HINTS.get(field_name) or err.get("msg", "invalid")
        label = origin(field_name, sources, config_path)
        parts.append(f"{where(label, field_name, sub, config_path, env_path)}: {text}")
    parts = list(dict.fromkeys(parts))
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "; ".join(parts[:3]) + more


def nested_text(err: Any) -> str:
    """What is wrong with one key of a table of settings (``[alerts]``, ``[prices]``), in
    pydantic's words, without the value (a quoted value in a message is cut out)."""
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind in ("model_type", "dict_type") and "GpuPrice" in str(err.get("msg")):
        return "must be a price in USD per GPU-second, or a table {flex = ..., active = ...}"
    if kind == "value_error":
        text = str((err.get("ctx") or {}).get("error") or "invalid")
    else:
        text = str(err.get("msg") or "invalid")
    text = re.sub(r" ?'[^']*'(?= |:|$)", "", text) if kind == "value_error" else text
    return text[:1].lower() + text[1:]


_SETTINGS_ERR = re.compile(r'field "(\w+)" from source "(\w+)"')


def settings_error_message(exc: SettingsError, env_path: Path | None) -> str:
    """pydantic-settings could not decode a complex value (a table given as bad JSON)."""
    m = _SETTINGS_ERR.search(str(exc))
    if not m:
        return "invalid settings in the environment"
    field_name, source = m.group(1), m.group(2)
    var = env_name(field_name)
    example = ', e.g. {"name": "endpoint-id"}' if field_name == "endpoints" else ""
    if source.startswith("DotEnv"):
        return f"{dotenv_shown(env_path)}: {var}: must be a JSON object{example}"
    return f"{var}: must be a JSON object{example}"


def permission_warning(path: Path) -> str | None:
    """A warning when others may read ``path`` (which may hold the API key)."""
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
