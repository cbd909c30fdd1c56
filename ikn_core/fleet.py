"""The domain errors of the device fleet: the registry and the commands sent to devices.

IknError
└── FleetError
    ├── DeviceError    kind: "exists" | "unknown-device" | "unknown-place" |
    │                  "desk-taken" | "desk-required"; ``field`` names the input
    └── CommandError   kind: "unknown-device" | "disabled" | "exists"
"""

from __future__ import annotations

from ikn_core.errors import IknError


class FleetError(IknError):
    """Base of the fleet's refusals; ``kind`` says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class DeviceError(FleetError):
    """A registry change refused; ``kind`` says why, ``field`` names the input."""

    def __init__(self, kind: str, field: str, message: str) -> None:
        super().__init__(kind, message)
        self.field = field


class CommandError(FleetError):
    """A command refused (no such device, disabled, its id used before)."""


class CommandNotPublished(CommandError):
    """The broker did not take a stored command (it is marked failed)."""

    def __init__(self, message: str) -> None:
        super().__init__("broker-unavailable", message)
