"""The displays and the door's check-in over HTTP with a real PostgreSQL (issue 19):
signing a display in with its token, what a token of one building may read (its kiosk
and desk displays; never another building's, a person's page or the API), the kiosk's
and the desk display's contents and streams, and the door's rotating code checking a
person in (once), refused when old or forged.

At ``NOW`` (09:00 WITA) Ani is checked in at d1 (08:00-12:00); d2 and d3 are free. A
second building, b2, has one desk, e1."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse

from api.stream import HUB
from ikn_core.domain import Building, Desk, Floor, Site, Zone
from ikn_core.door_code import code_at
from ikn_store.attendance.signals import set_building_site
from ikn_store.displays import create_display_token, revoke_display_token
from tests.helpers import eventually, seed
from tests.test_sse import next_frame
from tests.test_tokens import _ikn
from tests.test_web import Site as WebSite
from tests.test_web import _open
from tests.test_web_console import sense
from tests.web_site import DEV_LOGIN, NOW
from web import displays
from web.checkin import qr_svg

pytestmark = pytest.mark.usefixtures("no_release")
KEY = "test-display-key-0123456789abcdef"
OTHER = Site(
    buildings=(Building("b2", "Gedung Dua"),),
    floors=(Floor("b2-f1", "b2", "Lantai Satu", 1),),
    zones=(Zone("b2-f1-a", "b2-f1", "Zona A"),),
    desks=(Desk("e1", "b2-f1-a", "Meja E1", 1.0, 1.0),),
)
PERSONAL = (
    "/",
    "/bookings",
    "/attendance",
    "/requests",
    "/desks",
    "/console/floor",
    "/unit",
    "/door/done?b=b1",
    f"/door?{code_at(KEY.encode(), 'b1', NOW).query()}",
)
DISPLAY_ROUTES = (
    "/display/kiosk",
    "/display/kiosk/b1",
    "/display/kiosk/b1/events",
    "/display/desk/d1",
    "/display/desk/d1/events",
    "/display/zone/b1-f1-a",
    "/display/zone/b1-f1-a/events",
)


@dataclass
class World:
    site: WebSite
    tokens: dict[str, str]  # building -> a display token of it

    async def sign_in_display(self, building: str = "b1") -> ClientResponse:
        csrf = await self.site.csrf("/display")
        return await self.site.client.post(
            "/display",
            data={"csrf_token": csrf, "token": self.tokens[building]},
            headers=self.site.origin,
            allow_redirects=False,
        )


async def prepare(url: str) -> dict[str, str]:
    """b2, b1 kemenpan's and located, days counted from 1 Nov; a display token each."""
    await seed(url, OTHER)
    conn = await asyncpg.connect(url)
    try:
        await set_building_site(conn, "b1", -0.9745, 116.7085, "kemenpan")
        await conn.execute("UPDATE buildings SET live_from = '2026-11-01'")
        await conn.execute("UPDATE people SET known_since = '2026-11-01T00:00+08:00'")
        return {b: await create_display_token(conn, f"lobby-{b}", b) for b in ("b1", "b2")}
    finally:
        await conn.close()


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async for opened in _open(database_url, {**DEV_LOGIN, "IKN_DISPLAY_KEY": KEY}):
        yield World(opened, await prepare(database_url))


def door_query(at: Any = NOW, building: str = "b1") -> str:
    return code_at(KEY.encode(), building, at).query()


async def test_a_display_signs_in_with_its_token_and_sees_its_kiosk(world: World) -> None:
    client = world.site.client
    first = await client.get("/display/kiosk/b1", allow_redirects=False)
    assert (first.status, first.headers["Location"]) == (303, "/display")
    csrf = await world.site.csrf("/display")
    wrong = await client.post(
        "/display", data={"csrf_token": csrf, "token": "iknd_nope"}, headers=world.site.origin
    )
    assert wrong.status == 403
    assert "Ini bukan token layar" in await wrong.text()
    answer = await world.sign_in_display()
    assert (answer.status, answer.headers["Location"]) == (303, "/display/kiosk")
    cookie = answer.cookies["ikn_display"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/display"
    mine = await client.get("/display/kiosk", allow_redirects=False)
    assert mine.headers["Location"] == "/display/kiosk/b1"
    page = await (await client.get("/display/kiosk/b1")).text()
    floors = re.findall(r'data-floor="([^"]+)" data-free="(\d+)"', page)
    assert floors == [("b1-f1", "1"), ("b1-f2", "1")]  # d1 is Ani's now; d2, d3 free
    assert "meja kosong dari 2" in page and "Gedung Uji" in page
    assert "Ani" not in page and "ani" not in page  # no one is named
    door = re.search(r'data-door-url="([^"]+)"', page)
    assert door is not None
    assert door[1].endswith("/door?" + door_query().replace("&", "&amp;"))
    assert str(qr_svg(html.unescape(door[1]))) in page  # the QR shown is of that address
    assert "berlaku sampai 09.00.30 WITA" in page
    # signed in already: the sign-in page sends the display on to its kiosk
    again = await client.get("/display", allow_redirects=False)
    assert again.headers["Location"] == "/display/kiosk"


async def test_a_display_token_opens_only_its_building_and_nothing_personal(
    world: World,
) -> None:
    client = world.site.client
    await world.sign_in_display("b1")
    for path in (
        "/display/kiosk/b2",
        "/display/kiosk/b2/events",
        "/display/desk/e1",
        "/display/zone/b2-f1-a",
        "/display/zone/b2-f1-a/events",
    ):
        assert (await client.get(path)).status == 403, path
    for path in ("/display/desk/e1/events", "/display/desk/nowhere", "/display/zone/nowhere"):
        assert (await client.get(path)).status in (403, 404), path
    for path in PERSONAL:  # a display is nobody: each person's page asks to sign in
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login"), path
    bearer = {"Authorization": f"Bearer {world.tokens['b1']}"}
    for path in ("/api/v1/bookings", "/api/v1/occupancy/live?building=b1", "/api/v1/me/data"):
        assert (await client.get(path, headers=bearer)).status == 401, path


@pytest.mark.parametrize("person", [None, "ani", "fajar"])
async def test_a_persons_session_opens_no_display(world: World, person: str | None) -> None:
    if person is not None:
        await world.site.sign_in(person)
    for path in DISPLAY_ROUTES:
        response = await world.site.client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/display"), path


async def test_a_revoked_token_opens_nothing_at_once(world: World) -> None:
    await world.sign_in_display()
    assert (await world.site.client.get("/display/kiosk/b1")).status == 200
    conn = await asyncpg.connect(world.site.url)
    try:
        await revoke_display_token(conn, "lobby-b1")
    finally:
        await conn.close()
    response = await world.site.client.get("/display/kiosk/b1", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/display")


async def test_a_desk_display_says_free_booked_until_or_occupied(world: World) -> None:
    client = world.site.client
    await world.sign_in_display()
    d1 = await (await client.get("/display/desk/d1")).text()
    assert 'data-sign="booked"' in d1 and "sampai 12.00 WITA" in d1  # Ani's, unnamed
    assert "Ani" not in d1
    assert re.search(r"<svg[^>]*qr-code", d1) and "Pindai untuk check-in di meja d1" in d1
    d2 = await (await client.get("/display/desk/d2", headers={"Accept-Language": "en"})).text()
    assert 'data-sign="free"' in d2 and ">Free<" in d2
    conn = await asyncpg.connect(world.site.url)
    try:  # Budi's booking of d2 this afternoon: free until it starts
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by)
               VALUES ('d2', 'budi', tstzrange($1, $2), 'budi')""",
            NOW.replace(hour=13),
            NOW.replace(hour=15),
        )
    finally:
        await conn.close()
    d2 = await (await client.get("/display/desk/d2")).text()
    assert 'data-sign="free"' in d2 and "sampai 13.00 WITA" in d2 and "Budi" not in d2
    await sense(world.site.url, "d2", True, NOW - timedelta(minutes=1))
    d2 = await (await client.get("/display/desk/d2")).text()
    assert 'data-sign="occupied"' in d2 and "Terisi" in d2
    conn = await asyncpg.connect(world.site.url)
    try:  # assigned to Budi: his presence is not told, nor his bookings
        await conn.execute("UPDATE desks SET assigned_to = 'budi' WHERE id = 'd2'")
    finally:
        await conn.close()
    d2 = await (await client.get("/display/desk/d2")).text()
    assert 'data-sign="assigned"' in d2 and "Meja tetap" in d2 and "sampai" not in d2


async def test_the_kiosk_stream_sends_its_floors_as_they_change(world: World) -> None:
    await world.sign_in_display()
    async with world.site.client.get("/display/kiosk/b1/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        _, first = await next_frame(stream)
        assert set(first) == {"kiosk-floors", "kiosk-date", "door-code"}
        assert 'data-floor="b1-f1" data-free="1"' in first["kiosk-floors"]
        await sense(world.site.url, "d2", True, NOW)
        _, changed = await next_frame(stream)
    assert set(changed) == {"kiosk-floors"}  # the door's code did not change
    assert 'data-floor="b1-f1" data-free="0"' in changed["kiosk-floors"]
    assert "Ani" not in changed["kiosk-floors"]


async def test_the_kiosk_stream_sends_a_new_door_code_each_window(world: World) -> None:
    world.site.clock.advance(29.8)  # 0.2 s before the next window
    await world.sign_in_display()
    async with world.site.client.get("/display/kiosk/b1/events") as stream:
        _, first = await next_frame(stream)
        assert door_query() in first["door-code"].replace("&amp;", "&")
        world.site.clock.advance(1)
        _, later = await next_frame(stream)
    assert set(later) == {"door-code"}
    assert door_query(NOW + timedelta(seconds=30)) in later["door-code"].replace("&amp;", "&")


async def test_the_desk_display_stream_follows_its_desk_only(world: World) -> None:
    await world.sign_in_display()
    async with world.site.client.get("/display/desk/d2/events") as stream:
        _, first = await next_frame(stream)
        assert 'data-sign="free"' in first["desk-sign"]
        await sense(world.site.url, "d1", True, NOW)  # another desk of the zone: nothing
        await sense(world.site.url, "d2", True, NOW)
        _, changed = await next_frame(stream)
    assert 'data-sign="occupied"' in changed["desk-sign"]


async def count_people(url: str, zone: str, people: int) -> None:
    """The zone's counter's newest count, as the ingest stores it."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO zone_counts (zone_id, device_id, people, reported_at, updated_at)
               VALUES ($1, 'count-' || $1, $2, $3, now())
               ON CONFLICT (zone_id) DO UPDATE SET people = $2, reported_at = $3""",
            zone,
            people,
            NOW,
        )
    finally:
        await conn.close()


def zone_signs(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-sign="(\w+)" data-count="(\d+)"', page))


async def test_a_zone_display_counts_its_desks_and_people(world: World) -> None:
    client = world.site.client
    await world.sign_in_display()
    page = await (await client.get("/display/zone/b1-f1-a")).text()
    assert zone_signs(page) == {"free": "1", "booked": "1", "occupied": "0"}  # d2; Ani's d1
    assert "Zona A" in page and "Gedung Uji · Lantai 1" in page
    assert "Zona ini tidak memiliki penghitung orang." in page
    assert "Ani" not in page and "ani" not in page
    await sense(world.site.url, "d2", True, NOW - timedelta(minutes=1))
    await count_people(world.site.url, "b1-f1-a", 3)
    en = await (await client.get("/display/zone/b1-f1-a", headers={"Accept-Language": "en"})).text()
    assert zone_signs(en) == {"free": "0", "booked": "1", "occupied": "1"}
    assert 'data-people="3" data-capacity="2"' in en  # as the console's floor map counts
    assert "people of 2 places" in en and "Over capacity" in en and "counted at 9:00" in en
    conn = await asyncpg.connect(world.site.url)
    try:  # out of use: not a desk of the zone's capacity, nor of a sign shown
        await conn.execute("UPDATE desks SET disabled = true WHERE id = 'd2'")
    finally:
        await conn.close()
    page = await (await client.get("/display/zone/b1-f1-a")).text()
    assert zone_signs(page) == {"free": "0", "booked": "1", "occupied": "0"}
    assert 'data-capacity="1"' in page


async def test_the_zone_display_stream_follows_its_zone(world: World) -> None:
    await world.sign_in_display()
    async with world.site.client.get("/display/zone/b1-f1-a/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        _, first = await next_frame(stream)
        assert set(first) == {"zone-now"}
        assert zone_signs(first["zone-now"])["free"] == "1"
        await sense(world.site.url, "d3", True, NOW)  # another zone's desk: nothing new
        await sense(world.site.url, "d2", True, NOW)
        _, changed = await next_frame(stream)
    assert zone_signs(changed["zone-now"]) == {"free": "0", "booked": "1", "occupied": "1"}
    assert "Ani" not in changed["zone-now"]


async def _door_signals(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT person_id, place_type, building_id, at FROM attendance_signals"
            " WHERE kind = 'door_qr'"
        )
        return rows
    finally:
        await conn.close()


async def test_scanning_the_door_code_checks_the_person_in_once(world: World) -> None:
    site = world.site
    query = door_query()
    visitor = await site.client.get(f"/door?{query}", allow_redirects=False)
    assert visitor.status == 303
    assert visitor.headers["Location"].startswith("/login?next=/door?b%3Db1")
    await site.sign_in("ani")
    page = await site.client.get(f"/door?{query}")
    assert page.status == 200 and "Saya di sini: check-in" in await page.text()
    assert await _door_signals(site.url) == []  # a GET records nothing
    csrf = await site.csrf(f"/door?{query}")
    form = dict(item.split("=", 1) for item in query.split("&"))
    for _ in range(2):  # a second scan of the same code records nothing more
        done = await site.client.post(
            "/door", data={"csrf_token": csrf, **form}, headers=site.origin, allow_redirects=False
        )
        assert (done.status, done.headers["Location"]) == (303, "/door/done?b=b1")
    signals = await _door_signals(site.url)
    assert [(s["person_id"], s["place_type"], s["building_id"]) for s in signals] == [
        ("ani", "office", "b1")
    ]
    assert signals[0]["at"] == NOW
    shown = await (await site.client.get("/door/done?b=b1")).text()
    assert "Anda check-in di Gedung Uji pukul 09.00 WITA hari ini." in shown
    day = await (await site.client.get("/attendance/2026-12-07")).text()
    assert "Kode pintu dipindai" in day  # the signal, and the day in the office
    assert '<span class="badge state-wfo">Bekerja di kantor</span>' in day


async def test_scanning_the_door_code_checks_in_the_days_booking_there(world: World) -> None:
    """Budi's booking of d2 later today is checked in by his scan at b1's door (as a
    badge tap there would); his bookings in b2 today and at b1 tomorrow are not."""
    site = world.site
    conn = await asyncpg.connect(site.url)
    try:
        for desk, start in (
            ("d2", NOW.replace(hour=10)),
            ("e1", NOW.replace(hour=13)),
            ("d3", NOW + timedelta(1)),
        ):
            await conn.execute(
                """INSERT INTO bookings (desk_id, person_id, period, created_by)
                   VALUES ($1, 'budi', tstzrange($2, $3), 'budi')""",
                desk,
                start,
                start + timedelta(hours=2),
            )
    finally:
        await conn.close()
    await site.sign_in("budi")
    query = door_query()
    csrf = await site.csrf(f"/door?{query}")
    form = dict(item.split("=", 1) for item in query.split("&"))
    done = await site.client.post("/door", data={"csrf_token": csrf, **form}, headers=site.origin)
    shown = await done.text()
    assert done.status == 200 and "Pemesanan Anda untuk meja Meja 2 sudah check-in." in shown
    assert 'data-checked-in="d2"' in shown and "Meja E1" not in shown and "Meja 3" not in shown
    conn = await asyncpg.connect(site.url)
    try:
        rows = await conn.fetch(
            """SELECT desk_id, status, checked_in_at, check_in_signal FROM bookings
               WHERE person_id = 'budi' ORDER BY desk_id"""
        )
        signals = await conn.fetch(
            "SELECT kind, source FROM attendance_signals WHERE person_id = 'budi' ORDER BY kind"
        )
    finally:
        await conn.close()
    assert [tuple(r) for r in rows] == [
        ("d2", "checked_in", NOW, "door"),
        ("d3", "booked", None, None),
        ("e1", "booked", None, None),
    ]
    assert [r["kind"] for r in signals] == ["booking_check_in", "door_qr"]
    # the same code again: nothing more, and the page still says the booking is checked in
    again = await site.client.post("/door", data={"csrf_token": csrf, **form}, headers=site.origin)
    assert 'data-checked-in="d2"' in await again.text()
    assert len(await _door_signals(site.url)) == 1


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ("old", 410, "Kode ini sudah kedaluwarsa"),
        ("forged", 403, "Kode ini tidak dibuat oleh IKN Workspace"),
        ("other", 403, "Kode ini tidak dibuat oleh IKN Workspace"),
        ("empty", 400, "Alamat ini tidak memuat kode pintu"),
    ],
)
async def test_an_old_or_forged_door_code_is_refused(
    world: World, change: str, status: int, words: str
) -> None:
    site = world.site
    code = code_at(KEY.encode(), "b1", NOW)
    form = {"b": "b1", "w": str(code.window), "s": code.signature}
    if change == "old":
        site.clock.advance(60)  # the code's window and the next are over
    elif change == "forged":
        form["s"] = code.signature[::-1]
    elif change == "other":
        form["b"] = "b2"  # b1's signature for b2
    else:
        form = {}
    await site.sign_in("budi")
    query = "&".join(f"{k}={v}" for k, v in form.items())
    page = await site.client.get(f"/door?{query}")
    assert page.status == status and words in await page.text()
    csrf = await site.csrf("/")
    post = await site.client.post("/door", data={"csrf_token": csrf, **form}, headers=site.origin)
    assert post.status == status and words in await post.text()
    assert await _door_signals(site.url) == []


async def test_without_a_display_key_the_door_is_unavailable(database_url: str) -> None:
    async for site in _open(database_url, DEV_LOGIN):
        tokens = await prepare(database_url)
        world = World(site, tokens)
        await world.sign_in_display()
        kiosk = await (await site.client.get("/display/kiosk/b1")).text()
        assert "data-door-url" not in kiosk and "Kode pintu belum disiapkan" in kiosk
        await site.sign_in("ani")
        assert (await site.client.get(f"/door?{door_query()}")).status == 503


async def test_ikn_display_creates_lists_and_revokes_a_token(world: World) -> None:
    code, out, err = await _ikn(
        world.site.url, "display", "create", "--building", "b1", "--name", "hall"
    )
    assert code == 0, err
    token = out.strip()
    assert token.startswith("iknd_")
    world.tokens["b1"] = token
    assert (await world.sign_in_display()).status == 303  # it signs a display in
    code, out, err = await _ikn(world.site.url, "display", "list")
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["name", "building", "created", "last used"]
    assert [line[:2] for line in lines[1:]] == [
        ["hall", "b1"],
        ["lobby-b1", "b1"],
        ["lobby-b2", "b2"],
    ]
    assert lines[1][3] != "never" and token not in out
    refused = await _ikn(
        world.site.url, "display", "create", "--building", "nowhere", "--name", "x"
    )
    assert (
        refused[0] == 1 and "no building 'nowhere'" in refused[2] and "Traceback" not in refused[2]
    )
    taken = await _ikn(world.site.url, "display", "create", "--building", "b1", "--name", "hall")
    assert taken[0] == 1 and "a display named 'hall' exists" in taken[2]
    bad = await _ikn(world.site.url, "display", "create", "--building", "b1", "--name", " x")
    assert bad[0] == 1 and "1 to 100 printable characters" in bad[2]  # as the console's
    code, out, err = await _ikn(world.site.url, "display", "revoke", "hall")
    assert (code, out.strip()) == (0, "revoked display 'hall'"), err
    gone = await world.site.client.get("/display/kiosk/b1", allow_redirects=False)
    assert gone.headers["Location"] == "/display"


async def test_revoking_the_token_ends_an_open_stream(database_url: str) -> None:
    env = {**DEV_LOGIN, "IKN_DISPLAY_KEY": KEY, "IKN_SSE_RECHECK_S": "0.2"}
    async for site in _open(database_url, env):
        world = World(site, await prepare(database_url))
        await world.sign_in_display()
        async with site.client.get("/display/desk/d2/events") as stream:
            await next_frame(stream)
            conn = await asyncpg.connect(database_url)
            try:
                await revoke_display_token(conn, "lobby-b1")
            finally:
                await conn.close()
            async with asyncio.timeout(10):
                await stream.content.read()  # to its end: the server closed it
            assert stream.content.at_eof()


async def test_a_display_gone_away_leaves_no_stream_behind(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The kiosk's stream waits on the hub and on its timer at once; a display that
    goes away (its connection closed) is found at the next write, and the stream ends
    without an error, its place in the hub given back."""
    hub = world.site.client.app[HUB]
    await world.sign_in_display()
    async with world.site.client.get("/display/kiosk/b1/events") as stream:
        await next_frame(stream)
        assert len(hub._subscribers) == 1
    await sense(world.site.url, "d2", True, NOW)  # a frame to write: the display is gone
    await sense(world.site.url, "d2", False, NOW)
    await eventually(lambda: asyncio.sleep(0, len(hub._subscribers)), lambda n: n == 0)
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_busy_buildings_events_are_read_together(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Desk events within FLOORS_EVERY_S of the kiosk's last read make one frame, of the
    state after the last of them."""
    monkeypatch.setattr(displays, "FLOORS_EVERY_S", 3.0)
    await world.sign_in_display()
    async with world.site.client.get("/display/kiosk/b1/events") as stream:
        await next_frame(stream)
        for occupied in (True, False, True):
            await sense(world.site.url, "d2", occupied, NOW)
        await sense(world.site.url, "d3", True, NOW)
        _, together = await next_frame(stream)
        assert set(together) == {"kiosk-floors"}
        assert 'data-floor="b1-f1" data-free="0"' in together["kiosk-floors"]
        assert 'data-floor="b1-f2" data-free="0"' in together["kiosk-floors"]
        await sense(world.site.url, "d3", False, NOW)  # later: within the next 3 s
        _, alone = await next_frame(stream)
    assert 'data-floor="b1-f2" data-free="1"' in alone["kiosk-floors"]
