"""The store simulator: a seeded, realistic estate of POS tickets and per-frame camera counts.

``simulate(catalogue, SimulationConfig(...))`` yields :class:`SimEvent` in emit order; ``injected`` gives the
ground truth of the incidents it injected. Names load on first use, so ``tillflow --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producers.simulator.incidents import (
        Incident,
        IncidentError,
        InjectedIncident,
        expected_alerts,
        parse_incident,
    )
    from producers.simulator.simulation import DayPlan, SimEvent, SimulationConfig, injected, plan_day, plans, simulate

_WHERE = {
    "DayPlan": "simulation",
    "SimEvent": "simulation",
    "SimulationConfig": "simulation",
    "injected": "simulation",
    "plan_day": "simulation",
    "plans": "simulation",
    "simulate": "simulation",
    "Incident": "incidents",
    "IncidentError": "incidents",
    "InjectedIncident": "incidents",
    "parse_incident": "incidents",
    "expected_alerts": "incidents",
}

__all__ = [
    "DayPlan",
    "Incident",
    "IncidentError",
    "InjectedIncident",
    "SimEvent",
    "SimulationConfig",
    "expected_alerts",
    "injected",
    "parse_incident",
    "plan_day",
    "plans",
    "simulate",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"producers.simulator.{module}"), name)
