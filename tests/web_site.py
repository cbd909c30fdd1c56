"""The staff pages' test world: the small site, people of every role with tokens (whom
the development login lists), a booking today, and the whole application (API and
pages, ikn.site) on a fixed clock: Monday 7 December 2026, 09:00 WITA."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from api.attendance import handlers as attendance
from ikn.site import make_site
from ikn_core.domain import Role
from ikn_core.floor_plans import check_plan
from ikn_core.settings import IngestSettings
from ikn_store.attendance.signals import set_building_site
from ikn_store.floor_plans import put_plan
from ikn_store.people import Person, link_token, upsert_people
from ikn_store.tokens import create_token
from ingest.service import IngestService
from tests.helpers import api_settings, eventually, seed

WITA = ZoneInfo("Asia/Makassar")
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=WITA)  # a Monday, a working day
SINCE = datetime(2026, 11, 1, tzinfo=WITA)  # from when the seeded people count
PEOPLE = (
    Person("ani", "Ani Lestari", "kemenpan", "sdm", Role.EMPLOYEE, "b1"),
    Person("budi", "Budi Santoso", "kemenpan", "sdm", Role.EMPLOYEE, "b1"),
    Person("sari", "Sari Wulandari", "kemenpan", "sdm", Role.SUPERVISOR, "b1"),
    Person("fajar", "Fajar Nugroho", "otorita", "fasilitas", Role.FACILITY_MANAGER, "b1"),
)
ADMIN = Person("rina", "Rina Admin", "otorita", "ti", Role.ADMIN, "b1")
DEV_LOGIN = {"IKN_WEB_DEV_LOGIN": "true"}
# A floor's plan drawing (the console's floor-plan editor, Find a desk): walls and a corridor.
PLAN_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300">'
    b'<rect x="0" y="0" width="400" height="300" fill="#f3f1ea" stroke="#8a8577" stroke-width="4"/>'
    b'<path d="M0 200H400M260 0V200" stroke="#8a8577" stroke-width="3" fill="none"/></svg>'
)


class Clock:
    """The application's clock, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@asynccontextmanager
async def running_ingest(
    url: str, mqtt_url: str, env: Mapping[str, str] | None = None
) -> AsyncIterator[None]:
    """The real ingest on ``mqtt_url``'s broker, storing into ``url``, subscribed;
    ``env``: more of its settings."""
    service = IngestService(
        IngestSettings.from_env(
            {
                "IKN_DATABASE_URL": url,
                "IKN_MQTT_URL": mqtt_url,
                "IKN_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
                "IKN_INGEST_BATCH_LATENCY_MS": "20",
                **(env or {}),
            }
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await eventually(lambda: asyncio.sleep(0, service), lambda s: s.subscribed or task.done())
    assert not task.done()
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def seed_people(url: str) -> None:
    """The small site, ``PEOPLE`` with a token each, and Ani's booking of desk d1 from
    08:00 to 12:00 WITA on ``NOW``'s day, checked in. People and buildings count from
    1 November 2026: by default from the real day they were stored, after ``NOW``'s day
    once the real clock has passed it (their attendance on it was then not counted)."""
    await seed(url)
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, list(PEOPLE))
        await conn.execute("UPDATE buildings SET live_from = $1", SINCE.date())
        await conn.execute("UPDATE people SET known_since = $1", SINCE)
        for person in PEOPLE:
            await link_token(conn, await create_token(conn, person.id, str(person.role)), person.id)
        # Checked in: the no-show release runs on the real clock, for which this is past.
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by, status,
                                     checked_in_at, check_in_signal)
               VALUES ('d1', 'ani', tstzrange($1, $2), 'ani', 'checked_in', $3, 'app')""",
            NOW.replace(hour=8),
            NOW.replace(hour=12),
            NOW.replace(hour=8, minute=5),
        )
    finally:
        await conn.close()


async def add_admin(url: str, plan: bool = False) -> None:
    """Rina, an administrator with a token (so the development login lists her); with
    ``plan``, floor b1-f1's plan drawing ``PLAN_SVG`` too."""
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, [ADMIN])
        await link_token(conn, await create_token(conn, ADMIN.id, str(ADMIN.role)), ADMIN.id)
        if plan:
            await put_plan(conn, "b1-f1", check_plan(PLAN_SVG))
    finally:
        await conn.close()


def site_app(url: str, clock: Clock, env: Mapping[str, str] = DEV_LOGIN) -> web.Application:
    app = make_site(api_settings({"IKN_DATABASE_URL": url, **env}))
    now: Callable[[], datetime] = clock
    app[attendance.CLOCK] = now
    return app


@asynccontextmanager
async def serving_site(
    url: str, clock: Clock, env: Mapping[str, str] = DEV_LOGIN
) -> AsyncIterator[TestServer]:
    """The whole application on a real port (for a browser)."""
    server = TestServer(site_app(url, clock, env), host="127.0.0.1")
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


# Ani's attendance history (tests/test_web_attendance.py): the days before ``NOW`` in
# WITA, each (day, [(kind, "HH:MM", place)]). Mon 30 Nov has nothing: absent.
ATTENDANCE_DAYS = (
    (1, [("badge_in", "07:25", "office"), ("badge_out", "16:05", "office")]),  # WFO
    (2, [("badge_in", "07:52", "office"), ("badge_out", "16:10", "office")]),  # late
    (3, [("app_check_in", "07:28", "home"), ("app_check_out", "16:02", "home")]),  # WFA
)
ANI_LEAVE = datetime(2026, 12, 4, tzinfo=WITA).date()  # Fri 4 Dec: approved cuti
# Thu 26 and Fri 27 Nov: approved official travel
ANI_TRAVEL = (
    datetime(2026, 11, 26, tzinfo=WITA).date(),
    datetime(2026, 11, 27, tzinfo=WITA).date(),
)


async def seed_attendance(url: str) -> None:
    """After ``seed_people``: counted days from 1 Nov 2026, b1 located (kemenpan's),
    Ani's badge taps and app clockings of 1-3 Dec, her approved leave on 4 Dec and
    official travel on 26-27 Nov."""
    conn = await asyncpg.connect(url)
    try:
        await set_building_site(conn, "b1", -0.9745, 116.7085, "kemenpan")
        await conn.execute("UPDATE buildings SET live_from = $1", SINCE.date())  # people
        await conn.execute("UPDATE people SET known_since = $1", SINCE)  # added since
        for day, taps in ATTENDANCE_DAYS:
            for kind, hhmm, place in taps:
                hour, minute = (int(part) for part in hhmm.split(":"))
                at = datetime(2026, 12, day, hour, minute, tzinfo=WITA)
                await conn.execute(
                    """INSERT INTO attendance_signals
                           (person_id, kind, at, place_type, building_id, source, received_at)
                       VALUES ('ani', $1, $2::timestamptz, $3, $4, $5,
                               $2::timestamptz + interval '2 seconds')""",
                    kind,
                    at,
                    place,
                    "b1" if place == "office" else None,
                    f"seed:ani:{day}:{kind}",
                )
        await conn.executemany(
            """INSERT INTO attendance_requests
                   (person_id, kind, days, reason, status, requested_by, decided_by, decided_at)
               VALUES ('ani', $1, daterange($2, $3, '[]'), $4, 'approved', 'ani', 'sari', $5)""",
            [
                ("cuti", ANI_LEAVE, ANI_LEAVE, "Cuti tahunan", NOW - timedelta(days=5)),
                ("dinas_luar", *ANI_TRAVEL, "Rapat di Balikpapan", NOW - timedelta(days=14)),
            ],
        )
    finally:
        await conn.close()


async def seed_views(url: str) -> None:
    """After ``seed_people``: Sari saw Ani's attendance twice this morning (the access
    log that My attendance shows)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            """INSERT INTO attendance_access (at, subject_id, viewer_id, viewer_name,
                                              viewer_role, what, period, channel)
               VALUES ($1, 'ani', 'sari', 'Sari Wulandari', 'supervisor', $2, $3, 'web')""",
            [
                (NOW - timedelta(minutes=40), "unit_month", "2026-12"),
                (NOW - timedelta(minutes=35), "day", "2026-12-04"),
            ],
        )
    finally:
        await conn.close()
