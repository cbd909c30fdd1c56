"""My attendance and Requests over HTTP with a real PostgreSQL, on the fixed clock of
tests/web_site.py (Mon 7 Dec 2026, 09:00 WITA): the month as a calendar with each
day's state in words, a day's explanation, a bad month answered 400 in the person's
language, the remote clock-in stored and shown, requests filed and refused with the
field's message in Indonesian and English; and in a real browser, Ani's flow with the
keyboard alone."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from tests.test_web import Site
from tests.web_site import DEV_LOGIN, Clock, seed_attendance, seed_people, site_app


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    await seed_people(database_url)
    await seed_attendance(database_url)
    clock = Clock()  # set before signing in: sessions run on it
    async with TestClient(TestServer(site_app(database_url, clock, DEV_LOGIN))) as client:
        yield Site(client, clock, database_url)


def text_of(page: str) -> str:
    """The page's words, tags dropped, spaces folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


async def get(site: Site, path: str, lang: str = "id") -> ClientResponse:
    return await site.client.get(path, cookies={"ikn_lang": lang}, allow_redirects=False)


async def post(site: Site, path: str, lang: str = "id", **form: str) -> ClientResponse:
    token = await site.csrf("/attendance")
    return await site.client.post(
        path,
        data={"csrf_token": token, **form},
        headers=site.origin,
        cookies={"ikn_lang": lang},
        allow_redirects=False,
    )


def cell(page: str, day: str) -> str:
    """The words of the calendar's cell of ``day`` (``2026-12-02``)."""
    found = re.search(rf'<a href="/attendance/{day}">(.*?)</a>', page, re.S)
    assert found is not None, f"no link to {day}"
    return text_of(found[1])


async def test_the_month_shows_each_days_state_in_words(site: Site) -> None:
    await site.sign_in("ani")
    response = await get(site, "/attendance")
    assert response.status == 200
    page = await response.text()
    assert "Desember 2026" in page
    assert "Bekerja di kantor" in cell(page, "2026-12-01")
    assert "terlambat 22 menit" in cell(page, "2026-12-02")
    assert "Bekerja dari jarak jauh" in cell(page, "2026-12-03")
    assert "Cuti" in cell(page, "2026-12-04")
    assert "Akhir pekan atau hari libur" in cell(page, "2026-12-05")
    assert 'href="/attendance/2026-12-08"' not in page  # tomorrow: nothing to explain
    assert 'href="/attendance?month=2026-11"' in page
    november = await (await get(site, "/attendance?month=2026-11", "en")).text()
    assert "November 2026" in november
    assert "Absent without an excuse" in cell(november, "2026-11-30")  # no signal
    assert "Weekend or holiday" in cell(november, "2026-11-29")
