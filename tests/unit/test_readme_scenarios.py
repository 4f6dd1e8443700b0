"""The README's simulator section lists every scenario, one line each, as
``rpdash sim --list-scenarios`` prints them, and its incident drills run."""

from __future__ import annotations

import re
from pathlib import Path

from rpdash.sim.scenarios import pickup_orders, scenario_catalog, scenario_names

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def readme_scenarios() -> list[tuple[str, str]]:
    """(name, line) of the fenced scenario list under "Scenarios (" in the sim section."""
    sim = _section(README.read_text(encoding="utf-8"), "The simulator")
    block = sim.split("Scenarios (", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    return [tuple(ln.strip().split(None, 1)) for ln in block.splitlines() if ln.strip()]  # type: ignore[misc]


def test_the_readme_lists_every_scenario_as_the_catalog_says():
    assert readme_scenarios() == scenario_catalog()


def test_the_readme_drills_and_pickup_orders_are_real():
    sim = _section(README.read_text(encoding="utf-8"), "The simulator")
    drills = re.findall(r"rpdash --demo --scenario ([\w-]+)", sim)
    assert "crashloop" in drills
    assert set(drills) <= set(scenario_names())
    assert f"--pickup {'|'.join(pickup_orders())}" in sim
    top = README.read_text(encoding="utf-8").split("\n## ", 1)[0]
    assert "rpdash --demo --scenario crashloop" in top  # the demo line names a drill
