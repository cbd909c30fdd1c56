"""Group commit of bookings: ``book_batch`` answers each item on its own, the same as
one booking at a time would; batches and single bookings racing for the same desks
over HTTP still give one winner per slot; concurrent token lookups stay apart."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_core.booking import BookDesk, DeskAlreadyBooked, PersonAlreadyBooked, UnknownPerson
from ikn_core.domain import Desk, Role, Site
from ikn_core.settings import ApiSettings
from ikn_store.booking import bookings as store
from ikn_store.booking.places import DeskPlace, PlaceCache, desk_place
from ikn_store.people import Person, upsert_people
from tests.helpers import SMALL_SITE, fetch, seed
from tests.test_booking_api import World, _tokens, tomorrow

T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
PEOPLE = ("ani", "budi", "citra")


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    await seed(database_url)
    connection = await asyncpg.connect(database_url)
    await upsert_people(
        connection, [Person(p, p.title(), "kemenpan", "sdm", Role.EMPLOYEE) for p in PEOPLE]
    )
    yield connection
    await connection.close()


async def _item(
    conn: asyncpg.Connection, person: str, desk: str, hours: tuple[int, int]
) -> tuple[DeskPlace, BookDesk]:
    cmd = BookDesk(
        desk,
        person,
        "kemenpan",
        "sdm",
        T0 + timedelta(hours=hours[0]),
        T0 + timedelta(hours=hours[1]),
        person,
    )
    return await desk_place(conn, desk), cmd


def _kinds(outcomes: Sequence[object]) -> list[str]:
    """Each outcome's type: ``tuple`` (booked), the refusal's class, or ``NoneType``."""
    return [type(o).__name__ for o in outcomes]


async def test_each_item_is_answered_as_one_booking_would_be(conn: asyncpg.Connection) -> None:
    await store.OnConnection(conn).insert(*await _item(conn, "citra", "d3", (0, 2)))
    items = [
        await _item(conn, "ani", "d1", (1, 3)),  # booked
        await _item(conn, "budi", "d1", (2, 4)),  # the desk went to the item before
        await _item(conn, "ani", "d2", (2, 5)),  # ani holds d1 then
        await _item(conn, "budi", "d3", (1, 2)),  # taken before the batch
        await _item(conn, "budi", "d2", (3, 4)),  # booked: [1,3) and [3,4) only touch
    ]
    outcomes = await store.book_batch(conn, items)
    assert _kinds(outcomes) == [
        "tuple",
        "DeskAlreadyBooked",
        "PersonAlreadyBooked",
        "DeskAlreadyBooked",
        "tuple",
    ]
    booked = [o for o in outcomes if isinstance(o, tuple)]
    assert [(b.desk_id, b.person_id, created) for b, created in booked] == [
        ("d1", "ani", True),
        ("d2", "budi", True),
    ]
    assert booked[0][0].start == T0 + timedelta(hours=1) and booked[0][0].tz == "Asia/Makassar"
    rows = await conn.fetch("SELECT desk_id, person_id FROM bookings ORDER BY desk_id")
    assert [tuple(r) for r in rows] == [("d1", "ani"), ("d2", "budi"), ("d3", "citra")]


async def test_a_batch_without_collisions_is_decided_by_one_statement(
    conn: asyncpg.Connection,
) -> None:
    """No two items collide with each other, so one INSERT makes all the bookings (one
    subtransaction: one xmin) and one statement trigger marks analytics dirty."""
    await store.OnConnection(conn).insert(*await _item(conn, "citra", "d3", (0, 2)))
    items = [
        await _item(conn, "ani", "d1", (1, 3)),  # booked
        await _item(conn, "budi", "d3", (1, 2)),  # the desk was taken before
        await _item(conn, "citra", "d2", (1, 2)),  # citra holds d3 then
        await _item(conn, "budi", "d2", (3, 4)),  # booked
    ]
    place, cmd = await _item(conn, "citra", "d1", (5, 6))
    items.append((replace(place, fingerprint="stale"), cmd))
    await conn.execute("DELETE FROM analytics_dirty")
    outcomes = await store.book_batch(conn, items)
    assert _kinds(outcomes) == [
        "tuple",
        "DeskAlreadyBooked",
        "PersonAlreadyBooked",
        "tuple",
        "NoneType",  # the place changed since it was read: read it again
    ]
    made = [o[0] for o in outcomes if isinstance(o, tuple)]
    assert [(b.desk_id, b.person_id, b.end - b.start) for b in made] == [
        ("d1", "ani", timedelta(hours=2)),
        ("d2", "budi", timedelta(hours=1)),
    ]
    xmins = await conn.fetchval(
        "SELECT count(DISTINCT xmin::text) FROM bookings WHERE id = any($1::uuid[])",
        [b.id for b in made],
    )
    assert xmins == 1
    dirty = await conn.fetch("SELECT desk_id FROM analytics_dirty ORDER BY desk_id")
    assert [r["desk_id"] for r in dirty] == ["d1", "d2"]


async def test_colliding_items_are_booked_one_by_one(conn: asyncpg.Connection) -> None:
    """Items that collide with each other are decided in order, each on its own."""
    items = [
        await _item(conn, "ani", "d1", (1, 3)),
        await _item(conn, "budi", "d1", (2, 4)),  # collides with the item before
        await _item(conn, "budi", "d2", (2, 4)),
    ]
    outcomes = await store.book_batch(conn, items)
    assert _kinds(outcomes) == ["tuple", "DeskAlreadyBooked", "tuple"]
    assert await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM bookings") == 2


async def test_a_changed_or_disabled_place_asks_for_a_fresh_read(conn: asyncpg.Connection) -> None:
    stale = await _item(conn, "ani", "d1", (1, 2))
    await conn.execute("UPDATE desks SET disabled = true WHERE id = 'd1'")
    fine = await _item(conn, "budi", "d2", (1, 2))
    outcomes = await store.book_batch(conn, [stale, fine])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], tuple)


async def test_a_batch_that_fails_as_a_whole_books_its_items_one_by_one(
    conn: asyncpg.Connection,
) -> None:
    items = [
        await _item(conn, "ani", "d1", (1, 2)),
        await _item(conn, "nobody", "d2", (1, 2)),  # a foreign key breaks the batch
        await _item(conn, "budi", "d1", (1, 2)),
    ]
    outcomes = await store.book_batch(conn, items)
    assert isinstance(outcomes[0], tuple)
    assert isinstance(outcomes[1], UnknownPerson)
    assert isinstance(outcomes[2], DeskAlreadyBooked)
    assert await conn.fetchval("SELECT count(*) FROM bookings") == 1


async def test_keys_series_and_oversized_batches_are_refused(conn: asyncpg.Connection) -> None:
    place, cmd = await _item(conn, "ani", "d1", (1, 2))
    keyed = replace(cmd, idempotency_key="k1")
    series = replace(cmd, series_id=uuid.uuid4())
    for odd in (keyed, series):
        with pytest.raises(ValueError, match="idempotency keys or series"):
            await store.book_batch(conn, [(place, odd)])
    with pytest.raises(ValueError, match="at most"):
        await store.book_batch(conn, [(place, cmd)] * (store.BATCH_MAX + 1))


async def test_person_conflict_is_named(conn: asyncpg.Connection) -> None:
    outcomes = await store.book_batch(
        conn, [await _item(conn, "ani", "d1", (1, 3)), await _item(conn, "ani", "d3", (2, 4))]
    )
    assert isinstance(outcomes[0], tuple) and isinstance(outcomes[1], PersonAlreadyBooked)


async def test_a_cold_desk_brings_its_zone_into_the_cache(conn: asyncpg.Connection) -> None:
    places = PlaceCache()
    await places.fresh(conn, "d1")
    assert places.cached("d2") is not None  # same zone, read along
    assert places.cached("d3") is None  # another zone


# -- over HTTP: batches and single bookings racing -------------------------------------


async def test_batched_and_keyed_bookings_racing_leave_one_winner_per_slot(
    database_url: str,
) -> None:
    desks = tuple(Desk(f"r{i}", "b1-f1-a", f"Meja R{i}", float(i), 0.0) for i in range(8))
    await seed(database_url, Site(SMALL_SITE.buildings, SMALL_SITE.floors, SMALL_SITE.zones, desks))
    people = tuple(Person(f"p{i}", f"P{i}", "kemenpan", "sdm", Role.EMPLOYEE) for i in range(240))
    headers = await _tokens(database_url, people)
    settings = ApiSettings.from_env(
        {"IKN_DATABASE_URL": database_url, "IKN_DATABASE_POOL_MAX": "8"}
    )
    async with TestClient(TestServer(make_app(settings))) as client:
        world = World(database_url, client, headers)

        async def attempt(i: int) -> int:
            # every third request carries a key (booked on its own), the rest go in batches
            key = {"Idempotency-Key": f"k{i}"} if i % 3 == 0 else {}
            body = {
                "desk": f"r{i % 8}",
                "start": tomorrow(8 + (i // 8) % 3).isoformat(),
                "end": tomorrow(10 + (i // 8) % 3).isoformat(),
            }
            response = await client.post(
                "/api/v1/bookings", json=body, headers={**world.headers[f"p{i}"], **key}
            )
            return response.status

        statuses = Counter(await asyncio.gather(*(attempt(i) for i in range(240))))
    rows = await fetch(
        database_url,
        """SELECT count(*) AS n FROM bookings a JOIN bookings b
           ON a.desk_id = b.desk_id AND a.id < b.id AND a.period && b.period""",
    )
    assert rows[0]["n"] == 0
    assert set(statuses) <= {201, 409} and statuses[201] >= 8, statuses  # no 5xx
    won = await fetch(database_url, "SELECT count(*) AS n FROM bookings")
    assert won[0]["n"] == statuses[201]


async def test_concurrent_requests_each_act_as_their_own_token(database_url: str) -> None:
    await seed(database_url)
    people = tuple(Person(f"p{i}", f"P{i}", "kemenpan", "sdm", Role.EMPLOYEE) for i in range(60))
    headers = await _tokens(database_url, people)
    settings = ApiSettings.from_env(
        {"IKN_DATABASE_URL": database_url, "IKN_DATABASE_POOL_MAX": "4"}
    )
    async with TestClient(TestServer(make_app(settings))) as client:

        async def mine(i: int) -> tuple[int, str]:
            auth = headers[f"p{i}"] if i < 60 else {"Authorization": f"Bearer nope-{i}"}
            response = await client.get("/api/v1/bookings", headers=auth)
            body = await response.json()
            return response.status, body.get("person", body.get("type", ""))

        results = await asyncio.gather(*(mine(i) for i in range(70)))
    assert results[:60] == [(200, f"p{i}") for i in range(60)]
    assert {status for status, _ in results[60:]} == {401}
