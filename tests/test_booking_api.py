"""The booking API over real HTTP and PostgreSQL: rules, time zones, idempotency,
authorisation per role, and the database refusing double bookings under load."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_core.booking import BookingRules
from ikn_core.domain import Building, Desk, Floor, Role, Site, Zone
from ikn_store.booking.places import set_rules
from ikn_store.people import Person, link_token, upsert_people
from ikn_store.tokens import create_token
from tests.helpers import SMALL_SITE, api_settings, fetch, seed

PROBLEM = "application/problem+json"
WITA = ZoneInfo("Asia/Makassar")
WIB = ZoneInfo("Asia/Jakarta")
SITE = Site(
    buildings=(*SMALL_SITE.buildings, Building("jkt", "Gedung Jakarta", "Asia/Jakarta")),
    floors=(*SMALL_SITE.floors, Floor("jkt-f1", "jkt", "Lantai 1", 1)),
    zones=(*SMALL_SITE.zones, Zone("jkt-f1-a", "jkt-f1", "Zona A")),
    desks=(*SMALL_SITE.desks, Desk("j1", "jkt-f1-a", "Meja J1", 5.0, 2.0, ("docking",))),
    devices=SMALL_SITE.devices,
)
PEOPLE = (
    Person("ani", "Ani", "kemenpan", "sdm", Role.EMPLOYEE, "b1"),
    Person("budi", "Budi", "kemenpan", "sdm", Role.EMPLOYEE, "b1"),
    Person("citra", "Citra", "bappenas", "ti", Role.EMPLOYEE, "b1"),
    Person("dewi", "Dewi", "kemenpan", "sdm", Role.DELEGATE, "b1"),
    Person("sari", "Sari", "kemenpan", "sdm", Role.SUPERVISOR, "b1"),
    Person("fajar", "Fajar", "otorita", "fasilitas", Role.FACILITY_MANAGER, "b1"),
    Person("adi", "Adi", "otorita", "ti", Role.ADMIN, "b1"),
)

Client = TestClient[web.Request, web.Application]


@dataclass
class World:
    url: str
    client: Client
    headers: dict[str, dict[str, str]]  # by person id; "service" has a token of no one

    async def book(self, who: str, desk: str, start: datetime, end: datetime, **kw: Any) -> Any:
        body = {"desk": desk, "start": start.isoformat(), "end": end.isoformat(), **kw}
        return await self.client.post("/api/v1/bookings", json=body, headers=self.headers[who])


async def _tokens(url: str, people: tuple[Person, ...]) -> dict[str, dict[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        await upsert_people(conn, list(people))
        headers = {}
        for person in people:
            token = await create_token(conn, person.name, str(person.role))
            await link_token(conn, token, person.id)
            headers[person.id] = {"Authorization": f"Bearer {token}"}
        service = await create_token(conn, "service", "facility_manager")
        headers["service"] = {"Authorization": f"Bearer {service}"}
        return headers
    finally:
        await conn.close()


@asynccontextmanager
async def open_world(database_url: str) -> AsyncIterator[World]:
    """The site, the people with their tokens, and the API (other booking tests use it)."""
    await seed(database_url, SITE)
    headers = await _tokens(database_url, PEOPLE)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        yield World(database_url, client, headers)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with open_world(database_url) as opened:
        yield opened


def tomorrow(hour: int, minute: int = 0, tz: ZoneInfo = WITA) -> datetime:
    day = datetime.now(tz).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


async def _problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body: dict[str, Any] = await response.json()
    assert body["type"].endswith("/" + kind), body
    return body


# -- creating --------------------------------------------------------------------------


async def test_book_answers_in_the_buildings_zone(world: World) -> None:
    start = tomorrow(9).astimezone(ZoneInfo("UTC"))
    response = await world.book("ani", "d1", start, start + timedelta(hours=8))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert response.headers["Location"] == f"/api/v1/bookings/{body['id']}"
    assert body["start"] == tomorrow(9).isoformat()  # given in UTC, answered in WITA
    assert body["start"].endswith("+08:00")
    assert (body["desk"], body["person"], body["status"], body["created_by"]) == (
        "d1",
        "ani",
        "booked",
        "ani",
    )
    rows = await fetch(world.url, "SELECT lower(period) AS s FROM bookings")
    assert [r["s"] for r in rows] == [start]


async def test_z_and_offset_inputs_name_the_same_instant(world: World) -> None:
    start = tomorrow(9)
    z = start.astimezone(ZoneInfo("UTC")).isoformat().replace("+00:00", "Z")
    body = {"desk": "d1", "start": z, "end": (start + timedelta(hours=1)).isoformat()}
    first = await world.client.post("/api/v1/bookings", json=body, headers=world.headers["ani"])
    assert first.status == 201
    # The same hour in +08:00 collides with it: the same instant, the same desk.
    again = await world.book("budi", "d1", start, start + timedelta(hours=1))
    await _problem(again, 409, "desk-taken")


async def test_a_building_in_another_zone_keeps_its_own_hours(world: World) -> None:
    # 05:30 WIB (06:30 WITA) is before the Jakarta building opens.
    early = await world.book("ani", "j1", tomorrow(5, 30, WIB), tomorrow(8, 0, WIB))
    body = await _problem(early, 422, "outside-allowed-hours")
    assert body["invalid_params"][0]["name"] == "start"
    ok = await world.book("ani", "j1", tomorrow(18, 0, WIB), tomorrow(19, 30, WIB))
    assert ok.status == 201
    assert (await ok.json())["start"].endswith("+07:00")


async def test_across_midnight_wita_in_a_building_open_all_night(world: World) -> None:
    night = (tomorrow(22), tomorrow(22) + timedelta(hours=4))
    await _problem(await world.book("ani", "d1", *night), 422, "outside-allowed-hours")
    conn = await asyncpg.connect(world.url)
    try:
        await set_rules(conn, "b1", BookingRules(opens_minute=0, closes_minute=1440))
    finally:
        await conn.close()
    response = await world.book("ani", "d1", *night)
    assert response.status == 201
    body = await response.json()
    assert body["end"] == (tomorrow(2) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"start": "2026-11-24T08:00:00"}, "start"),  # naive
        ({"end": "2026-11-24T17:00"}, "end"),  # naive
        ({"start": "tomorrow"}, "start"),
        ({"start": None}, "start"),
        ({"desk": "d 1"}, "desk"),
        ({"desk": 7}, "desk"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    world: World, change: dict[str, Any], field: str
) -> None:
    body = {"desk": "d1", "start": tomorrow(8).isoformat(), "end": tomorrow(9).isoformat()}
    body.update(change)
    response = await world.client.post("/api/v1/bookings", json=body, headers=world.headers["ani"])
    problem = await _problem(response, 400, "invalid-parameter")
    assert problem["invalid_params"][0]["name"] == field


async def test_not_json_and_not_an_object(world: World) -> None:
    headers = {**world.headers["ani"], "Content-Type": "application/json"}
    for data in (b"{", b"[1]"):
        response = await world.client.post("/api/v1/bookings", data=data, headers=headers)
        assert (await _problem(response, 400, "invalid-parameter"))["invalid_params"][0][
            "name"
        ] == "body"


@pytest.mark.parametrize(
    ("window", "kind"),
    [
        ((-1, 9, 1), "in-the-past"),
        ((15, 9, 1), "too-far-ahead"),
        ((1, 21, 1), "outside-allowed-hours"),
        ((1, 7, 13), "too-long"),
    ],
)
async def test_each_broken_rule_has_its_type(
    world: World, window: tuple[int, int, int], kind: str
) -> None:
    days, hour, hours = window
    start = tomorrow(hour) + timedelta(days=days - 1)
    response = await world.book("ani", "d1", start, start + timedelta(hours=hours))
    await _problem(response, 422, kind)


async def test_unknown_desk(world: World) -> None:
    response = await world.book("ani", "nope", tomorrow(8), tomorrow(9))
    await _problem(response, 404, "unknown-desk")


async def test_titles_follow_accept_language(world: World) -> None:
    assert (await world.book("ani", "d1", tomorrow(8), tomorrow(10))).status == 201
    titles = {}
    for language in ("id", "en-GB,en;q=0.9", "en;q=0.5, id-ID;q=0.8", "fr", ""):
        headers = {**world.headers["budi"], "Accept-Language": language}
        body = {"desk": "d1", "start": tomorrow(9).isoformat(), "end": tomorrow(11).isoformat()}
        response = await world.client.post("/api/v1/bookings", json=body, headers=headers)
        titles[language] = (await _problem(response, 409, "desk-taken"))["title"]
    assert titles["id"] == titles["en;q=0.5, id-ID;q=0.8"] == "Meja sudah dipesan pada waktu ini"
    assert titles["en-GB,en;q=0.9"] == titles["fr"] == titles[""]
    assert titles["fr"] == "The desk is already booked for this time"


async def test_one_desk_per_person_at_a_time(world: World) -> None:
    assert (await world.book("ani", "d1", tomorrow(8), tomorrow(10))).status == 201
    response = await world.book("ani", "d2", tomorrow(9), tomorrow(11))
    await _problem(response, 409, "person-already-booked")
    # Back to back is not an overlap: periods are [start, end).
    assert (await world.book("ani", "d2", tomorrow(10), tomorrow(11))).status == 201
    assert (await world.book("budi", "d1", tomorrow(10), tomorrow(12))).status == 201


# -- idempotency -----------------------------------------------------------------------


async def test_the_same_idempotency_key_never_books_twice(world: World) -> None:
    headers = {**world.headers["ani"], "Idempotency-Key": "k-1"}
    body = {"desk": "d1", "start": tomorrow(8).isoformat(), "end": tomorrow(9).isoformat()}
    first = await world.client.post("/api/v1/bookings", json=body, headers=headers)
    again = await world.client.post("/api/v1/bookings", json=body, headers=headers)
    assert (first.status, again.status) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await first.json())["id"] == (await again.json())["id"]
    # The same key for another booking is refused, not silently replayed.
    other = {**body, "desk": "d2"}
    reused = await world.client.post("/api/v1/bookings", json=other, headers=headers)
    await _problem(reused, 422, "idempotency-key-reused")
    # Keys belong to their creator: Budi's "k-1" is his own.
    budi = {**world.headers["budi"], "Idempotency-Key": "k-1"}
    theirs = await world.client.post("/api/v1/bookings", json=other, headers=budi)
    assert theirs.status == 201
    assert len(await fetch(world.url, "SELECT id FROM bookings")) == 2


async def test_concurrent_retries_with_one_key_make_one_booking(world: World) -> None:
    headers = {**world.headers["ani"], "Idempotency-Key": "retry-storm"}
    body = {"desk": "d1", "start": tomorrow(8).isoformat(), "end": tomorrow(9).isoformat()}

    async def attempt() -> tuple[int, str]:
        response = await world.client.post("/api/v1/bookings", json=body, headers=headers)
        return response.status, (await response.json())["id"]

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 200: 49}
    assert len({booking_id for _, booking_id in results}) == 1
    assert len(await fetch(world.url, "SELECT id FROM bookings")) == 1


async def test_a_bad_idempotency_key(world: World) -> None:
    headers = {**world.headers["ani"], "Idempotency-Key": "x" * 256}
    body = {"desk": "d1", "start": tomorrow(8).isoformat(), "end": tomorrow(9).isoformat()}
    response = await world.client.post("/api/v1/bookings", json=body, headers=headers)
    problem = await _problem(response, 400, "invalid-parameter")
    assert problem["invalid_params"][0]["name"] == "Idempotency-Key"


# -- reading, cancelling, checking in: who may do what ------------------------------------


async def _booked(world: World, who: str, desk: str = "d1", hour: int = 8) -> str:
    response = await world.book(who, desk, tomorrow(hour), tomorrow(hour + 1))
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_list_mine_shows_only_mine(world: World) -> None:
    mine = await _booked(world, "ani")
    await _booked(world, "budi", "d2")
    response = await world.client.get("/api/v1/bookings", headers=world.headers["ani"])
    assert response.status == 200
    body = await response.json()
    assert body["person"] == "ani"
    assert [b["id"] for b in body["bookings"]] == [mine]
    none = await world.client.get("/api/v1/bookings", headers=world.headers["service"])
    assert (await none.json()) == {"person": None, "no_shows": 0, "bookings": []}


@pytest.mark.parametrize("who", ["budi", "dewi", "sari"])
async def test_nobody_lists_anothers_bookings_without_the_role(world: World, who: str) -> None:
    await _booked(world, "ani")
    response = await world.client.get("/api/v1/bookings?person=ani", headers=world.headers[who])
    await _problem(response, 403, "forbidden")


@pytest.mark.parametrize("who", ["fajar", "adi", "service"])
async def test_facility_managers_and_admins_list_anyones(world: World, who: str) -> None:
    booking_id = await _booked(world, "ani")
    response = await world.client.get("/api/v1/bookings?person=ani", headers=world.headers[who])
    assert response.status == 200
    assert [b["id"] for b in (await response.json())["bookings"]] == [booking_id]


async def test_listing_parameters_are_checked(world: World) -> None:
    bad = await world.client.get("/api/v1/bookings?who=ani", headers=world.headers["ani"])
    assert (await _problem(bad, 400, "invalid-parameter"))["invalid_params"][0]["name"] == "who"
    bad = await world.client.get("/api/v1/bookings?person=a%20b", headers=world.headers["fajar"])
    await _problem(bad, 400, "invalid-parameter")


@pytest.mark.parametrize("who", ["budi", "citra", "dewi", "sari"])
async def test_nobody_cancels_or_checks_in_anothers_booking(world: World, who: str) -> None:
    booking_id = await _booked(world, "ani")
    cancel = await world.client.delete(f"/api/v1/bookings/{booking_id}", headers=world.headers[who])
    await _problem(cancel, 404, "booking-not-found")
    check_in = await world.client.post(
        f"/api/v1/bookings/{booking_id}/check-in", headers=world.headers[who]
    )
    await _problem(check_in, 404, "booking-not-found")
    rows = await fetch(world.url, "SELECT status FROM bookings")
    assert [r["status"] for r in rows] == ["booked"]


@pytest.mark.parametrize("who", ["ani", "fajar", "adi", "service"])
async def test_owner_and_facility_managers_cancel(world: World, who: str) -> None:
    booking_id = await _booked(world, "ani")
    response = await world.client.delete(
        f"/api/v1/bookings/{booking_id}", headers=world.headers[who]
    )
    assert response.status == 200
    assert (await response.json())["status"] == "cancelled"
    again = await world.client.delete(f"/api/v1/bookings/{booking_id}", headers=world.headers[who])
    await _problem(again, 409, "booking-not-active")
    # The desk and the person are free again at once.
    assert (await world.book("budi", "d1", tomorrow(8), tomorrow(9))).status == 201
    assert (await world.book("ani", "d2", tomorrow(8), tomorrow(9))).status == 201


async def test_unknown_booking_ids(world: World) -> None:
    headers = world.headers["adi"]
    missing = "00000000-0000-4000-8000-000000000000"
    await _problem(
        await world.client.delete(f"/api/v1/bookings/{missing}", headers=headers),
        404,
        "booking-not-found",
    )
    bad = await world.client.delete("/api/v1/bookings/42", headers=headers)
    assert (await _problem(bad, 400, "invalid-parameter"))["invalid_params"][0]["name"] == "id"


async def test_check_in_from_the_app_records_the_signal(world: World) -> None:
    conn = await asyncpg.connect(world.url)
    try:  # a booking that is under way now (made directly: the API refuses the past)
        booking_id = await conn.fetchval(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d1', 'ani', tstzrange(now() - interval '5 min',
                                             now() + interval '1 hour'), 'ani')
               RETURNING id"""
        )
    finally:
        await conn.close()
    path = f"/api/v1/bookings/{booking_id}/check-in"
    # A facility manager may cancel it, but checks in only to their own bookings.
    await _problem(
        await world.client.post(path, headers=world.headers["fajar"]), 404, "booking-not-found"
    )
    response = await world.client.post(path, headers=world.headers["ani"])
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["check_in_signal"]) == ("checked_in", "app")
    assert body["checked_in_at"].endswith("+08:00")
    again = await world.client.post(path, headers=world.headers["ani"])
    assert (await again.json())["checked_in_at"] == body["checked_in_at"]  # the first one stays


async def test_check_in_too_early(world: World) -> None:
    booking_id = await _booked(world, "ani")
    response = await world.client.post(
        f"/api/v1/bookings/{booking_id}/check-in", headers=world.headers["ani"]
    )
    await _problem(response, 409, "outside-check-in-window")


async def test_a_token_of_no_one_cannot_book(world: World) -> None:
    response = await world.book("service", "d1", tomorrow(8), tomorrow(9))
    await _problem(response, 403, "not-a-person")


# -- on behalf of someone ---------------------------------------------------------------


async def test_a_delegate_books_for_their_unit_only(world: World) -> None:
    ok = await world.book("dewi", "d1", tomorrow(8), tomorrow(9), person="ani")
    assert ok.status == 201
    body = await ok.json()
    assert (body["person"], body["created_by"]) == ("ani", "dewi")
    # Ani sees it as hers, and the delegate may cancel what she made.
    mine = await world.client.get("/api/v1/bookings", headers=world.headers["ani"])
    assert [b["id"] for b in (await mine.json())["bookings"]] == [body["id"]]
    other_unit = await world.book("dewi", "d2", tomorrow(8), tomorrow(9), person="citra")
    await _problem(other_unit, 403, "not-your-delegation")
    cancel = await world.client.delete(
        f"/api/v1/bookings/{body['id']}", headers=world.headers["dewi"]
    )
    assert cancel.status == 200


@pytest.mark.parametrize("who", ["budi", "sari"])
async def test_employees_and_supervisors_book_only_for_themselves(world: World, who: str) -> None:
    response = await world.book(who, "d1", tomorrow(8), tomorrow(9), person="ani")
    await _problem(response, 403, "not-your-delegation")


async def test_facility_managers_book_for_anyone(world: World) -> None:
    response = await world.book("fajar", "d1", tomorrow(8), tomorrow(9), person="citra")
    assert response.status == 201
    unknown = await world.book("fajar", "d1", tomorrow(10), tomorrow(11), person="nobody")
    await _problem(unknown, 404, "unknown-person")


# -- never twice, under load ------------------------------------------------------------


async def test_hundreds_of_concurrent_requests_one_winner_per_slot(database_url: str) -> None:
    desks = tuple(Desk(f"r{i}", "b1-f1-a", f"Meja R{i}", float(i), 0.0) for i in range(10))
    site = Site(SMALL_SITE.buildings, SMALL_SITE.floors, SMALL_SITE.zones, desks)
    await seed(database_url, site)
    people = tuple(Person(f"p{i}", f"P{i}", "kemenpan", "sdm", Role.EMPLOYEE) for i in range(300))
    headers = await _tokens(database_url, people)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    slots = [(tomorrow(8), tomorrow(12)), (tomorrow(10), tomorrow(14))]  # overlapping slots
    async with TestClient(TestServer(app)) as client:
        world = World(database_url, client, headers)

        async def attempt(i: int) -> tuple[str, int, str]:
            desk = f"r{i % 10}"
            response = await world.book(f"p{i}", desk, *slots[(i // 10) % 2])
            body = await response.json()
            return desk, response.status, body.get("type", "")

        results = await asyncio.gather(*(attempt(i) for i in range(300)))
    statuses = Counter(status for _, status, _ in results)
    assert statuses == {201: 10, 409: 290}, statuses  # one winner per desk, no 500
    winners = Counter(desk for desk, status, _ in results if status == 201)
    assert winners == {f"r{i}": 1 for i in range(10)}
    assert {kind.rsplit("/", 1)[1] for _, status, kind in results if status == 409} == {
        "desk-taken"
    }
    overlaps = await fetch(
        database_url,
        """SELECT count(*) AS n FROM bookings a JOIN bookings b
           ON a.desk_id = b.desk_id AND a.id < b.id AND a.period && b.period""",
    )
    assert overlaps[0]["n"] == 0


async def test_one_person_racing_for_many_desks_gets_one(world: World) -> None:
    async def attempt(desk: str) -> int:
        response = await world.book("ani", desk, tomorrow(8), tomorrow(9))
        return int(response.status)

    statuses = await asyncio.gather(*(attempt(d) for d in ("d1", "d2", "d3") * 20))
    assert Counter(statuses) == {201: 1, 409: 59}
    rows = await fetch(world.url, "SELECT person_id FROM bookings")
    assert [r["person_id"] for r in rows] == ["ani"]


# -- availability -----------------------------------------------------------------------


async def _availability(world: World, query: str, who: str = "ani") -> Any:
    return await world.client.get(f"/api/v1/availability?{query}", headers=world.headers[who])


def _window(start: datetime, end: datetime) -> str:
    return urlencode({"start": start.isoformat(), "end": end.isoformat()})


async def test_availability_of_a_floor(world: World) -> None:
    await _booked(world, "budi", "d2", 9)
    response = await _availability(world, "floor=b1-f1&" + _window(tomorrow(8), tomorrow(12)))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["floor"] == "b1-f1"
    assert body["start"] == tomorrow(8).isoformat()
    assert body["summary"] == {
        "free": 1,
        "booked": 1,
        "occupied": 0,
        "offline": 0,
        "disabled": 0,
        "assigned": 0,
    }
    d1, d2 = body["desks"]
    assert (d1["desk"], d1["state"], d1["free"], d1["x"], d1["y"]) == ("d1", "free", True, 1.0, 1.0)
    assert (d2["desk"], d2["state"], d2["free"]) == ("d2", "booked", False)
    # Before the booking starts, d2 is free.
    earlier = await _availability(world, "floor=b1-f1&" + _window(tomorrow(7), tomorrow(9)))
    assert [d["state"] for d in (await earlier.json())["desks"]] == ["free", "free"]


async def test_availability_filters_by_equipment_and_building(world: World) -> None:
    window = _window(tomorrow(8), tomorrow(9))
    monitors = await (await _availability(world, f"equipment=monitor&{window}")).json()
    assert [d["desk"] for d in monitors["desks"]] == ["d1"]
    jakarta = await (await _availability(world, f"building=jkt&equipment=docking&{window}")).json()
    assert [d["desk"] for d in jakarta["desks"]] == ["j1"]
    everything = await (await _availability(world, window)).json()
    assert {d["desk"] for d in everything["desks"]} == {"d1", "d2", "d3", "j1"}


async def test_availability_shows_walk_ups_and_offline_sensors_now(world: World) -> None:
    conn = await asyncpg.connect(world.url)
    try:
        await conn.execute(
            """INSERT INTO desk_state (desk_id, device_id, occupied, since, reported_at, updated_at)
               VALUES ('d1', 'desk-d1', true, now(), now(), now())"""
        )
        await conn.execute(
            "INSERT INTO device_status (device_id, online) VALUES ('desk-d2', false)"
        )
    finally:
        await conn.close()
    now = datetime.now(WITA)
    body = await (
        await _availability(world, "zone=b1-f1-a&" + _window(now, now + timedelta(hours=1)))
    ).json()
    assert [(d["desk"], d["state"], d["free"]) for d in body["desks"]] == [
        ("d1", "occupied", False),
        ("d2", "offline", True),
    ]
    later = await (
        await _availability(world, "zone=b1-f1-a&" + _window(tomorrow(8), tomorrow(9)))
    ).json()
    assert [d["state"] for d in later["desks"]] == ["free", "offline"]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("start=2026-11-24T08:00:00&end=2026-11-24T09:00:00%2B08:00", 400, "start"),
        ("start=2026-11-24T08:00:00%2B08:00&end=2026-11-24T09:00:00", 400, "end"),
        ("start=2026-11-24T08:00:00%2B08:00", 400, "end"),
        ("start=2026-11-24T09:00:00Z&end=2026-11-24T08:00:00Z", 400, "end"),
        ("start=2026-11-01T00:00:00Z&end=2026-12-24T00:00:00Z", 400, "end"),
        (
            "start=2026-11-24T08:00:00Z&end=2026-11-24T09:00:00Z&equipment=Big%20Screen",
            400,
            "equipment",
        ),
        ("start=2026-11-24T08:00:00Z&end=2026-11-24T09:00:00Z&flor=b1-f1", 400, "flor"),
        ("start=2026-11-24T08:00:00Z&end=2026-11-24T09:00:00Z&floor=b1%20f1", 400, "floor"),
        ("start=2026-11-24T08:00:00Z&end=2026-11-24T09:00:00Z&zone=nowhere", 404, "zone"),
    ],
)
async def test_availability_bad_parameters(
    world: World, query: str, status: int, field: str
) -> None:
    response = await _availability(world, query)
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    assert (await response.json())["invalid_params"][0]["name"] == field


# -- iCalendar feed ---------------------------------------------------------------------


async def test_icalendar_feed_of_my_bookings(world: World) -> None:
    mine = await _booked(world, "ani", "d1", 8)
    await _booked(world, "budi", "d2", 8)
    response = await world.client.get("/api/v1/bookings.ics", headers=world.headers["ani"])
    assert response.status == 200
    assert response.content_type == "text/calendar"
    text = (await response.read()).decode()
    assert text.endswith("END:VCALENDAR\r\n")
    lines = text.split("\r\n")[:-1]
    assert all(len(line.encode()) <= 75 for line in lines)
    assert lines[0] == "BEGIN:VCALENDAR" and "VERSION:2.0" in lines
    assert [line for line in lines if line.startswith("UID:")] == [f"UID:{mine}@ikn-workspace"]
    utc = ZoneInfo("UTC")
    assert f"DTSTART:{tomorrow(8).astimezone(utc):%Y%m%dT%H%M%SZ}" in lines
    assert f"DTEND:{tomorrow(9).astimezone(utc):%Y%m%dT%H%M%SZ}" in lines
    assert "SUMMARY:Desk d1" in lines
    empty = await world.client.get("/api/v1/bookings.ics", headers=world.headers["service"])
    assert "BEGIN:VEVENT" not in await empty.text()
    bad = await world.client.get("/api/v1/bookings.ics?x=1", headers=world.headers["ani"])
    await _problem(bad, 400, "invalid-parameter")


def test_icalendar_long_lines_are_folded_and_text_escaped() -> None:
    from ikn_service.booking_feed import ics_fold, ics_text

    line = "X-WR-CALNAME:" + ics_text("Meja; baris, panjang\n") + "é" * 80
    folded = ics_fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode()) <= 75 for p in parts)
    assert "".join(p.removeprefix(" ") for p in parts) == line
    assert "Meja\\; baris\\, panjang\\n" in line
