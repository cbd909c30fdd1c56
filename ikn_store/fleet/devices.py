"""The device registry: register (with broker credentials shown once), disable, list,
and what needs attention (:func:`device_alerts`).

Refusals raise ``ikn_core.fleet.DeviceError``.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple

import asyncpg
import orjson

from ikn_core.attendance import Policies
from ikn_core.domain import Device
from ikn_core.fleet import DeviceError
from ikn_store.fleet.broker_auth import mosquitto_hash, new_password


@dataclass(frozen=True, slots=True)
class DeviceView:
    """A registered device with its health, as the fleet view shows it."""

    id: str
    kind: str
    building_id: str
    zone_id: str | None
    desk_id: str | None
    enabled: bool
    expected_interval_s: int
    online: bool | None
    last_seen: datetime | None
    status_at: datetime | None
    status: dict[str, Any] | None
    has_credentials: bool
    recent_readings: int = 0  # readings received in the last RECENT_WINDOW
    clock_offset_s: float | None = None  # smallest (receive time - device ts) in it
    tap_tokens_per_min: int = 0  # a badge reader's most distinct tokens in a minute (TAP_WINDOW)
    taps_outside_hours: int = 0  # its taps outside OPENING_HOURS in its building's zone


# Alerts from what the device sent lately (RECENT_WINDOW): flooding past
# FLOOD_READINGS_PER_MIN on average, and a clock ahead of the platform's by more than
# CLOCK_AHEAD_S, or so far behind that even its freshest reading is CLOCK_BEHIND_S old
# (a device draining its outbox after an outage sends old readings, not only old ones).
RECENT_WINDOW = timedelta(minutes=5)
FLOOD_READINGS_PER_MIN = 600
CLOCK_AHEAD_S = 60.0
CLOCK_BEHIND_S = 900.0
BATTERY_LOW_PCT = 20
# Badge readers whose taps look implausible, over the taps received in TAP_WINDOW.
TAP_WINDOW = timedelta(days=1)


class TapRules(NamedTuple):
    """When a reader's taps look implausible: more than ``max_tokens_per_minute``
    distinct tokens in one minute (a replay, a cloned card list), or a tap outside
    ``opens``-``closes`` in its building's zone. ``of`` takes them from the attendance
    policy (``badge_readers.*`` and its working hours)."""

    max_tokens_per_minute: int
    opens: time
    closes: time

    @classmethod
    def of(cls, policies: Policies, now: datetime) -> TapRules:
        """From the version in force on ``now``'s date (the first, before any is)."""
        day = max(now.date(), policies.versions[0].effective_from)
        policy = policies.in_force(day)
        opens, closes = policy.opening_hours(day)
        return cls(policy.reader_max_tokens_per_minute, opens, closes)


# The shipped national policy, read once: what the ingest's alert gauge judges taps by.
_national = functools.cache(Policies.default)

ALERTS = (
    "never-seen",
    "offline",
    "clock-not-synced",
    "clock-drift",
    "flooding",
    "battery-low",
    "no-credentials",
    "implausible-tap-rate",
    "taps-outside-hours",
)


def device_alerts(device: DeviceView, now: datetime, taps: TapRules | None = None) -> list[str]:
    """What needs a facility manager's attention about an enabled device (its taps judged
    by ``taps``, the national policy's when None)."""
    taps = taps or TapRules.of(_national(), now)
    if not device.enabled:
        return []
    found = []
    if device.last_seen is None:
        found.append("never-seen")
    elif (now - device.last_seen).total_seconds() > device.expected_interval_s:
        found.append("offline")
    status = device.status or {}
    if status.get("clock_synced") is False:
        found.append("clock-not-synced")
    offset = device.clock_offset_s
    if offset is not None and not -CLOCK_AHEAD_S <= offset <= CLOCK_BEHIND_S:
        found.append("clock-drift")
    minutes = RECENT_WINDOW.total_seconds() / 60
    if device.recent_readings > FLOOD_READINGS_PER_MIN * minutes:
        found.append("flooding")
    battery = status.get("battery_pct")
    if isinstance(battery, int) and battery < BATTERY_LOW_PCT:
        found.append("battery-low")
    if not device.has_credentials:
        found.append("no-credentials")
    if device.tap_tokens_per_min > taps.max_tokens_per_minute:
        found.append("implausible-tap-rate")
    if device.taps_outside_hours:
        found.append("taps-outside-hours")
    return found


_PLACE_MISMATCH = """
SELECT CASE
    WHEN $2::text IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM zones z JOIN floors f ON f.id = z.floor_id
        WHERE z.id = $2 AND f.building_id = $1) THEN 'zone'
    WHEN $3::text IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM desks d JOIN zones z ON z.id = d.zone_id JOIN floors f ON f.id = z.floor_id
        WHERE d.id = $3 AND f.building_id = $1 AND ($2::text IS NULL OR d.zone_id = $2)) THEN 'desk'
END
"""


async def register_device(
    conn: asyncpg.Connection, device: Device, expected_interval_s: int = 300
) -> str:
    """Insert ``device`` with new broker credentials; returns the password (shown once)."""
    password = new_password()
    field = await conn.fetchval(_PLACE_MISMATCH, device.building_id, device.zone_id, device.desk_id)
    if field is not None and await conn.fetchval(
        "SELECT true FROM buildings WHERE id = $1", device.building_id
    ):
        raise DeviceError(
            "unknown-place", field, f"no such {field} in building {device.building_id}"
        )
    try:
        async with conn.transaction():
            await conn.execute(
                """INSERT INTO devices
                   (id, kind, building_id, zone_id, desk_id, expected_interval_s)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                device.id,
                str(device.kind),
                device.building_id,
                device.zone_id,
                device.desk_id,
                expected_interval_s,
            )
            await conn.execute(
                "INSERT INTO device_credentials (device_id, password_hash) VALUES ($1, $2)",
                device.id,
                mosquitto_hash(password),
            )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "devices_one_sensor_per_desk":
            raise DeviceError(
                "desk-taken", "desk", f"desk {device.desk_id} already has a sensor"
            ) from exc
        raise DeviceError("exists", "id", f"device {device.id} is already registered") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        field = _field_of(exc.constraint_name or "")
        raise DeviceError("unknown-place", field, f"no such {field}") from exc
    return password


def _field_of(constraint: str) -> str:
    for field in ("building", "zone", "desk"):
        if field in constraint:
            return field
    return "building"


async def rotate_password(conn: asyncpg.Connection, device_id: str) -> str:
    """New credentials for a registered device (the old password stops working at reload)."""
    password = new_password()
    done = await conn.fetchval(
        """INSERT INTO device_credentials (device_id, password_hash)
           SELECT id, $2 FROM devices WHERE id = $1
           ON CONFLICT (device_id) DO UPDATE
           SET password_hash = EXCLUDED.password_hash, created_at = now()
           RETURNING device_id""",
        device_id,
        mosquitto_hash(password),
    )
    if done is None:
        raise DeviceError("unknown-device", "id", f"no device {device_id}")
    return password


async def move_device(
    conn: asyncpg.Connection, device_id: str, building: str, zone: str | None, desk: str | None
) -> None:
    """Place a device elsewhere (zone and desk must lie in the building, and the desk in
    the zone). The live facts it reported at its old place (a desk's state, a zone's
    people count) are dropped: nothing reports them any more."""
    async with conn.transaction():
        kind = await conn.fetchval("SELECT kind FROM devices WHERE id = $1 FOR UPDATE", device_id)
        if kind is None:
            raise DeviceError("unknown-device", "id", f"no device {device_id}")
        if not await conn.fetchval("SELECT true FROM buildings WHERE id = $1", building):
            raise DeviceError("unknown-place", "building", f"no such building {building}")
        field = await conn.fetchval(_PLACE_MISMATCH, building, zone, desk)
        if field is not None:
            raise DeviceError("unknown-place", field, f"no such {field} in building {building}")
        if kind == "desk_sensor" and desk is None:
            raise DeviceError("desk-required", "desk", "a desk sensor needs a desk")
        try:
            await conn.execute(
                "UPDATE devices SET building_id = $2, zone_id = $3, desk_id = $4 WHERE id = $1",
                device_id,
                building,
                zone,
                desk,
            )
        except asyncpg.UniqueViolationError as exc:
            raise DeviceError("desk-taken", "desk", f"desk {desk} already has a sensor") from exc
        await conn.execute(
            "DELETE FROM desk_state WHERE device_id = $1 AND desk_id IS DISTINCT FROM $2",
            device_id,
            desk,
        )
        await conn.execute(
            "DELETE FROM zone_counts WHERE device_id = $1 AND zone_id IS DISTINCT FROM $2",
            device_id,
            zone,
        )


async def set_enabled(conn: asyncpg.Connection, device_id: str, enabled: bool) -> None:
    done = await conn.fetchval(
        "UPDATE devices SET enabled = $2 WHERE id = $1 RETURNING id", device_id, enabled
    )
    if done is None:
        raise DeviceError("unknown-device", "id", f"no device {device_id}")


_SELECT = """
SELECT d.id, d.kind, d.building_id, d.zone_id, d.desk_id, d.enabled, d.expected_interval_s,
       s.online, s.last_seen, s.status_at, s.status,
       c.device_id IS NOT NULL AS has_credentials,
       coalesce(r.recent, 0) AS recent_readings, r.clock_offset_s,
       coalesce(t.tokens, 0) AS tap_tokens_per_min, coalesce(t.outside, 0) AS taps_outside_hours
FROM devices d
LEFT JOIN device_status s ON s.device_id = d.id
LEFT JOIN device_credentials c ON c.device_id = d.id
LEFT JOIN (
    -- ts bounds prune the partitions; received_at picks what arrived lately
    SELECT device_id, count(*) AS recent,
           extract(epoch FROM min(received_at - ts))::float8 AS clock_offset_s
    FROM readings
    WHERE ts > now() - interval '1 day' AND ts < now() + interval '1 day'
      AND received_at > now() - interval '5 minutes'
    GROUP BY device_id
) r ON r.device_id = d.id
LEFT JOIN (
    -- badge taps received in TAP_WINDOW: most distinct tokens a minute, and how many
    -- fell outside the opening hours ($3, $4: local times) of the reader's building
    SELECT m.device_id, max(m.tokens) AS tokens, sum(m.outside) AS outside
    FROM (SELECT t.device_id, date_trunc('minute', t.ts) AS minute,
                 count(DISTINCT t.body->>'badge') AS tokens,
                 count(*) FILTER (WHERE (t.ts AT TIME ZONE bd.tz)::time NOT BETWEEN $3 AND $4)
                     AS outside
          FROM readings t
          JOIN devices td ON td.id = t.device_id
          JOIN buildings bd ON bd.id = td.building_id
          WHERE t.kind = 'badge_tap' AND t.ts > now() - $5::interval
                AND t.ts < now() + interval '1 day' AND t.received_at > now() - $5::interval
          GROUP BY 1, 2) m
    GROUP BY m.device_id
) t ON t.device_id = d.id
"""


def _view(row: asyncpg.Record) -> DeviceView:
    values = dict(row)
    raw = values["status"]
    values["status"] = orjson.loads(raw) if isinstance(raw, str) else raw
    return DeviceView(**values)


async def list_devices(
    conn: asyncpg.Connection,
    building: str | None = None,
    device_id: str | None = None,
    *,
    taps: TapRules | None = None,
) -> list[DeviceView]:
    """The registered devices with their health; taps outside ``taps``' opening hours
    (the national policy's when None) counted."""
    taps = taps or TapRules.of(_national(), datetime.now(UTC))
    rows = await conn.fetch(
        _SELECT
        + """WHERE ($1::text IS NULL OR d.building_id = $1)
                     AND ($2::text IS NULL OR d.id = $2) ORDER BY d.id""",
        building,
        device_id,
        taps.opens,
        taps.closes,
        TAP_WINDOW,
    )
    return [_view(r) for r in rows]


async def alert_counts(conn: asyncpg.Connection, now: datetime) -> Counter[str]:
    """How many devices have each alert now (every name of ALERTS, zero included; taps
    judged by the national policy)."""
    counts: Counter[str] = Counter(dict.fromkeys(ALERTS, 0))
    taps = TapRules.of(_national(), now)
    for device in await list_devices(conn, taps=taps):
        counts.update(device_alerts(device, now, taps))
    return counts


@dataclass(frozen=True, slots=True)
class DeskEvent:
    """A change of a desk's live state (``desk_events``), placed in its building."""

    id: int
    desk_id: str
    device_id: str
    occupied: bool
    at: datetime
    zone_id: str
    floor_id: str
    building_id: str
    tz: str


_EVENTS = """
SELECT e.id, e.desk_id, e.device_id, e.occupied, e.at,
       z.id AS zone_id, f.id AS floor_id, b.id AS building_id, b.tz
FROM desk_events e
JOIN desks d ON d.id = e.desk_id
JOIN zones z ON z.id = d.zone_id
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
"""


async def desk_events_by_id(conn: asyncpg.Connection, ids: list[int]) -> list[DeskEvent]:
    rows = await conn.fetch(_EVENTS + "WHERE e.id = ANY($1::bigint[]) ORDER BY e.id", ids)
    return [DeskEvent(**dict(r)) for r in rows]


async def desk_events_after(
    conn: asyncpg.Connection,
    after: int,
    limit: int,
    *,
    building: str | None = None,
    floor: str | None = None,
    zone: str | None = None,
) -> list[DeskEvent]:
    """Events with id > ``after`` under the given places, oldest first, at most ``limit``."""
    rows = await conn.fetch(
        _EVENTS
        + """WHERE e.id > $1
             AND ($2::text IS NULL OR b.id = $2)
             AND ($3::text IS NULL OR f.id = $3)
             AND ($4::text IS NULL OR z.id = $4)
           ORDER BY e.id LIMIT $5""",
        after,
        building,
        floor,
        zone,
        limit,
    )
    return [DeskEvent(**dict(r)) for r in rows]
