"""What a ``.env`` in the working directory may do (issue 17.1), and credentials that must
not hide in a base URL: a cloned repository's ``.env`` can neither allow plain http nor
send the key from your shell to a host you never chose; ``user:pw@`` in any base URL is
refused; a ``.env`` holding a key that others can read gets a warning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rpdash.config import load_settings
from rpdash.core.errors import ConfigError
from tests.unit.test_config import SECRET, cfg, clean_env, config_error, write  # noqa: F401

COLLECTOR = "https://collector.example/v2"


def dotenv(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    return write(tmp_path / ".env", text, mode)


# ---------------------------------------------------------------- plain http


def test_a_dotenv_cannot_allow_plain_http(tmp_path: Path, cfg: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv(tmp_path, "RPDASH_ALLOW_INSECURE_HTTP=true\n")
    s = load_settings()
    assert s.allow_insecure_http is False
    assert len(s.warnings) == 1
    assert s.warnings[0].startswith(".env: RPDASH_ALLOW_INSECURE_HTTP ignored")
    # the user's own places still can
    write(cfg, "allow_insecure_http = true\n")
    assert load_settings().allow_insecure_http is True
    monkeypatch.setenv("RPDASH_ALLOW_INSECURE_HTTP", "true")
    s = load_settings()
    assert s.allow_insecure_http is True and s.warnings == []
    monkeypatch.delenv("RPDASH_ALLOW_INSECURE_HTTP")
    cfg.unlink()
    assert load_settings(cli={"allow_insecure_http": True}).allow_insecure_http is True


# ---------------------------------------------------------------- where the key goes


@pytest.mark.parametrize("key_from", ["env", "file", "cli", "endpoint_keys"])
def test_a_dotenv_host_is_refused_with_a_key_from_elsewhere(
    key_from: str, tmp_path: Path, cfg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dotenv(tmp_path, f"RUNPOD_BASE_URL={COLLECTOR}\n")
    cli = None
    if key_from == "env":
        monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    elif key_from == "file":
        write(cfg, f'api_key = "{SECRET}"\n')
    elif key_from == "cli":
        cli = {"api_key": SECRET}
    else:
        monkeypatch.setenv("RPDASH_ENDPOINT_KEYS", f'{{"prod": "{SECRET}"}}')
    msg = config_error(cli=cli)
    assert msg.startswith(".env: RUNPOD_BASE_URL sends requests to https://collector.example,"
                          " which is not RunPod")
    assert "--base-url" in msg and "RUNPOD_API_KEY" in msg


def test_a_dotenv_with_its_own_key_is_a_setup_of_its_own_and_says_so(tmp_path: Path) -> None:
    dotenv(tmp_path, f"RUNPOD_BASE_URL={COLLECTOR}\nRUNPOD_API_KEY={SECRET}\n")
    s = load_settings()
    assert s.base_url == COLLECTOR
    assert s.warnings == [".env: RUNPOD_BASE_URL sends requests to https://collector.example, "
                          "not to RunPod"]


@pytest.mark.parametrize("url", ["https://api.runpod.ai/v2", "http://127.0.0.1:8000/v2",
                                 "http://localhost:9/v2", "http://[::1]:8000/v2"])
def test_runpod_and_this_machine_are_fine_from_a_dotenv(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    dotenv(tmp_path, f"RUNPOD_BASE_URL={url}\n")
    s = load_settings()
    assert s.base_url == url and s.warnings == []


@pytest.mark.parametrize("url", ["http://api.runpod.ai/v2", "https://api.runpod.ai.example/v2",
                                 "https://x.api.runpod.ai/v2"])
def test_lookalikes_of_runpod_are_not_runpod(url: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    dotenv(tmp_path, f"RUNPOD_BASE_URL={url}\n")
    assert "which is not RunPod" in config_error()


def test_choosing_the_host_yourself_wins_over_the_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", SECRET)
    dotenv(tmp_path, "RUNPOD_BASE_URL=https://collector.example/v2\n")
    s = load_settings(cli={"base_url": "https://mine.example/v2"})
    assert s.base_url == "https://mine.example/v2" and s.warnings == []
    monkeypatch.setenv("RUNPOD_BASE_URL", "https://mine.example/v2")
    s = load_settings()
    assert s.base_url == "https://mine.example/v2" and s.warnings == []


# ---------------------------------------------------------------- user:pw@ in a URL


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:8000/v2",
                                 "https://hunter2@host/v2", "https://:hunter2@host/v2"])
def test_credentials_in_the_base_url_are_refused(url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_BASE_URL", url)
    msg = config_error()
    assert msg.startswith("RUNPOD_BASE_URL: must not hold a user name or password")
    assert "hunter2" not in msg


@pytest.mark.parametrize("url", ["http://user:hunter2@127.0.0.1:8000",
                                 "https://hunter2@api.runpod.io"])
def test_credentials_in_a_control_plane_or_client_url_are_refused(url: str) -> None:
    """RUNPOD_API_BASE_URL and --control-url reach the control-plane client without the
    settings' checks: the clients refuse them too (httpx would send Basic auth)."""
    from rpdash.api.client import RunPodClient
    from rpdash.api.control import ControlClient

    with pytest.raises(ConfigError) as e:
        ControlClient(SECRET, url)
    assert "user name or password" in str(e.value) and "hunter2" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        RunPodClient(SECRET, url + "/v2")
    assert "user name or password" in str(e.value) and "hunter2" not in str(e.value)


# ---------------------------------------------------------------- .env permissions


def test_a_dotenv_holding_a_key_readable_by_others_gets_a_warning(tmp_path: Path) -> None:
    env = dotenv(tmp_path, f"RUNPOD_API_KEY={SECRET}\n", mode=0o644)
    s = load_settings()
    assert len(s.warnings) == 1
    w = s.warnings[0]
    assert ".env can be read by other users (mode 0644)" in w and "chmod 600" in w
    assert SECRET not in w
    os.chmod(env, 0o600)
    assert load_settings().warnings == []
    dotenv(tmp_path, "RPDASH_HEALTH_INTERVAL=3\n", mode=0o644)  # no key in it: nothing to say
    assert load_settings().warnings == []
    dotenv(tmp_path, f'RPDASH_ENDPOINT_KEYS={{"prod": "{SECRET}"}}\n', mode=0o640)
    assert len(load_settings().warnings) == 1
