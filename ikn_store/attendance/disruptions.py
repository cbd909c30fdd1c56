"""The platform's disruption windows (``platform_disruptions``, migration 0048), the
units' bulk excuses of them and the services' heartbeats: the steps
``ikn_service.disruptions`` composes (docs/attendance.md, "System disruption")."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from ikn_core.attendance import Disruption

_COLUMNS = """d.id, d.building_id, lower(d.during) AS start, upper(d.during) AS end, d.cause,
    d.detail, d.recorded_by, d.recorded_at"""


@dataclass(frozen=True, slots=True)
class Window:
    """A stored disruption window."""

    id: int
    building_id: str | None
    start: datetime
    end: datetime
    cause: str
    detail: str
    recorded_by: str
    recorded_at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "building": self.building_id,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cause": self.cause,
            "detail": self.detail,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.isoformat(),
        }


def _window(row: asyncpg.Record) -> Window:
    return Window(**{k: row[k] for k in Window.__dataclass_fields__})


def utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """From a day before ``first`` to two days after ``last``, in UTC: every zone's
    local days of [first, last] fall inside."""
    start = datetime.combine(first - timedelta(days=1), time(), tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=2), time(), tzinfo=UTC)


async def record(
    conn: asyncpg.Connection,
    building_id: str | None,
    start: datetime,
    end: datetime,
    *,
    cause: str,
    detail: str,
    by: str,
    merge: bool = True,
) -> Window:
    """Store a window (in a transaction); with ``merge``, one of the same cause and
    building that it overlaps or touches grows to cover it instead. The days it may
    change are marked dirty (``mark_affected``)."""
    found = None
    if merge:
        found = await conn.fetchrow(
            """SELECT id FROM platform_disruptions
               WHERE building_id IS NOT DISTINCT FROM $1 AND cause = $2
                 AND (during && tstzrange($3, $4) OR during -|- tstzrange($3, $4))
               ORDER BY id LIMIT 1 FOR UPDATE""",
            building_id,
            cause,
            start,
            end,
        )
    if found is not None:
        row = await conn.fetchrow(
            f"""UPDATE platform_disruptions d SET during = d.during + tstzrange($2, $3)
                WHERE d.id = $1 RETURNING {_COLUMNS}""",
            found["id"],
            start,
            end,
        )
    else:
        row = await conn.fetchrow(
            f"""INSERT INTO platform_disruptions AS d
                    (building_id, during, cause, detail, recorded_by)
                VALUES ($1, tstzrange($2, $3), $4, $5, $6) RETURNING {_COLUMNS}""",
            building_id,
            start,
            end,
            cause,
            detail,
            by,
        )
    assert row is not None
    window = _window(row)
    await mark_affected(conn, window)
    return window


async def mark_affected(conn: asyncpg.Connection, window: Window) -> int:
    """Mark dirty the days the window may change, of the people whose home building is
    its building (everyone's, for all buildings): the stored ones with lateness or an
    early departure (no other can be marked), and those dirty now. One being computed
    now is among those (its dirty mark's delete is not committed): marked again once
    that commits, it is computed again with the window, as a signal's trigger does."""
    first, last = utc_bounds(window.start.date(), window.end.date())
    status = await conn.execute(
        """INSERT INTO attendance_dirty (person_id, day)
           SELECT q.person_id, q.day FROM (
               SELECT a.person_id, a.day FROM attendance_days a
               WHERE a.day >= $2::date AND a.day < $3::date
                 AND (a.late_minutes > 0 OR a.early_departure_minutes > 0)
               UNION
               SELECT d.person_id, d.day FROM attendance_dirty d
               WHERE d.day >= $2::date AND d.day < $3::date) q
           JOIN people p ON p.id = q.person_id
           WHERE $1::text IS NULL OR p.home_building_id = $1
           ON CONFLICT (person_id, day) DO UPDATE SET marked_at = now()""",
        window.building_id,
        first,
        last,
    )
    return int(status.rsplit(" ", 1)[-1])


async def get(conn: asyncpg.Connection, disruption_id: int) -> Window | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM platform_disruptions d WHERE d.id = $1", disruption_id
    )
    return None if row is None else _window(row)


async def overlapping(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[Window]:
    """Every window overlapping [start, end), the oldest first (at most 1000)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM platform_disruptions d WHERE d.during && tstzrange($1, $2)
            ORDER BY lower(d.during), d.id LIMIT 1000""",
        start,
        end,
    )
    return [_window(r) for r in rows]


_OF_PEOPLE = """
SELECT p.id AS person_id, d.id, lower(d.during) AS start, upper(d.during) AS end, d.cause,
       d.building_id,
       EXISTS (SELECT 1 FROM disruption_excuses e WHERE e.disruption_id = d.id
               AND e.agency = p.agency AND e.unit = p.unit) AS excused
FROM people p JOIN platform_disruptions d
     ON d.building_id IS NULL OR d.building_id = p.home_building_id
WHERE p.id = ANY($1::text[]) AND d.during && tstzrange($2, $3)
"""


async def of_people(
    conn: asyncpg.Connection, person_ids: Sequence[str], days: Sequence[date]
) -> dict[str, list[Disruption]]:
    """Each person's disruption windows around ``days`` (their home building's or all
    buildings'), each marked excused when their unit's supervisor excused it."""
    if not person_ids or not days:
        return {}
    start, end = utc_bounds(min(days), max(days))
    found: dict[str, list[Disruption]] = defaultdict(list)
    for r in await conn.fetch(_OF_PEOPLE, sorted(set(person_ids)), start, end):
        found[r["person_id"]].append(
            Disruption(
                f"d{r['id']}", r["start"], r["end"], r["cause"], r["building_id"], r["excused"]
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class UnitWindow:
    """A window touching a unit: its excuse for the unit, if any."""

    window: Window
    excused_by: str | None
    excused_at: datetime | None


async def touching_unit(
    conn: asyncpg.Connection, agency: str, unit: str, start: datetime, end: datetime
) -> list[UnitWindow]:
    """The windows overlapping [start, end) of all buildings or of a home building of
    the unit's people, the oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS}, e.excused_by, e.excused_at
            FROM platform_disruptions d
            LEFT JOIN disruption_excuses e
                 ON e.disruption_id = d.id AND e.agency = $1 AND e.unit = $2
            WHERE d.during && tstzrange($3, $4)
              AND (d.building_id IS NULL OR d.building_id IN
                   (SELECT home_building_id FROM people WHERE agency = $1 AND unit = $2))
            ORDER BY lower(d.during), d.id LIMIT 500""",
        agency,
        unit,
        start,
        end,
    )
    return [UnitWindow(_window(r), r["excused_by"], r["excused_at"]) for r in rows]


async def excuse(
    conn: asyncpg.Connection, disruption_id: int, agency: str, unit: str, by: str
) -> tuple[datetime, bool]:
    """The unit's excuse of the window (new, or the one given before): when, and
    whether it is new."""
    row = await conn.fetchrow(
        """INSERT INTO disruption_excuses (disruption_id, agency, unit, excused_by)
           VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING excused_at""",
        disruption_id,
        agency,
        unit,
        by,
    )
    if row is not None:
        return row["excused_at"], True
    at: datetime = await conn.fetchval(
        """SELECT excused_at FROM disruption_excuses
           WHERE disruption_id = $1 AND agency = $2 AND unit = $3""",
        disruption_id,
        agency,
        unit,
    )
    return at, False


async def beat(conn: asyncpg.Connection, service: str, at: datetime) -> datetime | None:
    """Note that ``service`` is alive at ``at`` (call it in a transaction); its beat
    before (None: the first)."""
    before: datetime | None = await conn.fetchval(
        "SELECT beat_at FROM platform_heartbeats WHERE service = $1 FOR UPDATE", service
    )
    await conn.execute(
        """INSERT INTO platform_heartbeats AS h (service, beat_at) VALUES ($1, $2)
           ON CONFLICT (service) DO UPDATE SET beat_at = greatest(h.beat_at, EXCLUDED.beat_at)""",
        service,
        at,
    )
    return before
