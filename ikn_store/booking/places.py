"""What a booking of a desk must respect: its building's zone, the rules in force
(the building's, overridden per zone), in a restricted zone who may book, and
whether the desk is disabled or assigned permanently to one person.

The API keeps these in a ``PlaceCache``; the view ``desk_booking_places``
gives each row a fingerprint, and the booking INSERT books only while the row
still has the fingerprint the API checked, so a cached row is never trusted blindly.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.booking import BookingRules, DeskAssigned, DeskDisabled, UnknownDesk

_RULE_FIELDS = tuple(f.name for f in fields(BookingRules))


@dataclass(frozen=True, slots=True)
class DeskPlace:
    """A desk with its building's zone, the rules in force and who may book it."""

    desk_id: str
    zone_id: str
    building_id: str
    tz: str
    rules: BookingRules
    allowed: tuple[str, ...] | None  # ``agency`` or ``agency/unit``; None: open to all
    fingerprint: str
    disabled: bool = False  # nobody may book it
    assigned_to: str | None = None  # only for this person (or by a facility manager)

    @property
    def zone_info(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


@dataclass(frozen=True, slots=True)
class RuleOverrides:
    """A zone's overrides of its building's rules; None keeps the building's value.
    Hours (opens/closes) and durations (min/max) are overridden as pairs."""

    max_days_ahead: int | None = None
    min_minutes: int | None = None
    max_minutes: int | None = None
    opens_minute: int | None = None
    closes_minute: int | None = None
    cancel_cutoff_minutes: int | None = None


def check_desk(place: DeskPlace, person_id: str, manager: bool) -> None:
    """A disabled desk is never booked; an assigned one only for its person, except by
    a facility manager: SQL ``desk_bookable()``, which the booking INSERTs apply, says
    the same (tests/test_sql_rules.py); this says which part failed."""
    if place.disabled:
        raise DeskDisabled(f"desk {place.desk_id} is disabled")
    if place.assigned_to not in (None, person_id) and not manager:
        raise DeskAssigned(f"desk {place.desk_id} is assigned to someone else")


def _place(row: asyncpg.Record) -> DeskPlace:
    overrides = {n: row[n] for n in _RULE_FIELDS if row[n] is not None}
    allowed = row["allowed"]
    return DeskPlace(
        row["desk_id"],
        row["zone_id"],
        row["building_id"],
        row["tz"],
        BookingRules(**overrides),
        tuple(allowed) if allowed is not None else None,
        row["fingerprint"],
        row["disabled"],
        row["assigned_to"],
    )


# A zone larger than the cache is cut short ($2 rows), never without the desk itself.
_ZONE_PLACES = """
    SELECT p.* FROM desk_booking_places p
    WHERE p.zone_id = (SELECT zone_id FROM desks WHERE id = $1)
    ORDER BY p.desk_id = $1 DESC, p.desk_id
    LIMIT $2"""


_ALL_PLACES = "SELECT * FROM desk_booking_places ORDER BY desk_id LIMIT $1"


async def desk_place(conn: asyncpg.Connection, desk_id: str) -> DeskPlace:
    row = await conn.fetchrow("SELECT * FROM desk_booking_places WHERE desk_id = $1", desk_id)
    if row is None:
        raise UnknownDesk(f"no desk {desk_id!r}")
    return _place(row)


class PlaceCache:
    """Desk places read lately, at most ``size`` of them (the oldest read go first)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._places: OrderedDict[str, DeskPlace] = OrderedDict()

    def cached(self, desk_id: str) -> DeskPlace | None:
        return self._places.get(desk_id)

    async def fresh(self, conn: asyncpg.Connection, desk_id: str) -> DeskPlace:
        """Read the desk's place from the database and keep it. A desk not kept yet
        brings its zone's other desks along (one query), as their bookings usually
        follow: a morning rush then reads each zone once, not each desk."""
        if desk_id in self._places:
            self._keep(await desk_place(conn, desk_id))
        else:
            rows = await conn.fetch(_ZONE_PLACES, desk_id, self._size)
            if not rows:
                raise UnknownDesk(f"no desk {desk_id!r}")
            for row in rows:
                self._keep(_place(row))
        return self._places[desk_id]

    async def warm(self, conn: asyncpg.Connection) -> int:
        """Read the places of as many desks as the cache keeps (the API at start, so a
        morning rush does not begin with reads); how many it keeps now."""
        for row in await conn.fetch(_ALL_PLACES, self._size):
            self._keep(_place(row))
        return len(self._places)

    def _keep(self, place: DeskPlace) -> None:
        self._places.pop(place.desk_id, None)
        self._places[place.desk_id] = place
        while len(self._places) > self._size:
            self._places.popitem(last=False)


_UPSERT = """
    INSERT INTO {table} ({key}, {columns}) VALUES ($1, {values})
    ON CONFLICT ({key}) DO UPDATE SET {updates}"""


async def _upsert(
    conn: asyncpg.Connection, table: str, key: tuple[str, str], values: dict[str, object]
) -> None:
    sql = _UPSERT.format(
        table=table,
        key=key[0],
        columns=", ".join(values),
        values=", ".join(f"${i}" for i in range(2, len(values) + 2)),
        updates=", ".join(f"{c} = EXCLUDED.{c}" for c in values),
    )
    await conn.execute(sql, key[1], *values.values())


async def set_rules(conn: asyncpg.Connection, building_id: str, rules: BookingRules) -> None:
    """The building's rules (every field; a zone may override them)."""
    values = {n: getattr(rules, n) for n in _RULE_FIELDS}
    await _upsert(conn, "booking_rules", ("building_id", building_id), values)


async def set_zone_rules(conn: asyncpg.Connection, zone_id: str, rules: RuleOverrides) -> None:
    values = {n: getattr(rules, n) for n in _RULE_FIELDS}
    await _upsert(conn, "zone_booking_rules", ("zone_id", zone_id), values)


async def restrict_zone(
    conn: asyncpg.Connection, zone_id: str, allowed: list[tuple[str, str | None]]
) -> None:
    """Only these (agency, unit) may book in the zone (unit None: the whole agency);
    an empty list opens the zone to everyone again."""
    async with conn.transaction():
        await conn.execute("DELETE FROM zone_access WHERE zone_id = $1", zone_id)
        await conn.executemany(
            "INSERT INTO zone_access (zone_id, agency, unit) VALUES ($1, $2, $3)",
            [(zone_id, agency, unit) for agency, unit in allowed],
        )


@dataclass(frozen=True, slots=True)
class ZoneRules:
    """A zone's overrides, its building's rules and the rules in force there."""

    zone_id: str
    building_id: str
    overrides: RuleOverrides
    building: BookingRules
    in_force: BookingRules


_ZONE_RULES = """
    SELECT f.building_id, {columns}
    FROM zones z
    JOIN floors f ON f.id = z.floor_id
    JOIN buildings b ON b.id = f.building_id
    LEFT JOIN site_booking_rules sr ON sr.site_id = b.site_id
    LEFT JOIN booking_rules r ON r.building_id = f.building_id
    LEFT JOIN zone_booking_rules zr ON zr.zone_id = z.id
    WHERE z.id = $1""".format(
    columns=", ".join(
        f"coalesce(r.{n}, sr.{n}) AS building_{n}, zr.{n} AS zone_{n}" for n in _RULE_FIELDS
    )
)


async def zone_rules(conn: asyncpg.Connection, zone_id: str) -> ZoneRules | None:
    """None when there is no such zone."""
    row = await conn.fetchrow(_ZONE_RULES, zone_id)
    if row is None:
        return None
    building = {n: row[f"building_{n}"] for n in _RULE_FIELDS if row[f"building_{n}"] is not None}
    zone = {n: row[f"zone_{n}"] for n in _RULE_FIELDS if row[f"zone_{n}"] is not None}
    return ZoneRules(
        zone_id,
        row["building_id"],
        RuleOverrides(**zone),
        BookingRules(**building),
        BookingRules(**{**building, **zone}),
    )


async def set_building_rules(
    conn: asyncpg.Connection, building_id: str, rules: RuleOverrides
) -> None:
    """The building's own values; None keeps its site's value, or the platform's
    default (its zones may override them in turn)."""
    values = {n: getattr(rules, n) for n in _RULE_FIELDS}
    await _upsert(conn, "booking_rules", ("building_id", building_id), values)


@dataclass(frozen=True, slots=True)
class LevelRules:
    """A site's or building's own values over the level above (a building's site, or
    the platform defaults), and the rules in force there."""

    id: str
    site_id: str | None  # a building's site
    overrides: RuleOverrides
    in_force: BookingRules


_BUILDING_RULES = """
    SELECT b.site_id, {columns}
    FROM buildings b
    LEFT JOIN booking_rules r ON r.building_id = b.id
    LEFT JOIN site_booking_rules sr ON sr.site_id = b.site_id
    WHERE b.id = $1""".format(
    columns=", ".join(f"r.{n} AS own_{n}, sr.{n} AS above_{n}" for n in _RULE_FIELDS)
)
_SITE_RULES = """
    SELECT NULL::text AS site_id, {columns}
    FROM sites s LEFT JOIN site_booking_rules sr ON sr.site_id = s.id
    WHERE s.id = $1""".format(
    columns=", ".join(f"sr.{n} AS own_{n}, NULL::integer AS above_{n}" for n in _RULE_FIELDS)
)


async def _level_rules(conn: asyncpg.Connection, query: str, place_id: str) -> LevelRules | None:
    row = await conn.fetchrow(query, place_id)
    if row is None:
        return None
    own = {n: row[f"own_{n}"] for n in _RULE_FIELDS if row[f"own_{n}"] is not None}
    above = {n: row[f"above_{n}"] for n in _RULE_FIELDS if row[f"above_{n}"] is not None}
    in_force = BookingRules(**{**above, **own})
    return LevelRules(place_id, row["site_id"], RuleOverrides(**own), in_force)


async def building_rules(conn: asyncpg.Connection, building_id: str) -> LevelRules | None:
    """None when there is no such building."""
    return await _level_rules(conn, _BUILDING_RULES, building_id)


async def site_rules(conn: asyncpg.Connection, site_id: str) -> LevelRules | None:
    """None when there is no such site."""
    return await _level_rules(conn, _SITE_RULES, site_id)


async def set_site_rules(conn: asyncpg.Connection, site_id: str, rules: RuleOverrides) -> None:
    """The site's values for all its buildings; None keeps the platform's default."""
    values = {n: getattr(rules, n) for n in _RULE_FIELDS}
    await _upsert(conn, "site_booking_rules", ("site_id", site_id), values)


async def zone_access(conn: asyncpg.Connection, zone_id: str) -> list[tuple[str, str | None]]:
    """The (agency, unit) that may book in the zone; empty: open to everyone."""
    rows = await conn.fetch(
        "SELECT agency, unit FROM zone_access WHERE zone_id = $1 ORDER BY agency, unit NULLS FIRST",
        zone_id,
    )
    return [(r["agency"], r["unit"]) for r in rows]
