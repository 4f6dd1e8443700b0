"""`rpdash sim`: the incident drills and the pickup knob are discoverable from the command line."""

from __future__ import annotations

import subprocess
import sys

from rpdash.sim.scenarios import scenario_catalog

INCIDENTS = ("crashloop", "retry-storm", "gpu-shortage", "stuck-progress", "bad-release", "worker-cap")


def _rpdash(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rpdash", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_sim_help_lists_every_scenario_with_its_line(tmp_path):
    p = _rpdash(tmp_path, "sim", "--help")
    assert p.returncode == 0
    assert "--pickup" in p.stdout
    listed = p.stdout.split("scenarios:", 1)[1]
    for name, text in scenario_catalog():
        assert any(line.split() and line.split()[0] == name and text in line
                   for line in listed.splitlines()), name  # fmt: skip
    for name in INCIDENTS:
        assert name in listed


def test_list_scenarios_prints_one_line_each(tmp_path):
    p = _rpdash(tmp_path, "sim", "--list-scenarios")
    assert p.returncode == 0
    assert [ln.split()[0] for ln in p.stdout.splitlines()] == [n for n, _ in scenario_catalog()]


def test_an_unknown_pickup_order_is_one_line_and_exit_2(tmp_path):
    p = _rpdash(tmp_path, "sim", "--pickup", "lifo", "--port", "0")
    assert p.returncode == 2
    assert "unknown pickup order 'lifo'" in p.stderr
    assert "Traceback" not in p.stderr
