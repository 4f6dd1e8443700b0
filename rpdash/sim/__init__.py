"""The RunPod serverless simulator (no Textual; nothing heavy at import).

``SimServer`` / ``serve`` (server.py), ``Engine`` (engine.py), ``Faults`` (faults.py) and
the scenarios are imported lazily, so ``import rpdash.sim`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rpdash.sim.engine import EndpointConfig, Engine
    from rpdash.sim.control import ControlPlane
    from rpdash.sim.faults import Faults, FaultSpec
    from rpdash.sim.scenarios import get_scenario, scenario_names
    from rpdash.sim.server import SimServer, create_app, serve

_EXPORTS = {
    "SimServer": "rpdash.sim.server",
    "create_app": "rpdash.sim.server",
    "serve": "rpdash.sim.server",
    "Engine": "rpdash.sim.engine",
    "EndpointConfig": "rpdash.sim.engine",
    "Faults": "rpdash.sim.faults",
    "ControlPlane": "rpdash.sim.control",
    "FaultSpec": "rpdash.sim.faults",
    "get_scenario": "rpdash.sim.scenarios",
    "scenario_names": "rpdash.sim.scenarios",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rpdash.sim' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
