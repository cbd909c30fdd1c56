"""The firmware simulator: a building's desk sensors, people counters and
environment sensors, with realistic behaviour on a simulated clock.

``load_scenario("demo")`` describes the building; ``build_drivers`` makes a
driver per device; ``firmware_sim.runner.run_sim`` runs them all, each behind
its own edge agent. Only ``runner`` imports ``edge_agent``: the models and
scenarios import nothing but ``ikn_core`` and the standard library.
"""

from firmware_sim.behaviour import (
    BadgeBehaviour,
    CounterBehaviour,
    DeskBehaviour,
    EnvironmentBehaviour,
)
from firmware_sim.clock import ScaledClock, SimClock, VirtualClock
from firmware_sim.devices import (
    DeskSensor,
    EnvironmentSensor,
    Occupancy,
    PeopleCounter,
    SimDriver,
    build_drivers,
)
from firmware_sim.errors import ScenarioError, SimError
from firmware_sim.scenario import (
    DevicePlan,
    Scenario,
    builtin_names,
    load_scenario,
    scenario_from_dict,
)

__all__ = [
    "BadgeBehaviour",
    "CounterBehaviour",
    "DeskBehaviour",
    "DeskSensor",
    "DevicePlan",
    "EnvironmentBehaviour",
    "EnvironmentSensor",
    "Occupancy",
    "PeopleCounter",
    "ScaledClock",
    "Scenario",
    "ScenarioError",
    "SimClock",
    "SimDriver",
    "SimError",
    "VirtualClock",
    "build_drivers",
    "builtin_names",
    "load_scenario",
    "scenario_from_dict",
]
