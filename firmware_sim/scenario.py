"""Scenarios: a building to simulate, described compactly in JSON.

A scenario names one building and its floors; each floor has zones, and each
zone ``desks`` desks laid out on a grid (``columns``, ``origin`` and ``pitch``
in metres on the floor plan) with equipment given by rules on the desk number.
From that the loader derives the site (:class:`ikn_core.domain.Site`) and the
devices, each with its behaviour parameters:

- ``desk-<desk id>`` on every desk (desk ids read ``f1-a-01``: floor, zone, number),
- ``pc-<floor>-<zone>``, a people counter per zone,
- ``env-<floor>``, an environment sensor per floor (placed in the floor's first
  zone, since a device's place is a building, zone or desk),
- ``badge-<door>``, a badge reader per entry of ``doors`` (in the first zone), with
  its population and arrival waves (``BadgeBehaviour``; ``behaviour.badge_reader``
  for every door, or the door's own ``badge_reader`` object).

Builtin scenarios live in ``firmware_sim/scenarios/<name>.json``; ``demo`` is
the one ``ikn demo`` runs. See that file for every field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from firmware_sim.behaviour import (
    BadgeBehaviour,
    Behaviour,
    CounterBehaviour,
    DeskBehaviour,
    EnvironmentBehaviour,
)
from firmware_sim.errors import ScenarioError
from firmware_sim.jsondoc import Node
from ikn_core.domain import IKN_TIME_ZONE, Building, Desk, Device, DeviceKind, Floor, Site, Zone
from ikn_core.errors import ContractError

B = TypeVar("B", DeskBehaviour, CounterBehaviour, EnvironmentBehaviour, BadgeBehaviour)


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_HasId)
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TAG = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """One simulated device: its registration, behaviour, and the zones it senses
    (a people counter its zone, an environment sensor every zone of its floor)."""

    device: Device
    behaviour: Behaviour
    zones: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A building to simulate: its site (spaces and devices) and each device's plan."""

    name: str
    site: Site
    plans: tuple[DevicePlan, ...]
    description: str = ""

    @property
    def building(self) -> Building:
        return self.site.buildings[0]

    def plan(self, device_id: str) -> DevicePlan:
        for p in self.plans:
            if p.device.id == device_id:
                return p
        raise KeyError(device_id)


def builtin_names() -> list[str]:
    """The names ``load_scenario`` finds without a path."""
    return sorted(
        p.name.removesuffix(".json") for p in _builtin_dir().iterdir() if p.name.endswith(".json")
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A builtin scenario by name (``"demo"``), or a scenario file by path (``*.json``)."""
    text, source = _read(name_or_path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(source, f"not JSON: {exc}") from None
    return scenario_from_dict(doc, source)


def scenario_from_dict(doc: object, source: str = "<dict>") -> Scenario:
    """Build and check a scenario from its JSON document."""
    root = Node(source, doc, "", _ROOT_KEYS)
    layout = _Layout(source, root)
    for floor in root.children("floors", _FLOOR_KEYS):
        layout.add_floor(floor)
    if not layout.desks:
        raise root.error("describes no desk", "floors")
    for door in root.children("doors", _DOOR_KEYS):
        layout.add_door(door)
    try:
        site = Site(
            buildings=(layout.building,),
            floors=tuple(layout.floors),
            zones=tuple(layout.zones),
            desks=tuple(layout.desks),
            devices=tuple(p.device for p in layout.plans),
        )
    except ValueError as exc:
        raise ScenarioError(source, str(exc)) from None
    return Scenario(
        name=root.text("name", Path(source).stem),
        site=site,
        plans=tuple(layout.plans),
        description=root.text("description", ""),
    )


# -- reading -----------------------------------------------------------------------------

_ROOT_KEYS = (
    "name",
    "description",
    "building",
    "floors",
    "doors",
    "desk_pitch",
    "equipment",
    "behaviour",
)
_DOOR_KEYS = ("key", "badge_reader")
_BUILDING_KEYS = ("id", "name", "tz")
_FLOOR_KEYS = ("key", "name", "level", "zones", "environment_sensor")
_ZONE_KEYS = (
    "key",
    "name",
    "desks",
    "columns",
    "origin",
    "pitch",
    "equipment",
    "desk_behaviour",
    "people_counter",
)
_RULE_KEYS = ("tag", "every", "desks")


def _builtin_dir() -> Traversable:
    return resources.files("firmware_sim") / "scenarios"


def _read(name_or_path: str | Path) -> tuple[str, str]:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".json") or "/" in text or "\\" in text:
        try:
            return Path(text).read_text(encoding="utf-8"), text
        except OSError as exc:
            raise ScenarioError(text, f"cannot read it: {exc.strerror}") from None
    builtin = _builtin_dir() / f"{text}.json"
    if not _NAME.fullmatch(text) or not builtin.is_file():
        known = ", ".join(builtin_names())
        raise ScenarioError(text, f"no such builtin scenario (there are: {known}); or give a path")
    return builtin.read_text(encoding="utf-8"), text


def _behaviour(node: Node | None, base: B) -> B:
    """``base`` with the fields ``node`` sets (durations, shares, ranges)."""
    if node is None:
        return base
    values: dict[str, Any] = {}
    for f in fields(base):
        if f.name in node:
            default = getattr(base, f.name)
            if isinstance(default, tuple):
                values[f.name] = node.pair(f.name, default)
            elif isinstance(default, int):
                values[f.name] = node.integer(f.name)
            else:
                values[f.name] = node.number(f.name, default)
    try:
        return replace(base, **values)
    except ValueError as exc:
        raise node.error(str(exc)) from None


def _section(parent: Node | None, key: str, base: B) -> B:
    """``base`` overridden by the object at ``parent.key``, if there is one."""
    names = tuple(f.name for f in fields(base))
    return _behaviour(parent.child(key, names) if parent is not None else None, base)


@dataclass(frozen=True, slots=True)
class _Rule:
    """Equipment ``tag`` on desks whose number is a multiple of ``every`` or in ``desks``."""

    tag: str
    every: int = 0
    desks: tuple[int, ...] = ()

    def applies(self, number: int) -> bool:
        return (self.every > 0 and number % self.every == 0) or number in self.desks


def _rules(node: Node, key: str, default: tuple[_Rule, ...]) -> tuple[_Rule, ...]:
    if key not in node:
        return default
    rules = []
    for item in node.children(key, _RULE_KEYS):
        tag = item.text("tag")
        if not _TAG.fullmatch(tag):
            raise item.error("a tag is lower-case letters, digits and '_'", "tag")
        every = item.integer("every", 0)
        if every < 0:
            raise item.error("must be 0 (none) or more", "every")
        rules.append(_Rule(tag, every, tuple(item.int_list("desks"))))
    return tuple(rules)


# -- building the site -------------------------------------------------------------------


@dataclass
class _Layout:
    """Accumulates the site's spaces and device plans while the floors are read."""

    source: str
    root: Node
    floors: list[Floor] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    desks: list[Desk] = field(default_factory=list)
    plans: list[DevicePlan] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        node = self.root.child("building", _BUILDING_KEYS)
        if node is None:
            raise self.root.error("is required", "building")
        self.building = self._make(
            node,
            Building,
            id=node.text("id"),
            name=node.text("name"),
            tz=node.text("tz", IKN_TIME_ZONE),
        )
        behaviour = self.root.child(
            "behaviour", ("desk", "people_counter", "environment", "badge_reader")
        )
        self.badge = _section(behaviour, "badge_reader", BadgeBehaviour())
        self.desk = _section(behaviour, "desk", DeskBehaviour())
        self.counter = _section(behaviour, "people_counter", CounterBehaviour())
        self.air = _section(behaviour, "environment", EnvironmentBehaviour())
        self.pitch = self.root.pair("desk_pitch", (1.8, 1.6))
        self.rules = _rules(self.root, "equipment", ())

    def add_floor(self, node: Node) -> None:
        key = _key(node)
        level = node.integer("level")
        floor = self._make(
            node,
            Floor,
            id=f"{self.building.id}-{key}",
            building_id=self.building.id,
            name=node.text("name", f"Lantai {level}"),
            level=level,
        )
        self.floors.append(floor)
        zones = [self.add_zone(z, floor, key) for z in node.children("zones", _ZONE_KEYS)]
        if zones and node.flag("environment_sensor", True):
            env = f"env-{key}"
            self._plan(node, env, DeviceKind.ENVIRONMENT, self.air, zone_id=zones[0], zones=zones)

    def add_door(self, node: Node) -> None:
        """A building entrance: a badge reader ``badge-<key>``, placed in the first zone."""
        behaviour = _section(node, "badge_reader", self.badge)
        reader = f"badge-{_key(node)}"
        self._plan(node, reader, DeviceKind.BADGE_READER, behaviour, zone_id=self.zones[0].id)

    def add_zone(self, node: Node, floor: Floor, floor_key: str) -> str:
        key = _key(node)
        zone = self._make(
            node,
            Zone,
            id=f"{floor.id}-{key}",
            floor_id=floor.id,
            name=node.text("name", f"Zona {key.upper()}"),
        )
        self.zones.append(zone)
        behaviour = _section(node, "desk_behaviour", self.desk)
        for desk in self._desks(node, zone, f"{floor_key}-{key}"):
            self.desks.append(desk)
            sensor = f"desk-{desk.id}"
            self._plan(node, sensor, DeviceKind.DESK_SENSOR, behaviour, zone_id=zone.id, desk=desk)
        if node.flag("people_counter", True):
            counter = f"pc-{floor_key}-{key}"
            kind = DeviceKind.PEOPLE_COUNTER
            self._plan(node, counter, kind, self.counter, zone_id=zone.id, zones=[zone.id])
        return zone.id

    def _desks(self, node: Node, zone: Zone, prefix: str) -> Iterator[Desk]:
        count, columns = node.integer("desks"), node.integer("columns", 5)
        if not 0 <= count <= 999 or columns < 1:
            raise node.error("needs 0..999 desks and columns >= 1", "desks")
        x0, y0 = node.pair("origin", (0.0, 0.0))
        dx, dy = node.pair("pitch", self.pitch)
        rules = _rules(node, "equipment", self.rules)
        width = max(2, len(str(count)))
        for i in range(count):
            number = i + 1
            yield self._make(
                node,
                Desk,
                id=f"{prefix}-{number:0{width}d}",
                zone_id=zone.id,
                name=f"{prefix}-{number:0{width}d}".upper(),
                x=round(x0 + (i % columns) * dx, 2),
                y=round(y0 + (i // columns) * dy, 2),
                equipment=tuple(r.tag for r in rules if r.applies(number)),
            )

    def _plan(
        self,
        node: Node,
        device_id: str,
        kind: DeviceKind,
        behaviour: Behaviour,
        *,
        zone_id: str,
        zones: list[str] | None = None,
        desk: Desk | None = None,
    ) -> None:
        device = self._make(
            node,
            Device,
            id=device_id,
            kind=kind,
            building_id=self.building.id,
            zone_id=zone_id,
            desk_id=desk.id if desk else None,
        )
        self.plans.append(DevicePlan(device, behaviour, tuple(zones or ())))

    def _make(self, node: Node, cls: Callable[..., T], **values: Any) -> T:
        """``cls(**values)``, with a unique id, its errors located at ``node``."""
        try:
            made = cls(**values)
        except (ValueError, ContractError) as exc:
            raise node.error(str(exc)) from None
        kind = type(made).__name__
        key = f"{kind}:{made.id}"
        if key in self._ids:
            raise node.error(f"{kind.lower()} id {made.id!r} appears twice")
        self._ids.add(key)
        return made


def _key(node: Node) -> str:
    key = node.text("key")
    if not _NAME.fullmatch(key) or len(key) > 16:
        raise node.error("a key is 1-16 lower-case letters, digits, '-' or '_'", "key")
    return key
