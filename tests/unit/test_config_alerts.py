"""The ``[alerts]`` and ``[prices]`` tables of the settings: what a user gets when they are
absent, how a per-endpoint override is found (by name or id), and the one line naming the
key when a value is wrong (never a traceback, never the value)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rpdash.config import load_settings
from rpdash.services.cost import DEFAULT_PRICES
from tests.unit.test_config import cfg, clean_env, config_error, write  # noqa: F401


def test_defaults_when_the_tables_are_absent(cfg: Path) -> None:
    write(cfg, 'endpoint_id = "abc123"\n')
    s = load_settings()
    rules = s.alerts_for("abc123")
    assert s.alerts.enabled and s.alerts.endpoints == {}
    assert (rules.queue_above, rules.queue_for, rules.unhealthy_for, rules.recover_for) == (20, 120.0, 60.0, 30.0)
    assert s.prices.price("ADA_24") == DEFAULT_PRICES["ADA_24"]
    assert s.prices.price("NVIDIA GeForce RTX 4090") == DEFAULT_PRICES["ADA_24"]


def test_alert_and_price_tables_are_read(cfg: Path) -> None:
    write(cfg, """
[alerts]
queue_above = 50
queue_for = "5m"
disabled = ["p90_delay"]
severity = { queue = "critical" }

[prices]
as_of = "2026-11-30"
ADA_24 = 0.0005
[prices.AMPERE_80]
flex = 0.0008
active = 0.0006
""")
    s = load_settings()
    rules = s.alerts_for("anything")
    assert (rules.queue_above, rules.queue_for) == (50, 300.0)
    assert not rules.on("p90_delay") and rules.severity_of("queue") == "critical"
    assert s.prices.as_of == "2026-11-30" and s.prices.price("ADA_24") == 0.0005
    assert s.prices.price("AMPERE_80") == 0.0008 and s.prices.price("AMPERE_80", active=True) == 0.0006
    assert s.prices.price("AMPERE_16") == DEFAULT_PRICES["AMPERE_16"]  # the rest keep the defaults


def test_per_endpoint_override_by_name_or_by_id(cfg: Path) -> None:
    write(cfg, """
[endpoints]
prod = "abc123"

[alerts]
queue_above = 50

[alerts.endpoints.prod]
queue_above = 5

[alerts.endpoints.def456]
unhealthy_for = "10m"
""")
    s = load_settings()
    by_name, by_id, other = s.alerts_for("abc123"), s.alerts_for("def456"), s.alerts_for("zzz999")
    assert by_name.queue_above == 5 and by_name.unhealthy_for == 60.0
    assert by_id.queue_above == 50 and by_id.unhealthy_for == 600.0  # only what it sets changes
    assert other.queue_above == 50 and other.unhealthy_for == 60.0


def test_alerts_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RPDASH_ALERTS", '{"queue_above": 7, "endpoints": {"abc123": {"enabled_rules": 1}}}')
    msg = config_error()
    assert msg == "RPDASH_ALERTS [endpoints.abc123.enabled_rules]: unknown setting"
    monkeypatch.setenv("RPDASH_ALERTS", '{"queue_above": 7}')
    assert load_settings().alerts_for("abc123").queue_above == 7


@pytest.mark.parametrize("text, expected", [
    ("[alerts]\nqueue_above = -1\n", "alerts.queue_above: input should be greater than or equal to 0"),
    ('[alerts]\nqueue_for = "soon"\n', 'alerts.queue_for: must be a duration: seconds, or e.g. "90s", "5m", "1h"'),
    ("[alerts]\nqueue_abov = 3\n", "alerts.queue_abov: unknown setting"),
    ('[alerts]\ndisabled = ["queues"]\n', "alerts.disabled.0: input should be 'queue', "),
    ('[alerts.endpoints.prod]\nseverity = { queue = "loud" }\n',
     "alerts.endpoints.prod.severity.queue: input should be 'info', 'warn' or 'critical'"),
    ("alerts = 3\n", "alerts: must be a table of alert settings"),
    ('[prices]\nADA_24 = "cheap"\n', "prices.ADA_24: must be a price in USD per GPU-second"),
    ("[prices.AMPERE_80]\nflex = -1\n", "prices.AMPERE_80.flex: input should be greater than or equal to 0"),
])  # fmt: skip
def test_a_bad_value_is_one_line_naming_file_and_key(cfg: Path, text: str, expected: str) -> None:
    write(cfg, text)
    msg = config_error()
    where, what = msg.split(": ", 1)
    assert where.endswith("config.toml") and what.startswith(expected), msg
    assert "soon" not in msg and "loud" not in msg and "cheap" not in msg  # never the value
