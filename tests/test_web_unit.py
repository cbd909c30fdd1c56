"""The My unit page (supervisors) over HTTP and in a real browser: the unit's month per
person (filters, CSV), the requests waiting for the supervisor (approve, reject, never
their own), and the people near a PP 94/2021 discipline level.

The history (WITA), from Monday 30 November to Friday 4 December 2026, the platform
knowing everyone from the 30th: Ani in the office but late 20 minutes on Tuesday, from
home on Wednesday, absent on Friday (her correction of it waits for Sari); Budi absent
Monday to Wednesday, on approved leave on Thursday, 40 minutes late on Friday; Sari in
the office on time every day, her own leave of 9-10 December waiting."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser

from ikn_core.attendance import (
    AbsenceSummary,
    DailyRecord,
    Policies,
    near_threshold,
    next_band,
    yearly_summary,
)
from ikn_service import attendance as service
from ikn_store.attendance import disruptions as disruptions_store
from ikn_store.attendance.days import records
from ikn_store.attendance.requests import NewRequest
from ikn_store.attendance.signals import set_building_site
from ikn_store.people import get_person
from ikn_store.pool import close_pool, create_pool
from tests.helpers import fetch
from tests.test_web import Site
from tests.test_web_browser import SCREENS, Watch, _tab_to, photograph, snap
from tests.web_site import NOW, WITA, Clock, seed_people, serving_site, site_app

OFFICE = ("office", "b1")
HOME = ("home", None)
# (person, day of December or 30 for 30 November, in, out, place)
DAYS = [
    ("ani", 30, "07:20", "16:10", OFFICE),
    ("ani", 1, "07:50", "16:30", OFFICE),
    ("ani", 2, "07:25", "16:05", HOME),
    ("ani", 3, "07:28", "16:00", OFFICE),
    ("budi", 4, "08:10", "16:30", OFFICE),
    *[("sari", d, "07:15", "16:45", OFFICE) for d in (30, 1, 2, 3, 4)],
]


def wita(day: int, hhmm: str) -> datetime:
    month = 11 if day == 30 else 12
    hour, minute = map(int, hhmm.split(":"))
    return datetime(2026, month, day, hour, minute, tzinfo=WITA)


async def seed_unit_history(url: str) -> dict[str, UUID]:
    """``seed_people`` and the history of the module's docstring; the waiting requests'
    ids (``ani``'s correction, ``sari``'s leave)."""
    await seed_people(url)
    pool = await create_pool(url, 1, api=True)  # its connections decode jsonb
    try:
        async with pool.acquire() as conn:
            return await _history(conn)
    finally:
        await close_pool(pool)


async def _history(conn: asyncpg.Connection) -> dict[str, UUID]:
    await set_building_site(conn, "b1", -0.9745, 116.7085, "kemenpan")
    await conn.execute("UPDATE buildings SET live_from = '2026-11-01'")
    await conn.execute("UPDATE people SET known_since = '2026-11-30T00:00+08:00'")
    rows = [
        (who, kind, wita(day, at), place, building, f"test:{who}:{day}:{kind}")
        for who, day, start, end, (place, building) in DAYS
        for kind, at in (("app_check_in", start), ("app_check_out", end))
    ]
    await conn.executemany(
        """INSERT INTO attendance_signals
               (person_id, kind, at, place_type, building_id, source, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, $3)""",
        rows,
    )
    return await _requests(conn)


async def _requests(conn: asyncpg.Connection) -> dict[str, UUID]:
    sari = await get_person(conn, "sari")
    assert sari is not None
    leave = NewRequest("budi", "cuti", date(2026, 12, 3), date(2026, 12, 3), "Acara keluarga")
    filed = await service.file_request(conn, leave, "budi")
    decision = service.DecideRequest(filed.id, sari, approve=True)
    await service.decide(conn, decision, Policies.default(), now=NOW)
    fix = NewRequest(
        "ani",
        "correction",
        date(2026, 12, 4),
        date(2026, 12, 4),
        "Lupa absen, di kantor seharian",
        clock_in=wita(4, "07:25"),
        clock_out=wita(4, "16:35"),
    )
    own = NewRequest("sari", "cuti", date(2026, 12, 9), date(2026, 12, 10), "Cuti tahunan")
    ids = {
        "ani": (await service.file_request(conn, fix, "ani")).id,
        "sari": (await service.file_request(conn, own, "sari")).id,
    }
    filed_at = {"ani": wita(4, "17:05"), "sari": wita(7, "08:30")}  # not the real clock's
    for who, at in filed_at.items():
        await conn.execute(
            "UPDATE attendance_requests SET requested_at = $2 WHERE id = $1", ids[who], at
        )
    return ids


@pytest.fixture
async def unit_site(database_url: str) -> AsyncIterator[tuple[Site, dict[str, UUID]]]:
    ids = await seed_unit_history(database_url)
    clock = Clock()
    async with TestClient(TestServer(site_app(database_url, clock))) as client:
        yield Site(client, clock, database_url), ids


def table(page: str) -> dict[str, list[str]]:
    """The month's table: each name's cells."""
    body = page[page.index('class="u-table"') : page.index("</table>")]
    found = re.findall(r'<th scope="row">([^<]+)</th>\s*((?:<td>\d+</td>)+)', body)
    return {name: re.findall(r"<td>(\d+)</td>", cells) for name, cells in found}


# present, WFO, WFA, WFA over the weekly cap, late days, late minutes, absences, leave or travel
ANI = ["3", "2", "1", "0", "1", "20", "1", "0"]
BUDI = ["1", "1", "0", "0", "1", "40", "2", "1"]
SARI = ["4", "4", "0", "0", "0", "0", "0", "0"]


async def test_the_month_shows_each_person_of_the_unit(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, _ = unit_site
    await site.sign_in("sari")
    response = await site.client.get("/unit")
    page = await response.text()
    assert response.status == 200
    assert "Desember 2026" in page
    assert table(page) == {"Ani Lestari": ANI, "Budi Santoso": BUDI, "Sari Wulandari": SARI}
    assert "Fajar" not in page  # another agency and unit
    november = table(await (await site.client.get("/unit?month=2026-11")).text())
    assert november["Budi Santoso"] == ["0", "0", "0", "0", "0", "0", "1", "0"]
    assert november["Ani Lestari"][:3] == ["1", "1", "0"]


async def test_the_filters_keep_the_names_and_the_flagged(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, _ = unit_site
    await site.sign_in("sari")
    found = table(await (await site.client.get("/unit?q=budi")).text())
    assert list(found) == ["Budi Santoso"]
    found = table(await (await site.client.get("/unit?flagged=1")).text())
    assert list(found) == ["Ani Lestari", "Budi Santoso"]
    page = await (await site.client.get("/unit?q=nobody&flagged=1")).text()
    assert "Tidak ada orang di unit Anda" in page
    assert 'href="/unit.csv?month=2026-12&amp;q=nobody&amp;flagged=1"' in page


async def test_the_csv_has_the_tables_rows(unit_site: tuple[Site, dict[str, UUID]]) -> None:
    site, _ = unit_site
    await site.sign_in("sari")
    response = await site.client.get("/unit.csv?month=2026-12")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "unit-kemenpan-sdm-2026-12.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert rows[0] == [
        "person",
        "name",
        "days_present",
        "wfo",
        "wfa",
        "wfa_over_cap",
        "late_days",
        "late_minutes",
        "unexcused_absences",
        "excused",
    ]
    assert rows[1:] == [
        ["ani", "Ani Lestari", *ANI],
        ["budi", "Budi Santoso", *BUDI],
        ["sari", "Sari Wulandari", *SARI],
    ]
    flagged = await (await site.client.get("/unit.csv?month=2026-12&flagged=1")).text()
    assert [r[0] for r in csv.reader(io.StringIO(flagged))] == ["person", "ani", "budi"]


async def _token(site: Site) -> str:
    token = await site.csrf("/unit")
    return token


async def test_sari_approves_anis_correction_and_the_day_changes(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, ids = unit_site
    await site.sign_in("sari")
    page = await (await site.client.get("/unit")).text()
    assert "Koreksi kehadiran: Ani Lestari" in page
    assert "Lupa absen, di kantor seharian" in page
    assert f'action="/unit/requests/{ids["ani"]}"' in page
    assert f'action="/unit/requests/{ids["sari"]}"' not in page  # her own: no buttons
    assert "Bukan wewenang Anda" in page
    assert "Ani Lestari" in page[page.index("watch-heading") :]  # 1 day, 2 from a level
    response = await site.client.post(
        f"/unit/requests/{ids['ani']}",
        data={"csrf_token": await _token(site), "decision": "approve", "month": "2026-12"},
        headers=site.origin,
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/unit?month=2026-12&done=approved"
    page = await (await site.client.get(response.headers["Location"])).text()
    assert "Pengajuan disetujui." in page
    assert f'action="/unit/requests/{ids["ani"]}"' not in page
    assert table(page)["Ani Lestari"] == ["4", "3", "1", "0", "1", "20", "0", "0"]
    assert "Ani Lestari" not in page[page.index("watch-heading") :]
    pool = await create_pool(site.url, 1, api=True)
    try:
        async with pool.acquire() as conn:
            found = await records(conn, Policies.default(), ["ani"], [date(2026, 12, 4)], NOW)
            stored = await conn.fetchval(
                "SELECT mode FROM attendance_days WHERE person_id = 'ani' AND day = '2026-12-04'"
            )
    finally:
        await close_pool(pool)
    record = found[("ani", date(2026, 12, 4))]
    assert (str(record.mode), stored) == ("wfo", "wfo")
    assert record.clock_in == wita(4, "07:25")


async def test_a_rejection_leaves_the_day_absent(unit_site: tuple[Site, dict[str, UUID]]) -> None:
    site, ids = unit_site
    await site.sign_in("sari")
    response = await site.client.post(
        f"/unit/requests/{ids['ani']}",
        data={"csrf_token": await _token(site), "decision": "reject", "q": "ani"},
        headers=site.origin,
    )
    page = await response.text()
    assert "Pengajuan ditolak." in page
    assert table(page) == {"Ani Lestari": ANI}  # the filters kept


async def test_sari_cannot_approve_her_own_request(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, ids = unit_site
    await site.sign_in("sari")
    form = {"csrf_token": await _token(site), "decision": "approve"}
    url = f"/unit/requests/{ids['sari']}"
    response = await site.client.post(url, data=form, headers=site.origin)
    assert response.status == 403
    page = await response.text()
    assert "Anda tidak dapat memutus pengajuan Anda sendiri" in page
    assert "<h1>Unit saya</h1>" in page  # the page, re-rendered
    site.client.session.cookie_jar.update_cookies({"ikn_lang": "en"}, site.client.make_url("/"))
    response = await site.client.post(url, data=form, headers=site.origin)
    assert response.status == 403
    assert "You cannot decide your own request" in await response.text()
    again = await site.client.post(
        f"/unit/requests/{ids['ani']}", data=form, headers=site.origin, allow_redirects=False
    )
    assert again.status == 303
    twice = await site.client.post(f"/unit/requests/{ids['ani']}", data=form, headers=site.origin)
    assert twice.status == 409
    assert "This request was decided already." in await twice.text()
    unknown = await site.client.post("/unit/requests/not-a-uuid", data=form, headers=site.origin)
    assert unknown.status == 404
    assert "There is no such request." in await unknown.text()


async def test_an_employee_gets_403_and_a_post_needs_the_token(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, ids = unit_site
    await site.sign_in("ani")
    token = await site.csrf("/")
    assert (await site.client.get("/unit")).status == 403
    assert (await site.client.get("/unit.csv?month=2026-12")).status == 403
    url = f"/unit/requests/{ids['ani']}"
    form = {"csrf_token": token, "decision": "approve"}
    assert (await site.client.post(url, data=form, headers=site.origin)).status == 403
    await site.sign_in("sari")
    no_token = await site.client.post(url, data={"decision": "approve"}, headers=site.origin)
    assert no_token.status == 403
    token = await _token(site)
    bad = await site.client.post(
        url, data={"csrf_token": token, "decision": "maybe"}, headers=site.origin
    )
    assert bad.status == 400
    page = await (await site.client.get("/unit")).text()
    assert f'action="/unit/requests/{ids["ani"]}"' in page  # still waiting


async def test_a_bad_month_is_400_naming_the_field(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, _ = unit_site
    await site.sign_in("sari")
    for month in ("2026-13", "december", "2026-1"):
        response = await site.client.get(f"/unit?month={month}")
        assert response.status == 400, month
        page = await response.text()
        assert "Bulan: tulis bulan sebagai YYYY-MM" in page
        assert 'aria-invalid="true"' in page
    for month in ("2025-06", "2027-01"):  # before any policy, to come: nothing counted
        response = await site.client.get(f"/unit?month={month}")
        assert response.status == 200, month
        assert set(map(tuple, table(await response.text()).values())) == {("0",) * 8}
    response = await site.client.get("/unit.csv?month=2026-13")
    assert response.status == 400
    assert "month" in await response.text()


async def test_sari_approves_with_the_keyboard_in_a_browser(
    database_url: str,
    browser: Browser,
) -> None:
    await seed_unit_history(database_url)
    async with serving_site(database_url, Clock()) as server:
        base = str(server.make_url("")).rstrip("/")
        context = await browser.new_context(locale="id-ID")
        watch = Watch(base)
        await watch.attach(context)
        try:
            page = await context.new_page()
            await page.goto(base + "/login")
            await _tab_to(page, "Masuk sebagai Sari Wulandari")
            await page.keyboard.press("Enter")
            await page.wait_for_url(base + "/")
            await _tab_to(page, "Unit saya")
            await page.keyboard.press("Enter")
            await page.wait_for_url(base + "/unit")
            assert await page.text_content("h1") == "Unit saya"
            await photograph(page, "unit-history")  # with the history: the tables filled
            await _tab_to(page, "Setujui")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert await page.text_content("[role=status]") == "Pengajuan disetujui."
            waiting = await page.text_content("section[aria-labelledby=waiting-heading]")
            answer = await page.goto(base + "/unit?month=2026-13")
            assert answer is not None and answer.status == 400
            await page.set_viewport_size({"width": 360, "height": 800})
            await snap(page, SCREENS / "unit-bad-month-360.png")
        finally:
            await context.close()
    assert waiting is not None
    assert "Tidak ada pengajuan yang menunggu keputusan Anda." in waiting
    assert "Koreksi kehadiran" not in waiting
    assert watch.outside == []
    # the one error: Chromium logs the 400 of the bad month
    assert watch.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]


ABSENT: dict[str, object] = {
    "policy_version": "national-2026.1",
    "mode": "absent",
    "clock_in": None,
    "clock_out": None,
    "minutes_worked": 0,
    "late_minutes": 0,
    "early_departure_minutes": 0,
    "missing_clock_in": False,
    "missing_clock_out": False,
    "signals": [],
    "reasons": [],
}


def test_near_threshold_watches_a_level_or_two_days_from_the_next() -> None:
    policies = Policies.default()
    policy = policies.in_force(date(2026, 12, 1))
    # Mondays from 2 March: never in a row (the Tuesdays are not absent)
    mondays = [date(2026, 3, 2) + timedelta(weeks=n) for n in range(12)]

    def year(absent: int) -> AbsenceSummary:
        days = [DailyRecord.from_json({**ABSENT, "day": d.isoformat()}) for d in mondays[:absent]]
        return yearly_summary(days, 2026, policies)

    assert [near_threshold(year(n), policy, 2) for n in range(5)] == [
        False,  # 3 days to the first band
        True,
        True,
        True,  # teguran_lisan
        True,
    ]
    band = next_band(3, policy)
    assert band is not None and (band.min_days, band.level) == (4, "teguran_tertulis")
    assert next_band(28, policy) is None
    assert not near_threshold(year(0), policy, 0)


async def test_the_people_shown_see_who_viewed_them(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    """The page and its CSV note each person they show in the access log (Sari, the
    viewer, not); each sees it on My attendance, in Indonesian and in English."""
    site, _ = unit_site
    await site.sign_in("sari")
    assert (await site.client.get("/unit?q=nobody")).status == 200  # shows the watched only
    assert (await site.client.get("/unit.csv?month=2026-11&q=budi")).status == 200
    query = "SELECT subject_id, viewer_id, what, period, channel FROM attendance_access"
    rows = await fetch(site.url, query + " ORDER BY 1, 3")
    assert [tuple(r) for r in rows] == [
        ("ani", "sari", "unit_month", "2026-12", "web"),  # near a discipline level
        ("budi", "sari", "unit_csv", "2026-11", "web"),
        ("budi", "sari", "unit_month", "2026-12", "web"),
    ]
    await site.sign_in("budi")
    page = await (await site.client.get("/attendance")).text()
    assert "Siapa yang melihat kehadiran saya" in page
    assert page.count("Sari Wulandari (Atasan)") == 2
    assert "Rekap bulanan unit, diunduh (CSV)" in page and "2026-11" in page
    english = await site.client.get("/attendance", headers={"Accept-Language": "en"})
    text = await english.text()
    assert "Who viewed my attendance" in text and "The unit's month" in text
    await site.sign_in("sari")
    page = await (await site.client.get("/attendance")).text()
    assert "Belum ada orang lain yang melihat kehadiran Anda." in page


async def test_a_wfa_day_over_the_weekly_cap_is_shown_to_the_supervisor(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    """Budi works from home Monday 30 November to Wednesday 2 December: his third WFA
    day of that week, 2 December, is over the national cap of 2. The December table
    counts it, though the week's first day is in November."""
    site, _ = unit_site
    pool = await create_pool(site.url, 1, api=True)  # its connections encode jsonb
    try:
        conn = await pool.acquire()
        for day in (30, 1, 2):
            await conn.execute(
                """INSERT INTO attendance_signals
                       (person_id, kind, at, place_type, source, received_at)
                   VALUES ('budi', 'app_check_in', $1, 'home', $2, $1)""",
                wita(day, "07:20"),
                f"test:budi:wfa:{day}",
            )
        days = [date(2026, 11, 30), date(2026, 12, 1), date(2026, 12, 2)]
        await service.recompute_days(conn, Policies.default(), ["budi"], days)
        await pool.release(conn)
    finally:
        await close_pool(pool)
    await site.sign_in("sari")
    budi = table(await (await site.client.get("/unit")).text())["Budi Santoso"]
    assert budi[:4] == ["3", "1", "2", "1"]  # present, WFO, WFA, over the cap
    november = table(await (await site.client.get("/unit?month=2026-11")).text())
    assert november["Budi Santoso"][2:4] == ["1", "0"]


async def _disrupted(url: str) -> int:
    """A window of building b1 on Friday 4 December 07:45-08:05 WITA, inside Budi's 40
    minutes of lateness, with the days recomputed as the job does."""
    pool = await create_pool(url, 1, api=True)
    try:
        async with pool.acquire() as conn:
            window = await disruptions_store.record(
                conn,
                "b1",
                wita(4, "07:45"),
                wita(4, "08:05"),
                cause="api_errors",
                detail="test",
                by="api",
            )
            await service.recompute_round(conn, Policies.default())
    finally:
        await close_pool(pool)
    return window.id


async def test_sari_excuses_a_disruption_for_the_unit_and_budis_lateness_goes(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, _ = unit_site
    window = await _disrupted(site.url)
    await site.sign_in("budi")
    day = await (await site.client.get("/attendance/2026-12-04")).text()
    assert "Gangguan sistem" in day and "atasan Anda dapat memaafkannya" in day
    await site.sign_in("sari")
    page = await (await site.client.get("/unit")).text()
    section = page[page.index("disruption-heading") : page.index("watch-heading")]
    assert "1 orang" in section and "server menjawab dengan galat" in section
    assert f'action="/unit/disruptions/{window}/excuse"' in section
    response = await site.client.post(
        f"/unit/disruptions/{window}/excuse",
        data={"csrf_token": await _token(site), "month": "2026-12"},
        headers=site.origin,
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/unit?month=2026-12&done=excused"
    page = await (await site.client.get(response.headers["Location"])).text()
    assert "Gangguan dimaafkan untuk unit Anda" in page
    assert f'action="/unit/disruptions/{window}/excuse"' not in page
    assert table(page)["Budi Santoso"] == ["1", "1", "0", "0", "0", "0", "2", "1"]
    tpp = await site.client.get("/unit/tpp.csv?month=2026-12")
    assert (
        tpp.status == 200 and "tpp-kemenpan-sdm-2026-12.csv" in tpp.headers["Content-Disposition"]
    )
    budi = next(r for r in csv.DictReader(io.StringIO(await tpp.text())) if r["person"] == "budi")
    assert (budi["late_days"], budi["late_minutes"]) == ("0", "0")
    await site.sign_in("budi")
    day = await (await site.client.get("/attendance/2026-12-04")).text()
    assert "atasan Anda telah memaafkannya: 40 menit tidak dihitung" in day


async def test_the_excuse_and_the_tpp_export_are_the_supervisors_only(
    unit_site: tuple[Site, dict[str, UUID]],
) -> None:
    site, _ = unit_site
    window = await _disrupted(site.url)
    visitor = await site.client.get("/unit/tpp.csv?month=2026-12", allow_redirects=False)
    assert (visitor.status, visitor.headers["Location"][:6]) == (303, "/login")
    await site.sign_in("ani")
    token = await site.csrf("/")
    assert (await site.client.get("/unit/tpp.csv?month=2026-12")).status == 403
    url = f"/unit/disruptions/{window}/excuse"
    assert (
        await site.client.post(url, data={"csrf_token": token}, headers=site.origin)
    ).status == 403
    await site.sign_in("sari")
    assert (await site.client.post(url, headers=site.origin)).status == 403  # no CSRF token
    token = await _token(site)
    for bad in ("abc", "99999"):
        response = await site.client.post(
            f"/unit/disruptions/{bad}/excuse", data={"csrf_token": token}, headers=site.origin
        )
        assert response.status == 404
        assert "Gangguan itu tidak mengenai unit Anda." in await response.text()
    for month in ("2026-13", "2025-06"):
        assert (await site.client.get(f"/unit/tpp.csv?month={month}")).status == 400
    page = await (await site.client.get("/unit")).text()
    assert 'href="/unit/tpp.csv?month=2026-12"' in page
