"""The access log (who viewed whose attendance) through the real API on a real
PostgreSQL: a supervisor's unit month, its CSV, its TPP export, the year's absences and one person's
day are noted per person shown; the person reads them at ``/api/v1/me/access-log``
and in ``/api/v1/me/data``; looking at one's own attendance is not noted."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.attendance.handlers import CLOCK
from tests.helpers import api_settings, bearer
from tests.web_site import NOW, WITA, seed_people

Client = TestClient[web.Request, web.Application]
TOKENS = {"ani": "ikn_access_ani", "budi": "ikn_access_budi", "sari": "ikn_access_sari"}


def _auth(person: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[person]}"}


async def _tokens(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for person, token in TOKENS.items():
            role = "supervisor" if person == "sari" else "employee"
            await conn.execute(
                """INSERT INTO api_tokens (token_hash, name, role, person_id)
                   VALUES (sha256($1::text::bytea), $1, $2, $3)""",
                token,
                role,
                person,
            )
    finally:
        await conn.close()


async def _views(client: Client, person: str) -> list[dict[str, object]]:
    answer = await client.get("/api/v1/me/access-log", headers=_auth(person))
    assert answer.status == 200
    body = await answer.json()
    assert body["person_id"] == person
    views: list[dict[str, object]] = body["views"]
    return views


def _seen(views: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(v["viewer"], v["what"], v["period"], v["channel"]) for v in views]


async def test_who_viewed_my_attendance(database_url: str) -> None:
    await seed_people(database_url)
    await _tokens(database_url)
    admin = await bearer(database_url, "audit-service", "admin")
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    app[CLOCK] = lambda: NOW
    async with TestClient(TestServer(app)) as client:
        unit = "/api/v1/attendance/units/kemenpan/sdm?month=2026-12"
        for url, who in (
            (unit, "sari"),
            (unit + "&format=csv", "sari"),
            ("/api/v1/attendance/units/kemenpan/sdm/tpp?month=2026-12", "sari"),
            ("/api/v1/attendance/absences?year=2026", "sari"),
            ("/api/v1/attendance/day?day=2026-12-04&person=ani", "sari"),
            ("/api/v1/attendance/day?day=2026-12-04", "ani"),  # her own: not noted
            ("/api/v1/attendance/me?month=2026-12", "budi"),
        ):
            answer = await client.get(url, headers=_auth(who))
            assert answer.status == 200, (url, await answer.text())
        answer = await client.get(
            "/api/v1/attendance/day?day=2026-12-03&person=budi", headers=admin
        )
        assert answer.status == 200
        ani, budi, sari = [await _views(client, p) for p in ("ani", "budi", "sari")]
        assert _seen(ani) == [  # newest first
            ("sari", "day", "2026-12-04", "api"),
            ("sari", "absences", "2026", "api"),
            ("sari", "tpp", "2026-12", "api"),
            ("sari", "unit_csv", "2026-12", "api"),
            ("sari", "unit_month", "2026-12", "api"),
        ]
        assert {v["viewer_name"] for v in ani} == {"Sari Wulandari"}
        assert _seen(budi) == [
            (None, "day", "2026-12-03", "api"),  # a token of no person: by its name
            ("sari", "absences", "2026", "api"),
            ("sari", "tpp", "2026-12", "api"),
            ("sari", "unit_csv", "2026-12", "api"),
            ("sari", "unit_month", "2026-12", "api"),
        ]
        assert (budi[0]["viewer_name"], budi[0]["viewer_role"]) == ("audit-service", "admin")
        assert sari == []  # her own rows of the unit are not noted
        data = await (await client.get("/api/v1/me/data", headers=_auth("ani"))).json()
        assert len(data["attendance_access"]) == 5
        mine = await (await client.get("/api/v1/me/data", headers=_auth("sari"))).json()
        assert len(mine["attendance_access"]) == 9  # whose she viewed: 5 of Ani's, 4 of Budi's
        answer = await client.get("/api/v1/me/access-log?limit=0", headers=_auth("ani"))
        assert answer.status == 400
        assert (await answer.json())["invalid_params"][0]["name"] == "limit"
        one = await client.get("/api/v1/me/access-log?limit=1", headers=_auth("ani"))
        assert len((await one.json())["views"]) == 1


async def test_a_supervisors_list_of_the_units_requests_is_noted(database_url: str) -> None:
    """Sari lists the requests: Ani's (filed by her) is noted in Ani's log; Ani's own
    list, and Sari's own request, are not."""
    await seed_people(database_url)
    await _tokens(database_url)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    app[CLOCK] = lambda: NOW
    async with TestClient(TestServer(app)) as client:
        for who, day in (("ani", "2026-12-09"), ("sari", "2026-12-10")):
            body = {"kind": "cuti", "from": day, "reason": "Cuti tahunan"}
            answer = await client.post("/api/v1/attendance/requests", json=body, headers=_auth(who))
            assert answer.status == 201, await answer.text()
        for who in ("ani", "sari"):
            answer = await client.get("/api/v1/attendance/requests", headers=_auth(who))
            assert answer.status == 200
        today = NOW.astimezone(WITA).date().isoformat()
        assert _seen(await _views(client, "ani")) == [("sari", "requests", today, "api")]
        assert await _views(client, "sari") == []
