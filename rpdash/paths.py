"""Where rpdash keeps its files.

Locations come from platformdirs (``~/.config/rpdash`` and ``~/.local/share/rpdash`` on
Linux). Two environment variables override them, so a user can keep several setups apart
and tests can isolate themselves in a temporary directory:

- ``RPDASH_CONFIG``: the TOML config file itself;
- ``RPDASH_DATA_DIR``: the directory of the job history.

Nothing is created at import or by these functions: a directory is made only when a file
is about to be written in it, by :func:`ensure_private_dir`, and then with mode 0700, since
the history holds job inputs and outputs and the config file may hold the API key.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "rpdash"
CONFIG_FILE_NAME = "config.toml"
HISTORY_FILE_NAME = "history.sqlite3"
#: The demo has its own history so that simulated jobs never mix with real ones.
DEMO_HISTORY_FILE_NAME = "demo-history.sqlite3"
#: ... and its own config (favourites starred in the demo), beside that history: the demo
#: never writes the user's config file (which may be a link into a dotfiles repository).
DEMO_CONFIG_FILE_NAME = "demo-config.toml"

ENV_CONFIG = "RPDASH_CONFIG"
ENV_DATA_DIR = "RPDASH_DATA_DIR"


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """The directory of the default config file (platformdirs user config dir)."""
    import platformdirs  # imported here: start-up time matters and most runs need no path

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def config_file(demo: bool = False) -> Path:
    """The TOML config file: ``$RPDASH_CONFIG`` or ``<user config dir>/config.toml``; the
    demo's is ``<data dir>/demo-config.toml``.

    The file may not exist; a missing default file simply means "all defaults".
    """
    if demo:
        return data_dir() / DEMO_CONFIG_FILE_NAME
    return _env_path(ENV_CONFIG) or config_dir() / CONFIG_FILE_NAME


def config_file_from_env() -> bool:
    """True when ``RPDASH_CONFIG`` names the config file (then it must exist)."""
    return _env_path(ENV_CONFIG) is not None


def data_dir() -> Path:
    """``$RPDASH_DATA_DIR`` or the platformdirs user data dir for rpdash."""
    env = _env_path(ENV_DATA_DIR)
    if env is not None:
        return env
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def history_file(demo: bool = False) -> Path:
    """The SQLite job history; the demo's is a separate file (``demo-history.sqlite3``)."""
    return data_dir() / (DEMO_HISTORY_FILE_NAME if demo else HISTORY_FILE_NAME)


def ensure_private_dir(path: Path | str) -> Path:
    """Create ``path`` (and missing parents) with mode 0700; return it.

    Only directories this call creates get 0700; existing ones (``~/.config`` say) are left
    as they are. Called right before a file is written, never at import.
    """
    path = Path(path).expanduser()
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(d, 0o700)  # mkdir's mode is masked by the umask; make it exact
    return path


def display_path(path: Path | str) -> str:
    """``path`` with the home directory shown as ``~`` (shorter, and the same for every user
    in messages and docs)."""
    s = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (s == home or s.startswith(home + os.sep)):
        return "~" + s[len(home) :]
    return s
