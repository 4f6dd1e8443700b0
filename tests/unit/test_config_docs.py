"""The examples the user copies are valid as printed (issue 13.19): the config file in the
README and every value shown in ``.env.example`` load through the real settings loader, and
the binding ids they name exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rpdash.config import load_settings
from rpdash.tui.actions import check_keymap
from tests.unit.test_config import cfg, clean_env, write  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def readme_toml_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```toml\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_config_file_loads_as_printed(cfg: Path) -> None:
    blocks = readme_toml_blocks()
    assert blocks, "the README shows no config file"
    for block in blocks:
        write(cfg, block)
        s = load_settings()
        assert s.config_file == cfg
        assert check_keymap(s.keymap) == []
    # the one in "Using it with RunPod" (the first) sets what it says it sets
    write(cfg, blocks[0])
    s = load_settings()
    assert (s.health_interval, s.status_interval, s.readonly) == (5, 2, False)
    assert s.endpoints == {"prod": "abc123xyz", "staging": "def456uvw"}
    assert s.keymap == {"cancel": "ctrl+d,delete"}


def env_example_values() -> dict[str, str]:
    """Every variable of .env.example with the JSON example its comment shows."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line and not line.startswith("#") and "=" in line:
            m = re.search(r"(\{.*\})", lines[i - 1])
            if m:
                out[line.split("=", 1)[0]] = m.group(1)
    return out


def test_the_env_example_values_load_as_printed(tmp_path: Path) -> None:
    values = env_example_values()
    assert {"RPDASH_ENDPOINTS", "RPDASH_KEYMAP"} <= set(values)
    for text in values.values():
        json.loads(text)  # each is JSON as the comment says
    write(tmp_path / ".env", "".join(f"{k}={v}\n" for k, v in values.items()))
    s = load_settings()
    assert s.endpoints == {"prod": "abc123", "staging": "def456"}
    assert check_keymap(s.keymap) == [] and s.keymap["cancel"] == "ctrl+d,delete"
