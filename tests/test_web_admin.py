"""The console's administration over HTTP with a real PostgreSQL: the import page
(administrators only; the same all-or-nothing check as ``ikn import``, every bad line
listed, nothing written), the floor-plan editor (facility managers and administrators:
a plan drawing uploaded, checked and served; a desk moved, equipped, put out of use and
assigned; hostile values refused naming the field, never a 500)."""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp import FormData

from ikn_core.floor_plans import PlanRefused, check_plan
from ikn_service import booking as booking_service
from ikn_store.booking.places import zone_rules
from ikn_store.fleet import broker_auth
from tests.test_web import Site, _open
from tests.web_site import DEV_LOGIN, PLAN_SVG, add_admin
from web import admin

pytestmark = pytest.mark.usefixtures("no_release")

ADMIN_PAGES = ("/console/import",)
MANAGER_PAGES = ("/console/plan", "/console/plan?floor=b1-f2")
SPACES_HEADER = "kind,id,parent,name,tz,lat,lon,agency,level,x,y,equipment,disabled,assigned_to"
GOOD_SPACES = (
    SPACES_HEADER + "\n"
    "floor,b1-f3,b1,Lantai 3,,,,,3,,,,,\n"
    "zone,b1-f3-a,b1-f3,Zona A,,,,,,,,,,\n"
    "desk,d4,b1-f3-a,Meja 4,,,,,,1,1,monitor,,\n"
)
OPEN = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9">'
SVG = PLAN_SVG


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    async for opened in _open(database_url, DEV_LOGIN):
        await add_admin(database_url)
        opened.client.session.cookie_jar.update_cookies(
            {"ikn_lang": "en"}, opened.client.make_url("/")
        )
        yield opened


def png(width: int = 320, height: int = 200) -> bytes:
    """A real PNG of one grey pixel row, declared ``width`` x ``height``."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def _counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        tables = ("sites", "buildings", "floors", "zones", "desks", "people")
        return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in tables}
    finally:
        await conn.close()


async def _post_file(
    site: Site,
    path: str,
    data: bytes,
    filename: str,
    fields: dict[str, str] | None = None,
    *,
    token: str | None = None,
) -> Any:
    form = FormData()
    form.add_field("csrf_token", token if token is not None else await site.csrf("/"))
    for name, value in (fields or {}).items():
        form.add_field(name, value)
    form.add_field(
        "file", io.BytesIO(data), filename=filename, content_type="application/octet-stream"
    )
    return await site.client.post(path, data=form, headers=site.origin, allow_redirects=False)


@pytest.mark.parametrize("person", ["ani", "fajar"])
async def test_only_admins_import(site: Site, person: str) -> None:
    for path in ADMIN_PAGES:
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"].startswith("/login?next=")
    await site.sign_in(person)
    for path in ADMIN_PAGES:
        response = await site.client.get(path)
        assert response.status == 403, path
        assert 'href="/console/import"' not in await response.text()  # nor in the menu
    before = await _counts(site.url)
    answer = await _post_file(
        site, "/console/import", GOOD_SPACES.encode(), "s.csv", {"what": "spaces"}
    )
    assert answer.status == 403
    assert await _counts(site.url) == before


@pytest.mark.parametrize("person", ["ani", "sari"])
async def test_only_managers_edit_plans(site: Site, person: str) -> None:
    for path in (*MANAGER_PAGES, "/floors/b1-f1/plan"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303, path
    await site.sign_in(person)
    for path in MANAGER_PAGES:
        assert (await site.client.get(path)).status == 403, path
    token = await site.csrf("/")
    moved = await site.client.post(
        "/console/plan/b1-f1/desks/d1",
        data={"csrf_token": token, "x": "5", "y": "5"},
        headers=site.origin,
    )
    assert moved.status == 403
    upload = await _post_file(site, "/console/plan/b1-f1/image", SVG, "p.svg", token=token)
    assert upload.status == 403
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT x FROM desks WHERE id = 'd1'") == 1.0
        assert await conn.fetchval("SELECT count(*) FROM floor_plans") == 0
    finally:
        await conn.close()


@pytest.mark.parametrize("person", ["fajar", "rina"])
async def test_managers_and_admins_open_the_editor(site: Site, person: str) -> None:
    await site.sign_in(person)
    for path in MANAGER_PAGES:
        response = await site.client.get(path)
        assert response.status == 200, path
    page = await (await site.client.get("/console/plan")).text()
    assert '<a href="/console/plan" aria-current="page">Floor plans</a>' in page
    assert ('href="/console/import"' in page) is (person == "rina")
    assert 'data-desk="d1"' in page and 'data-desk="d3"' not in page  # floor 1 only
    for presence in ("occupied", "booked", "checked in", "Ani"):  # no one's presence
        assert presence not in page


async def test_csrf_is_needed_for_every_post(site: Site) -> None:
    await site.sign_in("rina")
    for path in ("/console/import", "/console/plan/b1-f1/image"):
        answer = await _post_file(site, path, SVG, "p.svg", {"what": "spaces"}, token="forged")
        assert answer.status == 403, path
    missing = await site.client.post(
        "/console/plan/b1-f1/desks/d1", data={"x": "5", "y": "5"}, headers=site.origin
    )
    assert missing.status == 403


async def test_an_import_with_one_bad_line_lists_it_and_writes_nothing(site: Site) -> None:
    await site.sign_in("rina")
    bad = GOOD_SPACES + "desk,d5,b1-f3-a,Meja 5,,,,,,east,1,,,\n"  # line 5: x
    before = await _counts(site.url)
    answer = await _post_file(
        site, "/console/import", bad.encode(), "spaces.csv", {"what": "spaces"}
    )
    assert answer.status == 422
    page = await answer.text()
    assert "Nothing imported" in page and "The file has 1 problem." in page
    row = re.search(r'<tr><th scope="row" lang="en">line 5</th>.*?</tr>', page, re.S)
    assert (
        row is not None
        and "<code>x</code>" in row[0]
        and "&#39;east&#39; is not a number" in row[0]
    )
    assert await _counts(site.url) == before


async def test_an_import_writes_and_counts(site: Site) -> None:
    await site.sign_in("rina")
    answer = await _post_file(
        site, "/console/import", GOOD_SPACES.encode(), "s.csv", {"what": "spaces"}
    )
    assert answer.status == 200
    page = await answer.text()
    assert "The whole file was written." in page
    floors = re.search(r"<code>floors</code></th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert floors is not None and floors.groups() == ("1", "0", "0")
    people = '{"people": [{"id": "dewi", "name": "Dewi", "agency": "otorita", "unit": "ti"}]}'
    again = await _post_file(site, "/console/import", people.encode(), "p.json", {"what": "people"})
    assert "<code>people</code></th><td>1</td>" in await again.text()
    assert (await _counts(site.url))["people"] == 6


@pytest.mark.parametrize(
    ("data", "fields", "status", "shown"),
    [
        (b"\xff\xfe\x00bad", {"what": "spaces"}, 422, "not UTF-8 text"),
        (png(), {"what": "people"}, 422, "Nothing imported"),  # a picture: not a file of rows
        (b"{}", {"what": "desks"}, 400, "what: spaces or people"),
        (b"{}", {"what": "spaces", "format": "xlsx"}, 400, "format: csv or json"),
        # were 500s: PostgreSQL cannot store a NUL; the csv module's field limit
        (b"kind,id,name\nsite,s1,P\x00\n", {"what": "spaces", "format": "csv"}, 422, "NUL"),
        (
            b"kind,id,name\nsite,s1," + b"a" * 200_000,
            {"what": "spaces", "format": "csv"},
            422,
            "limit",
        ),
    ],
)
async def test_a_wrong_import_names_the_field(
    site: Site, data: bytes, fields: dict[str, str], status: int, shown: str
) -> None:
    await site.sign_in("rina")
    answer = await _post_file(site, "/console/import", data, "x.bin", fields)
    assert answer.status == status
    assert shown in await answer.text()


async def test_a_file_of_100k_bad_lines_lists_the_first_and_counts_all(site: Site) -> None:
    """Under the 1 MiB limit: every line checked and counted, the page lists the first
    ``PROBLEMS_SHOWN`` (it was 100,000 rows of HTML, seconds to render)."""
    await site.sign_in("rina")
    lines = "kind,id,name\n" + "site,s,n\n" * 100_000  # 99,999 duplicates of line 2
    answer = await _post_file(
        site, "/console/import", lines.encode(), "many.csv", {"what": "spaces"}
    )
    assert answer.status == 422
    page = await answer.text()
    assert "The file has 99999 problems." in page
    assert page.count('<th scope="row" lang="en">line ') == admin.PROBLEMS_SHOWN
    assert f"The first {admin.PROBLEMS_SHOWN} problems are listed here" in page


async def test_a_file_over_the_limit_is_refused_naming_it(site: Site) -> None:
    await site.sign_in("rina")
    huge = b"a" * (1024 * 1024 + 10)
    for path in ("/console/import", "/console/plan/b1-f1/image"):
        answer = await _post_file(site, path, huge, "big.csv", {"what": "spaces"})
        assert answer.status == 413, path
        assert "file: larger than 1024 KiB" in await answer.text()


async def test_a_plan_drawing_is_stored_served_and_drawn_under_the_desks(site: Site) -> None:
    await site.sign_in("fajar")
    answer = await _post_file(site, "/console/plan/b1-f1/image", SVG, "plan.svg")
    assert answer.status == 303 and answer.headers["Location"].endswith("done=plan")
    served = await site.client.get("/floors/b1-f1/plan")
    assert served.status == 200 and served.content_type == "image/svg+xml"
    assert await served.read() == SVG
    assert "script-src" in served.headers["Content-Security-Policy"]
    again = await site.client.get(
        "/floors/b1-f1/plan", headers={"If-None-Match": served.headers["ETag"]}
    )
    assert again.status == 304
    editor = await (await site.client.get("/console/plan?floor=b1-f1&done=plan")).text()
    assert 'class="plan-backdrop" href="/floors/b1-f1/plan?v=' in editor
    assert 'width="400" height="300"' in editor
    await site.sign_in("ani")  # staff see it on Find a desk, the desks from its corner
    desks = await (await site.client.get("/desks?building=b1&floor=b1-f1")).text()
    assert 'class="plan-backdrop" href="/floors/b1-f1/plan?v=' in desks
    assert 'data-desk="d1" data-state' in desks
    assert re.search(r'data-desk="d1"[^>]*transform="translate\(122 88\)"', desks)  # 8+80+34
    assert (await site.client.get("/floors/b1-f1/plan")).status == 200
    assert (await site.client.get("/floors/b1-f2/plan")).status == 404


async def test_a_png_plan_is_measured(site: Site) -> None:
    await site.sign_in("rina")
    answer = await _post_file(site, "/console/plan/b1-f2/image", png(640, 480), "plan.png")
    assert answer.status == 303
    served = await site.client.get("/floors/b1-f2/plan")
    assert served.content_type == "image/png"
    editor = await (await site.client.get("/console/plan?floor=b1-f2")).text()
    assert 'width="640" height="480"' in editor


@pytest.mark.parametrize(
    "svg",
    [
        OPEN + b"<script>alert(1)</script></svg>",
        OPEN + b"<foreignObject/></svg>",
        OPEN.replace(b">", b' onload="alert(1)">') + b"</svg>",
        OPEN.replace(b">", b' xmlns:x="http://www.w3.org/1999/xlink">')
        + b'<use x:href="https://evil.example/a.svg#x"/></svg>',
        OPEN + b'<rect style="fill:url(https://e/x)"/></svg>',
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + OPEN
        + b"<text>&e;</text></svg>",
        OPEN + b'<style>@import "x"</style></svg>',
        OPEN + b'<a href="javascript:1"/></svg>',
        OPEN + b'<image href="https://evil.example/x.png"/></svg>',
    ],
)
def test_an_svg_that_does_more_than_draw_is_refused(svg: bytes) -> None:
    with pytest.raises(PlanRefused) as refused:
        check_plan(svg)
    assert refused.value.field == "file" and refused.value.code == "unsafe-svg"


async def test_a_hostile_plan_upload_is_refused_naming_the_field(site: Site) -> None:
    await site.sign_in("fajar")
    cases = [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><script/></svg>',
            "The SVG holds more",
        ),
        (b"GIF89a not a plan", "neither a PNG nor an SVG"),
        (b"\x89PNG\r\n\x1a\nshort", "neither a PNG nor an SVG"),
        (b"", "The file is empty."),
    ]
    for data, shown in cases:
        answer = await _post_file(site, "/console/plan/b1-f1/image", data, "plan.svg")
        assert answer.status == 422, shown
        page = await answer.text()
        assert "Not saved:" in page and "File:" in page and shown in page
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM floor_plans") == 0
    finally:
        await conn.close()
    gone = await _post_file(site, "/console/plan/nowhere/image", SVG, "plan.svg")
    assert gone.status == 404


async def _save(site: Site, desk: str, floor: str = "b1-f1", **values: str) -> Any:
    form = {"csrf_token": await site.csrf("/console/plan"), "x": "1", "y": "1", **values}
    return await site.client.post(
        f"/console/plan/{floor}/desks/{desk}", data=form, headers=site.origin, allow_redirects=False
    )


async def test_a_desk_is_moved_equipped_disabled_and_assigned(site: Site) -> None:
    await site.sign_in("fajar")
    answer = await _save(
        site,
        "d2",
        x="4.5",
        y="2.25",
        equipment="monitor, standing",
        disabled="on",
        assigned_to="budi",
    )
    assert answer.status == 303
    assert answer.headers["Location"] == "/console/plan?floor=b1-f1&done=desk&desk=d2#desk-d2"
    conn = await asyncpg.connect(site.url)
    try:
        row = await conn.fetchrow(
            "SELECT x, y, equipment, disabled, assigned_to FROM desks WHERE id = 'd2'"
        )
    finally:
        await conn.close()
    assert dict(row) == {
        "x": 4.5,
        "y": 2.25,
        "equipment": ["monitor", "standing"],
        "disabled": True,
        "assigned_to": "budi",
    }
    page = await (await site.client.get(answer.headers["Location"])).text()
    assert "Desk d2: The desk is saved." in page
    back = await _save(site, "d2", x="2", y="1")  # the form sends every field: cleared
    assert back.status == 303


@pytest.mark.parametrize(
    ("values", "field", "shown"),
    [
        ({"x": "east"}, "X", "A coordinate is a number"),
        ({"y": "-3"}, "Y", "A coordinate is a number"),
        ({"x": "nan"}, "X", "A coordinate is a number"),
        ({"x": "1e9"}, "X", "A coordinate is a number"),
        ({"equipment": "Monitor!"}, "Equipment", "Equipment is tags"),
        ({"assigned_to": "no body"}, "Assigned to", "A person's id"),
        ({"assigned_to": "nobody"}, "Assigned to", "There is no person with that id."),
    ],
)
async def test_bad_desk_values_are_refused_naming_the_field(
    site: Site, values: dict[str, str], field: str, shown: str
) -> None:
    await site.sign_in("fajar")
    answer = await _save(site, "d1", **values)
    assert answer.status == 422
    page = await answer.text()
    assert f"Desk d1, {field}: " in page and shown in page
    assert 'aria-invalid="true"' in page
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT x FROM desks WHERE id = 'd1'") == 1.0
    finally:
        await conn.close()


async def test_a_desk_of_another_floor_is_not_found(site: Site) -> None:
    await site.sign_in("fajar")
    assert (await _save(site, "d3", floor="b1-f1")).status == 404
    assert (await _save(site, "nope")).status == 404
    assert (await site.client.get("/console/plan?floor=nowhere")).status == 404
    assert (await site.client.get("/console/plan?floor=b1 f1")).status == 400


ZONE = "/console/zones?zone=b1-f1-a"


async def _zone_post(site: Site, what: str, **values: str) -> Any:
    form = {"csrf_token": await site.csrf(ZONE), **values}
    return await site.client.post(
        f"/console/zones/b1-f1-a/{what}", data=form, headers=site.origin, allow_redirects=False
    )


async def test_zones_are_read_by_managers_and_changed_by_admins(site: Site) -> None:
    response = await site.client.get(ZONE, allow_redirects=False)
    assert response.status == 303
    await site.sign_in("ani")
    assert (await site.client.get(ZONE)).status == 403
    assert (await _zone_post(site, "rules", max_days_ahead="3")).status == 403
    await site.sign_in("fajar")
    page = await (await site.client.get(ZONE)).text()
    assert "Only an administrator changes them." in page and "readonly" in page
    assert (await _zone_post(site, "rules", max_days_ahead="3")).status == 403
    assert (await _zone_post(site, "access", allowed="otorita")).status == 403
    forged = await site.client.post(
        "/console/zones/b1-f1-a/rules", data={"max_days_ahead": "3"}, headers=site.origin
    )
    assert forged.status == 403
    conn = await asyncpg.connect(site.url)
    try:
        rules = await zone_rules(conn, "b1-f1-a")
        assert rules is not None and rules.overrides.max_days_ahead is None
    finally:
        await conn.close()


async def test_an_admin_sets_a_zones_rules_and_access(site: Site) -> None:
    await site.sign_in("rina")
    saved = await _zone_post(
        site, "rules", opens_minute="08:00", closes_minute="12:30", max_days_ahead="0"
    )
    assert saved.status == 303 and saved.headers["Location"].endswith("done=rules")
    access = await _zone_post(site, "access", allowed="kemenpan / sdm\r\n\r\notorita\r\n")
    assert access.status == 303
    conn = await asyncpg.connect(site.url)
    try:
        rules = await zone_rules(conn, "b1-f1-a")
        allowed = await booking_service.zone_access(conn, "b1-f1-a")
    finally:
        await conn.close()
    assert rules is not None
    assert (rules.overrides.opens_minute, rules.overrides.closes_minute) == (480, 750)
    assert rules.overrides.max_days_ahead == 0 and rules.in_force.max_days_ahead == 0
    assert allowed == [("kemenpan", "sdm"), ("otorita", None)]
    page = await (await site.client.get(ZONE + "&done=access")).text()
    assert 'value="08:00"' in page and 'value="12:30"' in page
    assert "kemenpan / sdm\notorita</textarea>" in page
    assert "Only the agencies and units listed may book" in page


@pytest.mark.parametrize(
    ("what", "values", "shown"),
    [
        (
            "rules",
            {"opens_minute": "8am", "closes_minute": "12:00"},
            "Bookable from (HH:MM): Enter a time",
        ),
        ("rules", {"opens_minute": "08:00"}, "Bookable until (HH:MM): The opening hours"),
        (
            "rules",
            {"min_minutes": "90", "max_minutes": "60"},
            "Longest booking (minutes): The first",
        ),
        (
            "rules",
            {"max_days_ahead": "9999"},
            "Days ahead a booking may be made: The value is outside",
        ),
        (
            "rules",
            {"min_minutes": "-5", "max_minutes": "60"},
            "Shortest booking (minutes): Enter a whole",
        ),
        ("access", {"allowed": "otorita\notorita"}, "Who may book: A line is listed twice."),
        ("access", {"allowed": "a / b / c"}, "Who may book: An agency or unit is 1 to 64"),
    ],
)
async def test_bad_zone_values_are_refused_naming_the_field(
    site: Site, what: str, values: dict[str, str], shown: str
) -> None:
    await site.sign_in("rina")
    answer = await _zone_post(site, what, **values)
    assert answer.status == 422
    page = await answer.text()
    assert shown in page and 'aria-invalid="true"' in page
    assert (await site.client.get("/console/zones?zone=nowhere")).status == 404


async def _register(site: Site, **values: str) -> Any:
    form = {"csrf_token": await site.csrf("/console/devices/new"), **values}
    return await site.client.post("/console/devices", data=form, headers=site.origin)


async def test_only_admins_register_devices(site: Site) -> None:
    response = await site.client.get("/console/devices/new", allow_redirects=False)
    assert response.status == 303
    for person in ("ani", "fajar"):
        await site.sign_in(person)
        assert (await site.client.get("/console/devices/new")).status == 403
        token = await site.csrf("/")
        refused = await site.client.post(
            "/console/devices",
            data={"csrf_token": token, "id": "reader-x", "kind": "badge_reader", "building": "b1"},
            headers=site.origin,
        )
        assert refused.status == 403
    await site.sign_in("rina")
    assert (await site.client.get("/console/devices/new")).status == 200
    forged = await site.client.post(
        "/console/devices",
        data={"id": "reader-x", "kind": "badge_reader", "building": "b1"},
        headers=site.origin,
    )
    assert forged.status == 403
    conn = await asyncpg.connect(site.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM devices WHERE id = 'reader-x'") == 0
    finally:
        await conn.close()


async def test_a_registered_devices_password_is_shown_once(site: Site) -> None:
    await site.sign_in("rina")
    answer = await _register(
        site, id="reader-lobby", kind="badge_reader", building="b1", expected_interval_s="60"
    )
    assert answer.status == 201 and answer.headers["Cache-Control"] == "no-store"
    page = await answer.text()
    username = re.search(r'<code id="mqtt-username">([^<]+)</code>', page)
    password = re.search(r'<code id="mqtt-password">([^<]+)</code>', page)
    assert username is not None and password is not None and username[1] == "reader-lobby"
    conn = await asyncpg.connect(site.url)
    try:
        stored = await conn.fetchval(
            "SELECT password_hash FROM device_credentials WHERE device_id = 'reader-lobby'"
        )
        interval = await conn.fetchval(
            "SELECT expected_interval_s FROM devices WHERE id = 'reader-lobby'"
        )
    finally:
        await conn.close()
    assert stored and password[1] not in stored and interval == 60  # only its hash
    assert broker_auth.verify(password[1], stored)
    # A second view: the fleet page and the device's page never show it; registering
    # the same id again is refused and shows no password either.
    for path in ("/console/fleet", "/console/fleet/reader-lobby", "/console/devices/new"):
        shown = await site.client.get(path)
        assert shown.status == 200 and password[1] not in await shown.text(), path
    again = await _register(site, id="reader-lobby", kind="badge_reader", building="b1")
    assert again.status == 409
    text = await again.text()
    assert "A device with this id is registered already." in text and password[1] not in text
    assert 'id="mqtt-password"' not in text


@pytest.mark.parametrize(
    ("values", "status", "shown"),
    [
        ({"id": "bad id", "kind": "badge_reader", "building": "b1"}, 422, "Device id: Use 1 to 64"),
        ({"id": "x1", "kind": "toaster", "building": "b1"}, 422, "Kind: Choose one"),
        ({"id": "x1", "kind": "desk_sensor", "building": "b1"}, 422, "Desk: A desk sensor needs"),
        (
            {"id": "x1", "kind": "desk_sensor", "building": "b1", "desk": "d1"},
            409,
            "Desk: This desk",
        ),
        (
            {"id": "x1", "kind": "environment", "building": "b1", "expected_interval_s": "5"},
            422,
            "Reports at least every (seconds): A whole number",
        ),
        (
            {"id": "x1", "kind": "environment", "building": "b1", "expected_interval_s": "lots"},
            422,
            "Reports at least every (seconds): A whole number",
        ),
        (
            {"id": "x1", "kind": "environment", "building": "b1", "zone": "nowhere"},
            422,
            "Zone: There is no",
        ),
        ({"id": "x1", "kind": "environment", "building": "nowhere"}, 422, "Building: There is no"),
    ],
)
async def test_a_device_refused_names_the_field(
    site: Site, values: dict[str, str], status: int, shown: str
) -> None:
    await site.sign_in("rina")
    answer = await _register(site, **values)
    assert answer.status == status
    page = await answer.text()
    assert shown in page and 'aria-invalid="true"' in page and "mqtt-password" not in page
