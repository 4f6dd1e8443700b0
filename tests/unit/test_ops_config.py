"""Favourite endpoints in the config file: ``[favourites]`` digit = endpoint id."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpdash.config import load_settings, read_config, write_config
from rpdash.core.errors import ConfigError


def test_favourites_round_trip_through_the_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RPDASH_FAVOURITES", raising=False)
    cfg = tmp_path / "config.toml"
    write_config(cfg, {"endpoint_id": "abc", "favourites": {"1": "abc", "0": "def-456"}})
    s = load_settings(config_file=cfg, env_file=None)
    assert s.favourites == {"1": "abc", "0": "def-456"}
    assert read_config(cfg)["endpoint_id"] == "abc"


@pytest.mark.parametrize("table", ['[favourites]\nx = "abc"\n', '[favourites]\n10 = "abc"\n',
                                   '[favourites]\n1 = "not an id/../"\n'])
def test_bad_favourites_are_refused_with_the_file_named(tmp_path: Path, table: str) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(table)
    cfg.chmod(0o600)
    with pytest.raises(ConfigError) as e:
        load_settings(config_file=cfg, env_file=None)
    assert "favourites" in str(e.value) and "config.toml" in str(e.value)


def test_endpoint_keys_by_name_or_id_and_never_shown() -> None:
    from rpdash.config import Settings

    s = Settings(api_key="main-key", endpoints={"prod": "abc"},
                 endpoint_keys={"prod": "prod-key", "xyz": "xyz-key"})
    assert s.key_for("abc").get_secret_value() == "prod-key"  # by name
    assert s.key_for("xyz").get_secret_value() == "xyz-key"  # by id
    assert s.key_for("other").get_secret_value() == "main-key"
    assert set(s.own_keys(["abc", "xyz", "other"])) == {"abc", "xyz"}
    assert "prod-key" not in repr(s) and "xyz-key" not in str(s.model_dump())
    with pytest.raises(Exception):
        Settings(endpoint_keys={"prod": "has space"})


async def test_keyed_client_routes_each_endpoint_to_its_key() -> None:
    from rpdash.api.keyed import KeyedClient

    class C:
        def __init__(self, name: str) -> None:
            self.name, self.base_url, self.closed = name, "http://x/v2", False

        async def health(self, endpoint_id):
            return (self.name, endpoint_id)

        async def status(self, endpoint_id, job_id, *, ttl_ms=None):
            return (self.name, endpoint_id, job_id, ttl_ms)

        async def aclose(self):
            self.closed = True

    main, own = C("main"), C("own")
    k = KeyedClient(main, {"abc": own})
    assert await k.health("abc") == ("own", "abc")
    assert await k.health("zzz") == ("main", "zzz")
    assert await k.status("abc", "j1", ttl_ms=5) == ("own", "abc", "j1", 5)
    assert k.base_url == "http://x/v2" and "key" not in repr(k).replace("own keys", "")
    await k.aclose()
    assert main.closed and own.closed


def test_a_favourite_starred_in_the_demo_leaves_the_real_config_alone(
    tmp_path: Path, monkeypatch
) -> None:
    """Issue 13.3: the demo keeps its own config beside its own history."""
    from types import SimpleNamespace

    from rpdash import paths
    from rpdash.tui.favourites import Favourites

    monkeypatch.setenv("RPDASH_CONFIG", str(tmp_path / "cfg" / "config.toml"))
    monkeypatch.setenv("RPDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RPDASH_FAVOURITES", raising=False)
    real = tmp_path / "cfg" / "config.toml"
    real.parent.mkdir()
    real.write_text('# mine\n[favourites]\n1 = "real-ep"\n')
    real.chmod(0o600)
    before = real.read_bytes()
    settings = load_settings(env_file=None)

    def ops(demo: bool) -> Favourites:
        return Favourites(settings, demo=demo)

    demo = ops(True)
    assert demo.favourites == {}  # the real favourites name real endpoints
    saved = demo.set_favourite("2", "mock")
    assert real.read_bytes() == before
    assert saved == paths.config_file(demo=True) == tmp_path / "data" / "demo-config.toml"
    assert saved.parent == paths.history_file(demo=True).parent
    assert ops(True).favourites == {"2": "mock"}  # the next demo has it
    assert ops(False).favourites == {"1": "real-ep"}
