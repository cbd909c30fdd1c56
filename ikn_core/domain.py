"""The space hierarchy and device registry, as value objects.

A ``Site`` holds buildings → floors → zones → desks, and the devices placed in
them. Each building has an IANA time zone; IKN's is ``Asia/Makassar`` (WITA,
UTC+8) and every "day" is computed in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ikn_core.contract.topics import check_device_id

IKN_TIME_ZONE = "Asia/Makassar"  # the default zone of a building, declared only here
IKN_ZONE = ZoneInfo(IKN_TIME_ZONE)


class DeviceKind(StrEnum):
    DESK_SENSOR = "desk_sensor"
    BADGE_READER = "badge_reader"
    PEOPLE_COUNTER = "people_counter"
    ENVIRONMENT = "environment"


# The reading kinds each kind of device sends: its own, and the answers to commands
# (every device takes them). Anything else from it is a dead letter (wrong_kind).
READING_KINDS: dict[DeviceKind, frozenset[str]] = {
    DeviceKind.DESK_SENSOR: frozenset({"desk_occupancy", "command_result"}),
    DeviceKind.BADGE_READER: frozenset({"badge_tap", "command_result"}),
    DeviceKind.PEOPLE_COUNTER: frozenset({"people_count", "command_result"}),
    DeviceKind.ENVIRONMENT: frozenset({"environment", "command_result"}),
}


class DeskState(StrEnum):
    """What the live view says of a desk."""

    OCCUPIED = "occupied"
    FREE = "free"
    UNKNOWN = "unknown"  # no sensor, or the sensor has not reported yet


def _require_id(kind: str, value: str) -> None:
    if not value or len(value) > 64 or not value.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"{kind} id {value!r} must be 1-64 letters, digits, '-' or '_'")


@dataclass(frozen=True, slots=True)
class Building:
    id: str
    name: str
    tz: str = IKN_TIME_ZONE

    def __post_init__(self) -> None:
        _require_id("building", self.id)
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"building {self.id}: {self.tz!r} is not an IANA time zone") from exc

    @property
    def zone_info(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclass(frozen=True, slots=True)
class Floor:
    id: str
    building_id: str
    name: str
    level: int

    def __post_init__(self) -> None:
        _require_id("floor", self.id)


@dataclass(frozen=True, slots=True)
class Zone:
    id: str
    floor_id: str
    name: str

    def __post_init__(self) -> None:
        _require_id("zone", self.id)


@dataclass(frozen=True, slots=True)
class Desk:
    id: str
    zone_id: str
    name: str
    x: float
    y: float
    equipment: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_id("desk", self.id)


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device; its place is a desk, a zone, or a building's door."""

    id: str
    kind: DeviceKind
    building_id: str
    zone_id: str | None = None
    desk_id: str | None = None

    def __post_init__(self) -> None:
        check_device_id(self.id)
        if self.kind is DeviceKind.DESK_SENSOR and self.desk_id is None:
            raise ValueError(f"device {self.id}: a desk sensor needs a desk")


@dataclass(frozen=True, slots=True)
class Site:
    """A whole space model: what a scenario describes and ``ikn_store`` loads."""

    buildings: tuple[Building, ...]
    floors: tuple[Floor, ...] = ()
    zones: tuple[Zone, ...] = ()
    desks: tuple[Desk, ...] = ()
    devices: tuple[Device, ...] = field(default=())

    def __post_init__(self) -> None:
        for kind, items in (
            ("building", self.buildings),
            ("floor", self.floors),
            ("zone", self.zones),
            ("desk", self.desks),
            ("device", self.devices),
        ):
            ids = [item.id for item in items]
            if len(set(ids)) != len(ids):
                twice = sorted({i for i in ids if ids.count(i) > 1})
                raise ValueError(f"{kind} id(s) used twice: {', '.join(twice)}")
        known = {
            "building": {b.id for b in self.buildings},
            "floor": {f.id for f in self.floors},
            "zone": {z.id for z in self.zones},
            "desk": {d.id for d in self.desks},
        }
        refs = (
            [("building", f.building_id, f.id) for f in self.floors]
            + [("floor", z.floor_id, z.id) for z in self.zones]
            + [("zone", d.zone_id, d.id) for d in self.desks]
            + [("building", d.building_id, d.id) for d in self.devices]
            + [("zone", d.zone_id, d.id) for d in self.devices if d.zone_id]
            + [("desk", d.desk_id, d.id) for d in self.devices if d.desk_id]
        )
        for kind, ref, owner in refs:
            if ref not in known[kind]:
                raise ValueError(f"{owner} refers to unknown {kind} {ref!r}")


class Role(StrEnum):
    EMPLOYEE = "employee"
    DELEGATE = "delegate"
    SUPERVISOR = "supervisor"
    FACILITY_MANAGER = "facility_manager"
    ADMIN = "admin"
