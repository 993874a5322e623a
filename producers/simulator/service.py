"""`tillflow simulate` without the command line: a run's plan from a scenario, options and settings, and the run.

The command (producers/simulator/commands.py) parses options, shows progress and prints the summary; what
those options mean (a scenario's keys, the defaults from the settings, the incidents injected) and how a run
sends its events and stops lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from producers.simulator.incidents import incident_from
from producers.simulator.output import Sink, Summary, paced
from producers.simulator.simulation import InjectedIncident, SimulationConfig, injected, simulate
from schemas.catalogue import Catalogue
from tillflow.documents import read_document
from tillflow.errors import ConfigError
from tillflow.settings import Settings

SCENARIO_KEYS = {"seed", "start", "days", "fps", "catalogue", "incidents"}


def load_scenario(path: Path) -> dict[str, Any]:
    """A YAML scenario: optional ``seed``, ``start``, ``days``, ``fps``, ``catalogue`` and ``incidents``
    (each a CLI string or a mapping with ``kind`` and the incident's keys)."""
    data = read_document(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of seed, start, days, fps, catalogue, incidents")
    unknown = sorted(set(data) - SCENARIO_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}")
    if not isinstance(data.get("incidents", []), list):
        raise ConfigError(f"{path}: incidents: expected a list")
    return data


def start_date(value: Any) -> date:
    """The first simulated date: a date, an ISO date string, or None for today (UTC)."""
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"--start {value!r}: expected a date YYYY-MM-DD") from None


def plan_run(
    settings: Settings,
    catalogue: Catalogue,
    scenario: dict[str, Any],
    *,
    seed: int | None = None,
    start: str | None = None,
    days: int | None = None,
    fps: float | None = None,
    incidents: list[str] | None = None,
    staffing: bool = True,
) -> tuple[SimulationConfig, list[InjectedIncident]]:
    """The run's configuration (an option wins over the scenario, the scenario over the settings) and the
    ground truth of what it injects."""
    first = start_date(start if start is not None else scenario.get("start"))
    try:
        chosen = [incident_from(i) for i in scenario.get("incidents", [])]
        chosen += [incident_from(i) for i in incidents or []]
        config = SimulationConfig(
            seed=seed if seed is not None else int(scenario.get("seed", 0)),
            start=first,
            days=days if days is not None else int(scenario.get("days", 1)),
            fps=fps if fps is not None else float(scenario.get("fps", settings.simulator_fps)),
            incidents=chosen,
            source=settings.simulator_source,
            staffing=staffing,
        )
        return config, injected(catalogue, config)
    except ConfigError:
        raise
    except ValueError as exc:  # a scenario value of the wrong type
        raise ConfigError(str(exc)) from None


def run(
    catalogue: Catalogue,
    config: SimulationConfig,
    sink: Sink,
    pace: float | None,
    summary: Summary,
    on_hours: Callable[[int], None] = lambda hours: None,
) -> bool:
    """Send the simulation's events to ``sink`` at ``pace`` (None: as fast as possible), counting them in
    ``summary``; ``on_hours`` hears the simulated hours done now and then. False when interrupted (Ctrl-C, or
    SIGTERM turned into it): what was sent so far stays sent."""
    try:
        for ev in paced(simulate(catalogue, config), pace):
            sink.send(ev.topic, ev.record)
            summary.add(ev)
            if summary.events % 5000 == 0 and summary.first is not None:
                on_hours(int((ev.emit_at - summary.first).total_seconds() // 3600))
    except KeyboardInterrupt:
        return False
    return True
