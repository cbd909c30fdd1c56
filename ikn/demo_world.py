"""The demo's people and their recent past: two agencies sharing the demo building,
every role, a badge each, and the last working days' taps and bookings, so that the
staff pages have something to show the moment the demo starts (``ikn demo``).

The building belongs to the first agency (Kementerian PANRB): its staff's office days
count as WFO, the second agency's (Otorita IKN) as WFO elsewhere. History is written
as the platform would have stored it (signals, bookings); the API's attendance job
counts the days from them, as it does for real taps.
"""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, time, timedelta

import asyncpg

from ikn_core.attendance.record import PlaceType, SignalKind
from ikn_core.domain import IKN_ZONE, Role
from ikn_store.attendance.badges import enrol
from ikn_store.people import Person

BUILDING = "ikn-b1"
OWNER = "kemenpanrb"  # the agency whose building it is
ZONE = IKN_ZONE  # the demo building's
HISTORY_DAYS = 10  # calendar days of past taps and bookings
SINCE_DAYS = 30  # the building is live, and its people known, since this many days ago
PEOPLE = (
    Person("demo-ani", "Ani Rahayu", OWNER, "sdm", Role.EMPLOYEE, BUILDING),
    Person("demo-budi", "Budi Santoso", OWNER, "sdm", Role.EMPLOYEE, BUILDING),
    Person("demo-dewi", "Dewi Kartika", OWNER, "sdm", Role.DELEGATE, BUILDING),
    Person("demo-sari", "Sari Wulandari", OWNER, "sdm", Role.SUPERVISOR, BUILDING),
    Person("demo-rina", "Rina Marpaung", "otorita-ikn", "perencanaan", Role.EMPLOYEE, BUILDING),
    Person("demo-hendra", "Hendra Wijaya", "otorita-ikn", "perencanaan", Role.SUPERVISOR, BUILDING),
    Person(
        "demo-fajar", "Fajar Nugroho", "otorita-ikn", "fasilitas", Role.FACILITY_MANAGER, BUILDING
    ),
    Person("demo-adi", "Adi Saputra", "otorita-ikn", "ti", Role.ADMIN, BUILDING),
)
# Who comes to the office on a working day, and when (the rest work remotely or not).
OFFICE_SHARE = 0.7
ARRIVAL = (time(7, 0), 75)  # from 07:00, spread over 75 minutes: some are late
DEPARTURE = (time(16, 0), 90)


def badge_of(person_id: str) -> str:
    """The demo badge token of a person (a readers' token is an HMAC of the card; any
    opaque string of the contract's form will do for people who never tap a reader)."""
    return "b1:" + hashlib.sha256(f"ikn-demo:{person_id}".encode()).hexdigest()[:43]


def past_working_days(today: date, days: int = HISTORY_DAYS) -> list[date]:
    """The weekdays among the ``days`` before ``today`` (holidays are the policy's)."""
    back = (today - timedelta(days=n) for n in range(days, 0, -1))
    return [d for d in back if d.weekday() < 5]


async def seed_history(conn: asyncpg.Connection, now: datetime, desks: list[str]) -> int:
    """Badges for everyone, and the past working days' office taps (and a booking of
    one of ``desks`` on some of them), drawn from a fixed seed; how many taps. Run
    again, it adds nothing twice (the signals' sources are deterministic)."""
    today = now.astimezone(ZONE).date()
    since = datetime.combine(today - timedelta(days=SINCE_DAYS), time(), ZONE)
    await conn.execute(
        """UPDATE buildings SET live_from = $2
           WHERE id = $1 AND (live_from IS NULL OR live_from > $2)""",
        BUILDING,
        since.date(),
    )
    ids = [p.id for p in PEOPLE]
    await conn.execute(
        "UPDATE people SET known_since = $2 WHERE id = ANY($1) AND known_since > $2", ids, since
    )
    for person in PEOPLE:
        await enrol(conn, badge_of(person.id), person.id)
    rng = random.Random(20261207)
    taps = 0
    for day in past_working_days(today):
        for person in PEOPLE:
            if rng.random() >= OFFICE_SHARE:
                continue
            arrive, leave = _moment(rng, day, ARRIVAL), _moment(rng, day, DEPARTURE)
            taps += await _tap(conn, person.id, SignalKind.BADGE_IN, arrive)
            taps += await _tap(conn, person.id, SignalKind.BADGE_OUT, leave)
            if desks and rng.random() < 0.5:
                await _past_booking(conn, person.id, rng.choice(desks), arrive, leave)
    return taps


def _moment(rng: random.Random, day: date, window: tuple[time, int]) -> datetime:
    start, spread = window
    return datetime.combine(day, start, ZONE) + timedelta(minutes=rng.randrange(spread))


async def _tap(conn: asyncpg.Connection, person_id: str, kind: SignalKind, at: datetime) -> int:
    stored = await conn.fetchval(
        """INSERT INTO attendance_signals
               (person_id, kind, at, place_type, building_id, source, received_at)
           VALUES ($1, $2, $3::timestamptz, $4, $5, $6, $3::timestamptz + interval '2 seconds')
           ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING RETURNING id""",
        person_id,
        str(kind),
        at,
        str(PlaceType.OFFICE),
        BUILDING,
        f"demo:{person_id}:{at.date().isoformat()}:{kind}",
    )
    return 0 if stored is None else 1


async def _past_booking(
    conn: asyncpg.Connection, person_id: str, desk: str, start: datetime, end: datetime
) -> None:
    """A booking that was checked in on arrival (none where the desk, or the person,
    had one then: the bookings' exclusion constraints)."""
    await conn.execute(
        """INSERT INTO bookings (desk_id, person_id, period, created_by, status,
                                 checked_in_at, check_in_signal)
           VALUES ($1, $2, tstzrange($3, $4), $2, 'checked_in', $3, 'badge')
           ON CONFLICT DO NOTHING""",
        desk,
        person_id,
        start,
        end,
    )
