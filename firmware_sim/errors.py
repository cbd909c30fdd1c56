"""The exceptions of the simulator.

IknError (ikn_core.errors)
└── SimError            base of everything the simulator raises on purpose
    ├── ScenarioError   a scenario cannot be found or does not describe a valid site
    └── FaultError      a ``--fault`` switch is malformed or does not fit the run
"""

from __future__ import annotations

from ikn_core.errors import IknError


class SimError(IknError):
    """Base of every error raised on purpose by ``firmware_sim``."""


class ScenarioError(SimError):
    """``source`` (a builtin name or a path) is missing or wrong at ``path`` (``floors[1].key``)."""

    def __init__(self, source: str, detail: str, path: str = "") -> None:
        self.source = source
        self.detail = detail
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"scenario {source}{where}: {detail}")


class FaultError(SimError):
    """The fault switch ``spec`` (``duplicate=2``) is wrong: ``detail`` says why."""

    def __init__(self, spec: str, detail: str) -> None:
        self.spec = spec
        self.detail = detail
        super().__init__(f"--fault {spec}: {detail}")
