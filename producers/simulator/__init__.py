"""The store simulator: a seeded, realistic estate of POS tickets and per-frame camera counts.

``simulate(catalogue, SimulationConfig(...))`` yields :class:`SimEvent` in emit order; ``injected`` gives the
ground truth of the incidents it injected.
"""

from producers.simulator.engine import DayPlan, SimEvent, SimulationConfig, injected, plan_day, plans, simulate
from producers.simulator.incidents import Incident, IncidentError, InjectedIncident, parse_incident

__all__ = [
    "DayPlan",
    "Incident",
    "IncidentError",
    "InjectedIncident",
    "SimEvent",
    "SimulationConfig",
    "injected",
    "parse_incident",
    "plan_day",
    "plans",
    "simulate",
]
