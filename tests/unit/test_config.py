"""Settings and paths: where each setting comes from, and what a user sees when one is
wrong (one line naming the file and the key, never the value, never a traceback)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rpdash import paths
from rpdash.config import (
    DEFAULT_BASE_URL,
    Settings,
    load_settings,
    read_config,
    write_config,
)
from rpdash.core.errors import ConfigError, InvalidInput

SECRET = "rpa_SECRETKEY0123456789"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No RUNPOD_*/RPDASH_* from the developer's shell; config and data in tmp_path; the
    working directory (where ./.env is looked for) is tmp_path too."""
    for name in list(os.environ):
        if name.upper().startswith(("RUNPOD_", "RPDASH_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RPDASH_CONFIG", str(tmp_path / "cfg" / "config.toml"))
    monkeypatch.setenv("RPDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "cfg" / "config.toml"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def config_error(**kw) -> str:
    with pytest.raises(ConfigError) as ei:
        load_settings(**kw)
    err = ei.value
    msg = str(err)
    # one line, no chained traceback, never the key
    assert "\n" not in msg and "Traceback" not in msg and "errors.pydantic.dev" not in msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)
    assert SECRET not in msg
    return msg


# ---------------------------------------------------------------- sources


def test_defaults_without_any_source() -> None:
    s = load_settings()
    assert s.api_key is None and s.endpoint_id is None
    assert s.base_url == DEFAULT_BASE_URL
    assert (s.health_interval, s.status_interval, s.request_timeout) == (5.0, 2.0, 30.0)
    assert s.readonly is False and s.allow_insecure_http is False
    assert s.endpoints == {} and s.keymap == {} and s.history_retention_days == 30.0
    assert s.config_file is None and s.warnings == [] and s.watched_endpoints() == []


@pytest.mark.parametrize(
    "layers, expected",
    [
        ({"cli", "env", "dotenv", "file"}, 7.0),
        ({"env", "dotenv", "file"}, 8.0),
        ({"dotenv", "file"}, 9.0),
        ({"file"}, 10.0),
        (set(), 5.0),
    ],
)
def test_precedence_cli_env_dotenv_file_default(
    layers: set[str], expected: float, cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "file" in layers:
        write(cfg, 'health_interval = 10\napi_key = "file-key"\nendpoint_id = "file-ep"\n')
    if "dotenv" in layers:
        write(
            tmp_path / ".env",
            "RPDASH_HEALTH_INTERVAL=9\nRUNPOD_API_KEY=dotenv-key\nRUNPOD_ENDPOINT_ID=dotenv-ep\n",
        )
    if "env" in layers:
        monkeypatch.setenv("RPDASH_HEALTH_INTERVAL", "8")
        monkeypatch.setenv("RUNPOD_API_KEY", "env-key")
        monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "env-ep")
    cli = {"health_interval": 7, "api_key": "cli-key", "endpoint_id": "cli-ep", "readonly": None}
    s = load_settings(cli=cli if "cli" in layers else None)
    assert s.health_interval == expected
    top = next((x for x in ("cli", "env", "dotenv", "file") if x in layers), None)
    key = s.api_key.get_secret_value() if s.api_key else None
    assert key == (f"{top}-key" if top else None)
    assert s.endpoint_id == (f"{top}-ep" if top else None)
    assert s.readonly is False  # a flag left at None is "not given"


def test_env_file_argument_and_none(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere.env", "RPDASH_STATUS_INTERVAL=3\n")
    write(tmp_path / ".env", "RPDASH_STATUS_INTERVAL=4\n")
    assert load_settings(env_file=other).status_interval == 3
    assert load_settings().status_interval == 4  # ./.env by default
    assert load_settings(env_file=None).status_interval == 2
    assert load_settings(env_file=tmp_path / "missing.env").status_interval == 2


def test_empty_environment_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_BASE_URL", "")
    monkeypatch.setenv("RUNPOD_API_KEY", "")
    s = load_settings()
    assert s.base_url == DEFAULT_BASE_URL and s.api_key is None


def test_all_settings_from_the_file(cfg: Path, tmp_path: Path) -> None:
    write(
        cfg,
        f"""
api_key = "{SECRET}"
endpoint_id = "abc123"
base_url = "http://127.0.0.1:8080/v2/"
health_interval = 1
status_interval = 0.5
readonly = true
allow_insecure_http = true
history_path = "~/h.sqlite3"
history_retention_days = 0
request_timeout = 12.5
theme = "nord"

[endpoints]
prod = "ep-prod"
"with space" = "ep_2"

[keymap]
quit = "ctrl+q"
cancel_job = ["ctrl+d", "delete"]
""",
    )
    s = load_settings()
    assert s.api_key is not None and s.api_key.get_secret_value() == SECRET
    assert s.base_url == "http://127.0.0.1:8080/v2"  # trailing slash dropped
    assert (s.health_interval, s.status_interval, s.request_timeout) == (1, 0.5, 12.5)
    assert s.readonly and s.allow_insecure_http and s.theme == "nord"
    assert s.history_path == Path.home() / "h.sqlite3"
    assert s.retention_seconds is None  # 0 days: keep everything
    assert s.endpoints == {"prod": "ep-prod", "with space": "ep_2"}
    assert s.keymap == {"quit": "ctrl+q", "cancel_job": "ctrl+d,delete"}
    assert s.config_file == cfg


def test_named_endpoints_watch_order_and_resolve(
    cfg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(cfg, '[endpoints]\nprod = "ep-prod"\nstaging = "ep-stage"\nalias = "main"\n')
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "main")
    monkeypatch.setenv("RPDASH_ENDPOINTS", '{"extra": "ep-extra", "prod": "ep-prod-2"}')
    s = load_settings()
    # tables merge across sources; the environment wins for a name in both
    assert s.endpoints == {
        "prod": "ep-prod-2",
        "staging": "ep-stage",
        "alias": "main",
        "extra": "ep-extra",
    }
    assert s.watched_endpoints() == ["main", "ep-prod-2", "ep-stage", "ep-extra"]
    assert s.resolve_endpoint("staging") == "ep-stage"
    assert s.resolve_endpoint(" prod ") == "ep-prod-2"
    assert s.resolve_endpoint("raw-id-42") == "raw-id-42"
    with pytest.raises(InvalidInput, match="prod"):
        s.resolve_endpoint("../etc")


def test_keymap_from_file_and_env(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(cfg, '[keymap]\nquit = "ctrl+q"\nhelp = " f1 , question_mark "\n')
    monkeypatch.setenv("RPDASH_KEYMAP", '{"quit": "ctrl+x"}')
    assert load_settings().keymap == {"quit": "ctrl+x", "help": "f1,question_mark"}


def test_history_file_locations(cfg: Path, tmp_path: Path) -> None:
    s = load_settings()
    assert s.history_file() == tmp_path / "data" / "history.sqlite3"
    assert s.history_file(demo=True) == tmp_path / "data" / "demo-history.sqlite3"
    write(cfg, f'history_path = "{tmp_path / "mine.db"}"\n')
    s = load_settings()
    assert s.history_file() == tmp_path / "mine.db"
    assert s.history_file(demo=True).name == "demo-history.sqlite3"  # never mixed


# ---------------------------------------------------------------- base URL vs endpoint id


def test_base_url_holding_an_endpoint_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_BASE_URL", "jpnw0v75y3qoql")
    msg = config_error()
    assert msg.startswith("RUNPOD_BASE_URL: looks like an endpoint id, not a URL")
    assert "RUNPOD_ENDPOINT_ID" in msg and "jpnw0v75y3qoql" not in msg


def test_endpoint_id_holding_a_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_ENDPOINT_ID", "https://api.runpod.ai/v2/jpnw0v75y3qoql")
    msg = config_error()
    assert msg.startswith("RUNPOD_ENDPOINT_ID: looks like a URL, not an endpoint id")
    assert "RUNPOD_BASE_URL" in msg and "jpnw0v75y3qoql" not in msg


def test_same_confusion_in_the_file_names_the_file(cfg: Path) -> None:
    write(cfg, 'base_url = "abc123"\n')
    msg = config_error()
    assert msg.startswith(f"{cfg}: base_url: looks like an endpoint id")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://api.runpod.ai/v2",
        "https://",
        "api.runpod.ai/v2",
        "https://x/v2?q=1",
        "http://host:99999/v2",
    ],
)
def test_base_url_must_be_http_url(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_BASE_URL", url)
    msg = config_error()
    assert msg == f"RUNPOD_BASE_URL: must be an http(s) URL such as {DEFAULT_BASE_URL}"


# ---------------------------------------------------------------- invalid config


def test_invalid_toml_names_file_line_and_key(cfg: Path) -> None:
    write(cfg, f'health_interval = 2\n\n[endpoints]\nprod = "ep\napi = {SECRET}\n')
    msg = config_error()
    assert msg.startswith(f"{cfg}: line 4, endpoints.prod: invalid TOML")
    write(cfg, f"api_key = {SECRET}\n")
    msg = config_error()
    assert msg.startswith(f"{cfg}: line 1, api_key: invalid TOML")


def test_wrong_type_names_file_and_key(cfg: Path) -> None:
    write(cfg, f'api_key = "{SECRET}"\nhealth_interval = "fast"\n')
    assert config_error() == f"{cfg}: health_interval: must be a number >= 1 (seconds)"
    write(cfg, "readonly = 3\n[keymap]\nquit = 5\n")
    msg = config_error()
    assert f"{cfg}: readonly: must be true or false" in msg
    assert f"{cfg}: keymap.quit: keys must be a string" in msg
    write(cfg, 'endpoints = "prod"\n')
    assert config_error() == f'{cfg}: endpoints: must be a table of name = "endpoint id"'


def test_interval_floors(cfg: Path) -> None:
    write(cfg, "health_interval = 0.9\n")
    assert config_error() == f"{cfg}: health_interval: must be a number >= 1 (seconds)"
    write(cfg, "status_interval = 0.4\n")
    assert config_error() == f"{cfg}: status_interval: must be a number >= 0.5 (seconds)"
    write(cfg, "request_timeout = 0\n")
    assert config_error() == f"{cfg}: request_timeout: must be a number > 0 (seconds)"
    write(cfg, "status_interval = nan\n")
    assert "status_interval" in config_error()


def test_bad_endpoint_id_in_named_endpoints(cfg: Path) -> None:
    write(cfg, '[endpoints]\nprod = "../../admin"\n')
    assert config_error() == f"{cfg}: endpoints.prod: not a valid endpoint id"


def test_unknown_key_in_the_file(cfg: Path) -> None:
    write(cfg, "helth_interval = 2\n")
    msg = config_error()
    assert msg == f"{cfg}: helth_interval: unknown setting (did you mean health_interval?)"


def test_errors_name_the_variable_or_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPDASH_STATUS_INTERVAL", "0.1")
    assert config_error() == "RPDASH_STATUS_INTERVAL: must be a number >= 0.5 (seconds)"
    monkeypatch.delenv("RPDASH_STATUS_INTERVAL")
    write(tmp_path / ".env", "RPDASH_STATUS_INTERVAL=zero\n")
    assert config_error() == ".env: RPDASH_STATUS_INTERVAL: must be a number >= 0.5 (seconds)"
    msg = config_error(cli={"status_interval": 0.2})
    assert msg == "command line: --status-interval: must be a number >= 0.5 (seconds)"
    assert config_error(cli={"nonsense": 1}) == "command line: nonsense: unknown setting"


def test_bad_json_for_a_table_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPDASH_ENDPOINTS", "prod=abc")
    assert config_error().startswith("RPDASH_ENDPOINTS: must be a JSON object")
    monkeypatch.setenv("RPDASH_ENDPOINTS", '{"prod": "a b"}')
    assert config_error() == "RPDASH_ENDPOINTS [prod]: not a valid endpoint id"


def test_the_key_never_appears_in_an_error(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET[:5] + " " + SECRET[5:])
    assert config_error() == "RUNPOD_API_KEY: must not contain spaces or control characters"
    monkeypatch.delenv("RUNPOD_API_KEY")
    write(cfg, "api_key = 12345\n")
    assert config_error() == f"{cfg}: api_key: must be a string (the RunPod API key)"
    write(cfg, f'api_key = "{SECRET}"\nbase_url = "{SECRET}"\n')
    config_error()  # SECRET not in it (checked by config_error)


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert config_error(config_file=missing) == f"{missing}: config file not found"
    # RPDASH_CONFIG may name a file not written yet (favourites create it later)
    assert load_settings().config_file is None


def test_explicit_config_file_wins_over_rpdash_config(tmp_path: Path, cfg: Path) -> None:
    write(cfg, "health_interval = 3\n")
    other = write(tmp_path / "other.toml", "health_interval = 4\n")
    s = load_settings(config_file=other)
    assert s.health_interval == 4 and s.config_file == other


def test_unreadable_or_directory_config(cfg: Path) -> None:
    cfg.mkdir(parents=True)
    assert config_error(config_file=cfg) == f"{cfg}: is a directory, not a config file"
    cfg.rmdir()
    write(cfg, "").write_bytes(b'theme = "\xff\xfe"\n')
    assert config_error() == f"{cfg}: not UTF-8 text"


# ---------------------------------------------------------------- the key stays secret


def test_api_key_hidden_in_repr_and_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    s = load_settings()
    for text in (
        repr(s),
        str(s),
        f"{s}",
        s.model_dump_json(),
        str(s.model_dump()),
        repr(s.api_key),
        str(s.api_key),
    ):
        assert SECRET not in text
    assert s.api_key is not None and s.api_key.get_secret_value() == SECRET


def test_world_readable_config_gives_a_warning(cfg: Path) -> None:
    write(cfg, f'api_key = "{SECRET}"\n', mode=0o644)
    s = load_settings()
    assert len(s.warnings) == 1
    w = s.warnings[0]
    assert str(cfg) in w and "chmod 600" in w and "0644" in w and SECRET not in w
    os.chmod(cfg, 0o640)
    assert len(load_settings().warnings) == 1  # group-readable counts too
    os.chmod(cfg, 0o600)
    assert load_settings().warnings == []


# ---------------------------------------------------------------- writing the file


def test_write_config_is_private_atomic_and_readable_back(cfg: Path) -> None:
    old = os.umask(0)
    try:
        data = {
            "health_interval": 3.5,
            "readonly": True,
            "endpoints": {"prod": "ep-prod", "my box": "ep_2"},
            "keymap": {"quit": "ctrl+q"},
        }
        assert write_config(cfg, data) == cfg
    finally:
        os.umask(old)
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700
    assert read_config(cfg) == data
    s = load_settings()
    assert s.endpoints == {"prod": "ep-prod", "my box": "ep_2"} and s.warnings == []
    # replace a loose file: the new one is 0600 and nothing is left behind
    os.chmod(cfg, 0o644)
    write_config(cfg, {**data, "theme": "nord"})
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert [p.name for p in cfg.parent.iterdir()] == ["config.toml"]
    assert read_config(cfg)["theme"] == "nord"


def test_write_config_failure_is_a_config_error(tmp_path: Path) -> None:
    blocker = write(tmp_path / "file", "")
    with pytest.raises(ConfigError, match="cannot write"):
        write_config(blocker / "config.toml", {"theme": "x"})
    with pytest.raises(ConfigError, match="not valid Unicode|cannot write config"):
        write_config(tmp_path / "c.toml", {"theme": "\ud800"})
    assert not (tmp_path / "c.toml").exists()


def test_read_config_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_config(tmp_path / "none.toml") == {}


def test_write_config_round_trips_every_kind_of_value(tmp_path: Path) -> None:
    data = {
        "base_url": "http://127.0.0.1:8000/v2",
        "health_interval": 1.5,
        "history_retention_days": 7,
        "readonly": False,
        "endpoints": {"plain": "ep1", "needs quotes.too": "ep2", "ünï": "ep3"},
        "keymap": {"quit": 'ctrl+q "\\ \t\n\x01'},
    }
    path = write_config(tmp_path / "c.toml", data)
    assert tomllib.loads(path.read_text()) == data == read_config(path)


def test_write_config_refuses_what_toml_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write config"):
        write_config(tmp_path / "c.toml", {"a": object()})
    assert not (tmp_path / "c.toml").exists()


# ---------------------------------------------------------------- paths


def test_paths_follow_the_environment(tmp_path: Path) -> None:
    assert paths.config_file() == tmp_path / "cfg" / "config.toml"
    assert paths.data_dir() == tmp_path / "data"
    assert paths.history_file() == tmp_path / "data" / "history.sqlite3"
    assert paths.history_file(demo=True) == tmp_path / "data" / "demo-history.sqlite3"
    assert not (tmp_path / "data").exists() and not (tmp_path / "cfg").exists()


def test_paths_default_to_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RPDASH_CONFIG")
    monkeypatch.delenv("RPDASH_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    if sys.platform.startswith("linux"):
        assert paths.config_file() == tmp_path / "home" / ".config" / "rpdash" / "config.toml"
        assert paths.data_dir() == tmp_path / "home" / ".local" / "share" / "rpdash"
        assert paths.display_path(paths.config_file()) == "~/.config/rpdash/config.toml"
    assert paths.config_file().parent.name == "rpdash"
    assert not (tmp_path / "home").exists()


def test_ensure_private_dir_creates_only_missing_dirs_0700(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    target = existing / "a" / "b"
    old = os.umask(0)
    try:
        assert paths.ensure_private_dir(target) == target
        paths.ensure_private_dir(target)  # again: fine
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o755  # not ours to change


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import sys, rpdash.config, rpdash.paths, rpdash.store, rpdash.store.history;"
        "assert 'textual' not in sys.modules, 'textual imported';"
        "s = rpdash.config.Settings(); print(s.base_url)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RPDASH_", "RUNPOD_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME="",
        XDG_DATA_HOME="",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == DEFAULT_BASE_URL
    assert list(home.iterdir()) == []  # no config or data dir made


def test_settings_constructed_directly_reads_no_files(cfg: Path, tmp_path: Path) -> None:
    write(cfg, "health_interval = 9\n")
    write(tmp_path / ".env", "RPDASH_HEALTH_INTERVAL=8\n")
    s = Settings(health_interval=3)
    assert s.health_interval == 3 and Settings().health_interval == 5.0


# ---------------------------------------------------------------- .env.example

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_env_example_lists_every_variable_with_a_comment() -> None:
    from rpdash.config import env_name

    lines = ENV_EXAMPLE.read_text().splitlines()
    names = [ln.split("=", 1)[0] for ln in lines if ln and not ln.startswith("#")]
    expected = {env_name(f) for f in Settings.model_fields} | {"RPDASH_CONFIG", "RPDASH_DATA_DIR"}
    assert set(names) == expected and len(names) == len(expected)
    for i, ln in enumerate(lines):
        if ln and not ln.startswith("#"):
            assert lines[i - 1].startswith("# "), f"{ln} has no comment line above it"


def test_env_example_copied_as_is_gives_defaults(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    s = load_settings()
    assert s.base_url == DEFAULT_BASE_URL and s.api_key is None and s.health_interval == 5.0


def test_account_worker_cap_from_file_and_env(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().account_worker_cap is None  # unknown: rpdash does not guess 5
    write(cfg, "account_worker_cap = 10\n")
    assert load_settings().account_worker_cap == 10
    monkeypatch.setenv("RPDASH_ACCOUNT_WORKER_CAP", "20")
    assert load_settings().account_worker_cap == 20
    monkeypatch.delenv("RPDASH_ACCOUNT_WORKER_CAP")
    write(cfg, "account_worker_cap = 0\n")
    assert config_error() == (f"{cfg}: account_worker_cap: must be a whole number >= 1 "
                              "(workers over all endpoints of the account)")  # fmt: skip
