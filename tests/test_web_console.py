"""The facility managers' live floor map over HTTP with a real PostgreSQL: who may see
it (facility managers and admins; anyone else 403, nobody signed in to the sign-in
page), every desk in its state with no one named, and its event stream sending a
desk's new state (resuming after ``Last-Event-ID``) as the sensor's change is stored.

At ``NOW`` (09:00 WITA) Ani is checked in at d1 (08:00-12:00), d2 has no booking."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from ikn_core.domain import Role
from ikn_service import desk_feed
from ikn_store.live_floor import BookingChange
from ikn_store.people import Person, upsert_people
from tests.test_sse import next_event, next_frame
from tests.test_web import Site, _open
from tests.web_site import DEV_LOGIN, NOW

pytestmark = pytest.mark.usefixtures("no_release")
ADMIN = Person("dewi", "Dewi Admin", "otorita", "ti", Role.ADMIN, "b1")
ROUTES = ("/console/floor", "/console/floor?floor=b1-f1", "/console/floor/events?floor=b1-f1")


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async for opened in _open(database_url, DEV_LOGIN):
        conn = await asyncpg.connect(database_url)
        try:
            await upsert_people(conn, [ADMIN])
        finally:
            await conn.close()
        yield opened


async def sense(url: str, desk: str, occupied: bool, at: datetime) -> None:
    """The desk's sensor state stored as the ingest stores it (its trigger notifies)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO desk_state (desk_id, device_id, occupied, since, reported_at,
                                       updated_at)
               VALUES ($1, 'desk-' || $1, $2, $3, $3, now())
               ON CONFLICT (desk_id) DO UPDATE SET occupied = $2, since = $3,
                   reported_at = $3, updated_at = now()""",
            desk,
            occupied,
            at,
        )
    finally:
        await conn.close()


def desk_states(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-desk="([^"]+)" data-state="([^"]+)"', page))


@pytest.mark.parametrize("person", ["ani", "sari"])
async def test_staff_and_supervisors_get_403(site: Site, person: str) -> None:
    await site.sign_in(person)
    for path in ROUTES:
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 403, path
    assert "/console/floor" not in await (await site.client.get("/")).text()  # not in the menu


async def test_nobody_signed_in_is_sent_to_sign_in(site: Site) -> None:
    for path in ROUTES:
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("person", ["fajar", "dewi"])
async def test_facility_managers_and_admins_see_every_desk_in_its_state(
    site: Site, person: str
) -> None:
    await sense(site.url, "d2", True, NOW - timedelta(minutes=3))
    await site.sign_in(person)
    assert 'href="/console/floor"' in await (await site.client.get("/")).text()
    response = await site.client.get("/console/floor?floor=b1-f1")
    assert response.status == 200
    page = await response.text()
    # d1: Ani checked in, no reading; d2: someone there, no booking
    assert desk_states(page) == {"d1": "checked_in", "d2": "unbooked_use"}
    assert "Ani" not in page.replace("Dewi Admin", "").replace("Fajar Nugroho", "")
    assert "08.57 WITA" in page  # when d2's sensor last changed
    other = await site.client.get("/console/floor?floor=b1-f2")
    assert desk_states(await other.text()) == {"d3": "free"}
    assert (await site.client.get("/console/floor?floor=nowhere")).status == 404
    # its stream too (it was a stream of nothing, held open); a bad resume names itself
    nowhere = await site.client.get("/console/floor/events?floor=nowhere")
    assert nowhere.status == 404 and "floor: no such floor" in await nowhere.text()
    bad = await site.client.get("/console/floor/events?floor=b1-f1&after=-1")
    assert bad.status == 400 and "after: a desk event id" in await bad.text()


async def test_the_stream_sends_the_desks_new_state_and_resumes(site: Site) -> None:
    await site.sign_in("fajar")
    page = await (await site.client.get("/console/floor?floor=b1-f1")).text()
    found = re.search(r'data-stream="([^"]+)"', page)
    assert found is not None
    url = found[1].replace("&amp;", "&")
    async with site.client.get(url) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        # first every desk as it is now, without an id
        refresh = [await next_frame(stream) for _ in range(2)]
        assert [(i, e["desk"], e["state"], e["refresh"]) for i, e in refresh] == [
            (None, "d1", "checked_in", True),
            (None, "d2", "free", True),
        ]
        await sense(site.url, "d2", True, NOW)
        first, event = await next_event(stream)
        assert event["desk"] == "d2" and event["state"] == "unbooked_use"
        assert event["label"] == "dipakai tanpa pesanan"
        assert event["since_text"] == event["reported_text"] == "09.00 WITA"
        assert event["zone"] == {
            "id": "b1-f1-a",
            "people": None,
            "desks": 2,
            "reported_at": None,
            "reported_text": "",
        }
        await sense(site.url, "d1", True, NOW)
        _, event = await next_event(stream)
        assert (event["desk"], event["state"]) == ("d1", "occupied")
    await sense(site.url, "d3", True, NOW)  # another floor: not on this stream
    await sense(site.url, "d2", False, NOW)
    resumed = {"Last-Event-ID": str(first)}
    async with site.client.get(url, headers=resumed) as stream:
        frames = [await next_frame(stream) for _ in range(4)]
    assert [(i is None, e["desk"], e["state"]) for i, e in frames] == [
        (True, "d1", "occupied"),  # the refresh
        (True, "d2", "free"),
        (False, "d1", "occupied"),  # then what was missed, with ids
        (False, "d2", "free"),
    ]


async def test_a_booking_shows_at_the_next_heartbeat(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change no notification announced reaches an open map at its next heartbeat,
    as a refresh: here a booking the database's clock sees as past (its trigger stays
    silent), as a booking whose start comes by time alone would."""
    monkeypatch.setattr(desk_feed, "HEARTBEAT_S", 0.3)
    await site.sign_in("fajar")
    async with site.client.get("/console/floor/events?floor=b1-f1") as stream:
        assert [(await next_frame(stream))[1]["state"] for _ in range(2)] == ["checked_in", "free"]
        conn = await asyncpg.connect(site.url)
        try:
            await conn.execute(
                """INSERT INTO bookings (desk_id, person_id, period, created_by)
                   VALUES ('d2', 'budi', tstzrange($1, $2), 'budi')""",
                NOW - timedelta(minutes=5),
                NOW + timedelta(hours=2),
            )
        finally:
            await conn.close()
        found, event = await next_frame(stream)
    assert (found, event["desk"], event["state"], event["refresh"]) == (None, "d2", "booked", True)


async def test_a_booking_change_is_pushed_at_once_without_an_id(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A booking's notification (its trigger's, on the database's clock: sent here by
    hand, as the test's clock is not the database's) recomputes its desk at once; the
    frame has no id (nothing to resume from), and one that changes nothing sends none."""
    monkeypatch.setattr(desk_feed, "HEARTBEAT_S", 600.0)
    await site.sign_in("fajar")
    async with site.client.get("/console/floor/events?floor=b1-f1") as stream:
        assert [(await next_frame(stream))[1]["state"] for _ in range(2)] == ["checked_in", "free"]
        conn = await asyncpg.connect(site.url)
        try:
            async with conn.transaction():  # one notification a desk and commit
                await conn.execute(
                    """INSERT INTO bookings (desk_id, person_id, period, created_by)
                       VALUES ('d2', 'budi', tstzrange($1, $2), 'budi')""",
                    NOW - timedelta(minutes=5),
                    NOW + timedelta(hours=2),
                )
                await conn.execute("SELECT pg_notify('ikn_booking_changes', 'd2')")
            found, event = await next_frame(stream)
            assert (found, event["desk"], event["state"], event["refresh"]) == (
                None,
                "d2",
                "booked",
                False,
            )
            await conn.execute("SELECT pg_notify('ikn_booking_changes', 'd2')")  # no change
        finally:
            await conn.close()
        await sense(site.url, "d1", True, NOW)
        found, event = await next_frame(stream)
    assert found is not None and (event["desk"], event["state"]) == ("d1", "occupied")


def test_the_apis_stream_takes_no_booking_changes() -> None:
    change = BookingChange("d2", "b1-f1-a", "b1-f1", "b1", "Asia/Makassar")
    assert not desk_feed.Subscriber({"floor": "b1-f1"}).wants(change)
    assert desk_feed.Subscriber({"floor": "b1-f1"}, bookings=True).wants(change)
    assert not desk_feed.Subscriber({"floor": "b1-f2"}, bookings=True).wants(change)


async def test_an_assigned_desk_shows_no_presence(site: Site) -> None:
    """d2 assigned to Budi: the map says so, and neither its sensor's state nor when
    it changed, on the page or in the stream, where a change at it sends nothing."""
    await sense(site.url, "d2", True, NOW - timedelta(minutes=3))
    conn = await asyncpg.connect(site.url)
    try:
        await conn.execute("UPDATE desks SET assigned_to = 'budi' WHERE id = 'd2'")
    finally:
        await conn.close()
    await site.sign_in("fajar")
    page = await (await site.client.get("/console/floor?floor=b1-f1")).text()
    assert desk_states(page) == {"d1": "checked_in", "d2": "assigned"}
    assert "08.57" not in page  # when d2's sensor changed: not shown
    assert "Budi" not in page
    row = re.search(r'<tr data-desk-row="d2">.*?</tr>', page, re.S)
    assert row is not None and "ditetapkan untuk satu orang" in row[0]
    async with site.client.get("/console/floor/events?floor=b1-f1") as stream:
        frames = [(await next_frame(stream))[1] for _ in range(2)]
        assert [(e["desk"], e["state"], e["since"], e["reported_at"]) for e in frames[1:]] == [
            ("d2", "assigned", None, None)
        ]
        await sense(site.url, "d2", False, NOW)  # not told
        await sense(site.url, "d1", True, NOW)
        found, event = await next_frame(stream)
    assert found is not None and (event["desk"], event["state"]) == ("d1", "occupied")


async def test_signing_out_ends_an_open_stream(database_url: str) -> None:
    async for site in _open(database_url, {**DEV_LOGIN, "IKN_SSE_RECHECK_S": "0.2"}):
        await site.sign_in("fajar")
        token = await site.csrf("/console/floor")
        async with site.client.get("/console/floor/events?floor=b1-f1") as stream:
            assert await stream.content.readline() == b"retry: 2000\n"  # open
            await asyncio.sleep(0.5)  # past a recheck: still signed in, still open
            assert not stream.content.at_eof()
            await site.client.post(
                "/logout", data={"csrf_token": token}, headers=site.origin, allow_redirects=False
            )
            async with asyncio.timeout(10):
                rest = await stream.content.read()  # to its end: the server closed it
            assert stream.content.at_eof() and b"\nid: " not in rest  # no desk event
