"""The domain errors of the device fleet: the registry and the commands sent to devices.

IknError
└── FleetError
    ├── DeviceError    kind: "exists" | "unknown-device" | "unknown-place" |
    │                  "desk-taken" | "desk-required"; ``field`` names the input
    └── CommandError   kind: "unknown-device" | "disabled" | "exists"
"""

from __future__ import annotations

from collections.abc import Mapping

from ikn_core.contract.identifiers import ID
from ikn_core.domain import Device, DeviceKind
from ikn_core.errors import IknError
from ikn_core.fields import InvalidField


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


MIN_INTERVAL_S, MAX_INTERVAL_S = 10, 86_400  # a device's expected reporting interval
NEW_DEVICE_FIELDS = ("id", "kind", "building", "zone", "desk", "expected_interval_s")


def _place_id(body: Mapping[str, object], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise InvalidField(name, "must be 1-64 letters, digits, '-' or '_'", "id")
    return value


def new_device(body: Mapping[str, object]) -> tuple[Device, int]:
    """A device to register and its expected interval (default 300 s) from ``body``
    (the API's JSON, the console's form), checked: ``InvalidField`` naming the field."""
    unknown = sorted(set(body) - set(NEW_DEVICE_FIELDS))
    if unknown:
        raise InvalidField(
            unknown[0], f"unknown field; use {', '.join(sorted(NEW_DEVICE_FIELDS))}", "unknown"
        )
    device_id = _place_id(body, "id", required=True)
    kinds = [k.value for k in DeviceKind]
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in kinds:
        raise InvalidField("kind", f"must be one of {', '.join(kinds)}", "kind")
    building = _place_id(body, "building", required=True)
    zone = _place_id(body, "zone", required=False)
    desk = _place_id(body, "desk", required=False)
    interval = body.get("expected_interval_s", 300)
    if type(interval) is not int or not MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S:
        raise InvalidField(
            "expected_interval_s",
            f"must be a whole number {MIN_INTERVAL_S}-{MAX_INTERVAL_S}",
            "interval",
        )
    if DeviceKind(kind) is DeviceKind.DESK_SENSOR and desk is None:
        raise InvalidField("desk", "a desk sensor needs a desk", "desk-required")
    assert device_id is not None and building is not None  # required above
    return Device(device_id, DeviceKind(kind), building, zone, desk), interval
