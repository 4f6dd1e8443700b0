"""Saving a favourite changes the user's config file only where it must (issues 17.7 and
13.20): comments, blank lines and key order stay; a config that is a symbolic link (kept in
a dotfiles repository) stays a link and its target gets the change, mode 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from rpdash.config import load_settings, read_config, write_config
from rpdash.core.errors import ConfigError
from tests.unit.test_config import clean_env  # noqa: F401 - autouse: no shell settings

USER_FILE = """\
# my rpdash setup -- keep this comment
endpoint_id = "abc123"   # the GPU box

health_interval = 7

# names for the ids
[endpoints]
prod = "abc123"     # production
staging = "def456"

[favourites]  # starred in the picker
1 = "abc123"

# remaps
[keymap]
quit = "ctrl+q"
"""


def ops_for(settings, *, demo: bool = False):
    from rpdash.tui.favourites import Favourites

    return Favourites(settings, demo=demo)


def star(path: Path, digit: str, endpoint: str | None) -> Path:
    settings = load_settings(config_file=path, env_file=None)
    return ops_for(settings).set_favourite(digit, endpoint)


def test_saving_a_favourite_keeps_comments_blank_lines_and_key_order(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(USER_FILE)
    cfg.chmod(0o600)
    star(cfg, "2", "def456")
    text = cfg.read_text()
    expected = USER_FILE.replace('1 = "abc123"\n', '1 = "abc123"\n2 = "def456"\n')
    assert text == expected
    star(cfg, "1", None)  # clearing one touches only its line
    assert cfg.read_text() == expected.replace('1 = "abc123"\n', "")
    assert load_settings(config_file=cfg, env_file=None).favourites == {"2": "def456"}


def test_a_new_favourites_table_goes_at_the_end_and_the_rest_stays(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    original = USER_FILE.replace('[favourites]  # starred in the picker\n1 = "abc123"\n\n', "")
    cfg.write_text(original)
    star(cfg, "0", "abc123")
    text = cfg.read_text()
    assert text.startswith(original)
    assert read_config(cfg)["favourites"] == {"0": "abc123"}


def test_a_symlinked_config_stays_a_link_and_its_target_changes(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    target = dotfiles / "rpdash.toml"
    target.write_text(USER_FILE)
    target.chmod(0o644)
    link = tmp_path / "cfg" / "config.toml"
    link.parent.mkdir()
    link.symlink_to(target)
    star(link, "3", "def456")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert read_config(target)["favourites"] == {"1": "abc123", "3": "def456"}
    assert "# my rpdash setup -- keep this comment" in target.read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in dotfiles.iterdir()) == ["rpdash.toml"]  # no temp left


def test_a_broken_config_is_reported_not_overwritten(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('endpoint_id = "abc\n')
    with pytest.raises(ConfigError, match=r"config.toml: line 1, endpoint_id: invalid TOML"):
        write_config(cfg, {"favourites": {"1": "abc"}})
    assert cfg.read_text() == 'endpoint_id = "abc\n'
