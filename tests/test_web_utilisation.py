"""The console's utilisation page over HTTP, on the analytics tests' hand-computed
November (tests/test_analytics.py) in the pages' test world: facility managers and
admins only; its tables (CSV) the same as the analytics API's for the same scope;
figures of people withheld for fewer than ``IKN_PRIVACY_MIN_GROUP`` people (4 withheld,
5 shown), on the page and in the CSV; a bad value a 400 page naming its field."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ikn_core.domain import Role
from ikn_store.analytics.queries import Bucket, Level, Query, utilisation, utilisation_over_period
from ikn_store.people import Person, upsert_people
from ikn_store.pool import create_pool
from ikn_store.readings.rollups import refresh
from tests.helpers import bearer, eventually
from tests.test_analytics import BOOK, MONDAY, at, build_fixture
from tests.test_web import Site
from tests.web_site import DEV_LOGIN, Clock, seed_people, site_app

NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}
PATH = "/console/utilisation"


async def seed_november(url: str) -> None:
    """After ``seed_people``: the analytics tests' November, b1's desks booked by three
    people (p1-p3) on Monday 2 November."""
    pool = await create_pool(url, 1)  # its connection has the ingest's staging table
    try:
        async with pool.acquire() as conn:
            await build_fixture(conn)
    finally:
        await pool.close()


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_people(database_url)
    await seed_november(database_url)
    async with TestClient(TestServer(site_app(database_url, Clock(), DEV_LOGIN))) as client:
        client.session.cookie_jar.update_cookies({"ikn_lang": "en"}, client.make_url("/"))
        yield Site(client, Clock(), database_url)


async def more_bookers(url: str, count: int, desk: str = "d1") -> None:
    """``count`` more people, each with a checked-in hour at ``desk`` on a day after
    Monday 2 November (new people: p4, p5, ...), rolled up."""
    conn = await asyncpg.connect(url)
    try:
        known = await conn.fetchval("SELECT count(*) FROM people WHERE id LIKE 'p%'")
        for n in range(known + 1, known + 1 + count):
            await conn.execute(
                "INSERT INTO people (id, name, agency, unit) VALUES ($1, $1, 'kemenkeu', 'u')",
                f"p{n}",
            )
            day = MONDAY + timedelta(days=n)
            start = at("10:00", day)
            await conn.execute(
                BOOK,
                desk,
                f"p{n}",
                start,
                start + timedelta(hours=1),
                "checked_in",
                start,
                "app",
                None,
            )
        # None while the site's own refresher holds the lock: then again after it
        await eventually(lambda: refresh(conn), lambda done: done is not None)
    finally:
        await conn.close()


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def _page_csv(site: Site, table: str, **query: str) -> list[dict[str, str]]:
    response = await site.client.get(f"{PATH}.csv", params={**query, "table": table})
    assert response.status == 200, await response.text()
    assert response.content_type == "text/csv"
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="{table}-')
    return _csv(await response.text())


async def _api_csv(site: Site, route: str, **query: str) -> list[dict[str, str]]:
    auth = await bearer(site.url, f"fm-{uuid.uuid4().hex[:8]}", "facility_manager")
    response = await site.client.get(
        f"/api/v1/analytics/{route}", params={**query, "format": "csv"}, headers=auth
    )
    assert response.status == 200, await response.text()
    return _csv(await response.text())


async def test_only_facility_managers_and_admins_see_it(site: Site) -> None:
    for path in (PATH, f"{PATH}.csv?table=funnel"):
        response = await site.client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=")
    await site.sign_in("ani")
    for path in (PATH, f"{PATH}.csv?table=funnel"):
        response = await site.client.get(path)
        assert response.status == 403, path
        assert "Utilisation" not in await response.text()  # nor in the menu
    conn = await asyncpg.connect(site.url)
    try:
        await upsert_people(conn, [Person("rina", "Rina Admin", "otorita", "ti", Role.ADMIN, "b1")])
    finally:
        await conn.close()
    for person in ("fajar", "rina"):
        await site.sign_in(person)
        page = await site.client.get(PATH)
        assert page.status == 200, person
        assert '<a href="/console/utilisation" aria-current="page">Utilisation</a>' in (
            await page.text()
        )
        assert (await site.client.get(f"{PATH}.csv?table=funnel")).status == 200


async def test_the_defaults_are_the_building_and_the_last_four_weeks(site: Site) -> None:
    await site.sign_in("fajar")
    page = await (await site.client.get(PATH)).text()
    # Monday 7 December 2026 in WITA: 10 November to 7 December, by day, Fajar's b1
    assert 'name="from" type="date" value="2026-11-10"' in page
    assert 'name="to" type="date" value="2026-12-07"' in page
    assert '<option value="day" selected>' in page and 'value="b1"' in page
    assert (
        "level=building&amp;bucket=day&amp;from=2026-11-10&amp;to=2026-12-07&amp;building=b1"
        in page
    )


@pytest.mark.parametrize(
    ("level", "place", "query", "bucket"),
    [
        ("building", "b1", {"level": "building", "building": "b1"}, "day"),
        ("floor", "b1-f1", {"level": "floor", "floor": "b1-f1"}, "week"),
        ("zone", "b1-f1-a", {"level": "zone", "zone": "b1-f1-a"}, "hour"),
        ("desk", "d1", {"level": "desk", "zone": "b1-f1-a"}, "day"),
        ("desk", "d1", {"level": "desk", "zone": "b1-f1-a"}, "hour"),  # from the raw tables
        ("agency", "kemenkeu", {"level": "agency"}, "day"),
    ],
)
async def test_the_tables_are_the_apis(
    site: Site, level: str, place: str, query: dict[str, str], bucket: str
) -> None:
    """Four more people at d1 (five in all there, seven in b1): every figure shown,
    and each CSV the API's rows of the place."""
    await more_bookers(site.url, 4)
    await site.sign_in("fajar")
    asked = {"level": level, "place": place, "bucket": bucket, **NOVEMBER}
    for table in ("utilisation", "funnel"):
        mine = await _page_csv(site, table, **asked)
        api = await _api_csv(site, table, **NOVEMBER, **query, bucket=bucket)
        assert mine, table
        assert mine == [r for r in api if r["place"] == place], table
    mine_rows = await _page_csv(site, "utilisation", **asked)
    page = await site.client.get(PATH, params=asked)
    assert page.status == 200
    text = await page.text()
    assert "fewer than" not in text
    trend = re.search(r'class="chart-line line-occupancy_share" points="([^"]*)"', text)
    assert trend is not None
    with_share = [r for r in mine_rows if r["occupancy_share"]]
    assert len(trend[1].split()) == len(with_share)  # a point for each bucket with a share


async def test_the_heatmap_sums_the_apis_hours(site: Site) -> None:
    await more_bookers(site.url, 4)
    await site.sign_in("fajar")
    cells = await _page_csv(site, "heatmap", level="zone", place="b1-f1-a", **NOVEMBER)
    hours = await _api_csv(
        site, "utilisation", level="zone", zone="b1-f1-a", bucket="hour", **NOVEMBER
    )
    monday_ten = next(c for c in cells if (c["weekday"], c["hour"]) == ("1", "10"))
    api = next(r for r in hours if r["bucket"] == "2026-11-02T10:00")  # the one Monday of data
    assert monday_ten["occupied_minutes"] == api["occupied_minutes"] == "90"
    assert monday_ten["live_minutes"] == api["live_minutes"] == "120"
    assert monday_ten["occupancy_share"] == api["occupancy_share"] == "0.75"
    page = await (
        await site.client.get(PATH, params={"level": "zone", "place": "b1-f1-a", **NOVEMBER})
    ).text()
    assert '<td class="heat-4">75.0%</td>' in page


async def test_the_period_is_one_row_of_the_same_figures(site: Site) -> None:
    """Over the period: additive figures are the days' sums, the peak their most."""
    pool = await create_pool(site.url, 1)
    try:
        async with pool.acquire() as conn:
            q = Query(Level.ZONE, Bucket.DAY, date(2026, 11, 1), date(2026, 11, 30), zone="b1-f1-a")
            days = await utilisation(conn, q)
            (whole,) = await utilisation_over_period(conn, q)
    finally:
        await pool.close()
    for name in ("occupied_minutes", "live_minutes", "booked_minutes", "unbooked_occupied_minutes"):
        assert whole[name] == sum(r[name] for r in days), name
    assert whole["peak_occupied"] == max(r["peak_occupied"] for r in days)
    assert whole["bucket"] == "2026-11-01"
    assert whole["average_occupied"] == round(whole["occupied_minutes"] / (30 * 1440), 4)


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "fewer than 5 people"), ("id", "kurang dari 5 orang")]
)
async def test_four_people_are_withheld_five_shown(site: Site, lang: str, words: str) -> None:
    """b1 in November: p1-p3 and one more booked (4): figures of people withheld on the
    page and in the CSV, desks and live time shown; one more (5): shown."""
    site.client.session.cookie_jar.update_cookies({"ikn_lang": lang}, site.client.make_url("/"))
    await more_bookers(site.url, 1)
    await site.sign_in("fajar")
    asked = {"level": "building", "place": "b1", **NOVEMBER}
    page = await (await site.client.get(PATH, params=asked)).text()
    assert words in page
    assert '<svg class="chart ' not in page  # no chart draws what is withheld
    rows = await _page_csv(site, "utilisation", **asked)
    monday = next(r for r in rows if r["bucket"] == "2026-11-02")
    assert monday["desks"] == "3" and monday["live_minutes"] != "<5"
    assert monday["occupied_minutes"] == monday["peak_occupied"] == "<5"
    assert {r["booked"] for r in await _page_csv(site, "funnel", **asked)} == {"<5"}
    assert {c["occupied_minutes"] for c in await _page_csv(site, "heatmap", **asked)} == {"<5"}

    await more_bookers(site.url, 1)
    page = await (await site.client.get(PATH, params=asked)).text()
    assert words not in page and '<svg class="chart ' in page
    rows = await _page_csv(site, "utilisation", **asked)
    api = await _api_csv(site, "utilisation", **NOVEMBER, level="building", building="b1")
    assert rows == api


async def test_one_desk_is_one_person_and_withheld(site: Site) -> None:
    """d3 was booked by p3 alone: its figures are withheld, its desks and live time shown."""
    await site.sign_in("fajar")
    page = await (
        await site.client.get(PATH, params={"level": "desk", "place": "d3", **NOVEMBER})
    ).text()
    assert "fewer than 5 people" in page
    rows = await _page_csv(site, "utilisation", level="desk", place="d3", **NOVEMBER)
    assert rows and all(r["occupied_minutes"] == "<5" for r in rows)


async def test_a_place_of_another_scope_gives_its_first(site: Site) -> None:
    """The scope changed and the place stayed: b1's first zone, not a 404."""
    await site.sign_in("fajar")
    page = await (await site.client.get(PATH, params={"level": "zone", "place": "b1"})).text()
    assert 'name="place" list="places" value="b1-f1-a"' in page
    page = await (await site.client.get(PATH, params={"level": "desk", "place": "b1-f2"})).text()
    assert 'name="place" list="places" value="d3"' in page


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"level": "room"}, 400, "level"),
        ({"bucket": "minute"}, 400, "bucket"),
        ({"bucket": "15min", **NOVEMBER}, 400, "bucket"),
        ({"from": "2026-13-01"}, 400, "from"),
        ({"from": "2026-11-30", "to": "2026-11-01"}, 400, "to"),
        ({"place": "no spaces"}, 400, "place"),
        ({"level": "zone", "place": "nowhere"}, 404, "place"),
        ({"level": "agency", "place": "b1"}, 404, "place"),
    ],
)
async def test_a_bad_value_names_its_field(
    site: Site, query: dict[str, str], status: int, field: str
) -> None:
    await site.sign_in("fajar")
    for path in (PATH, f"{PATH}.csv"):
        response = await site.client.get(path, params={**query, "table": "funnel"})
        assert response.status == status, (path, await response.text())
        assert f"{field}: " in await response.text()
    response = await site.client.get(f"{PATH}.csv", params={"table": "pie"})
    assert response.status == 400 and "table: " in await response.text()
