"""Issue 20: days older than ``IKN_ATTENDANCE_RETENTION_DAYS`` are not reported. The
retention job deleted their records (and their signals before them): computed afresh
they would say absent from no signal, so the month lists leave them out and a day's
explanation refuses them, naming ``day``."""

from __future__ import annotations

from datetime import date

from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.attendance.handlers import CLOCK
from ikn_core.attendance import Policies
from tests.helpers import api_settings
from tests.test_access_log import _auth, _tokens
from tests.web_site import NOW, seed_people


def test_reported_days_start_within_the_days_kept() -> None:
    policies = Policies.default()
    today = date(2026, 12, 7)
    assert len(policies.reported_days(date(2026, 11, 1), date(2026, 12, 1), today)) == 30
    kept = policies.keeping(30).reported_days(date(2026, 11, 1), date(2026, 12, 1), today)
    assert (kept[0], kept[-1]) == (date(2026, 11, 7), date(2026, 11, 30))
    assert policies.keeping(30).reported_days(date(2026, 10, 1), date(2026, 11, 1), today) == []


async def test_the_api_reports_no_day_older_than_the_retention(database_url: str) -> None:
    await seed_people(database_url)
    await _tokens(database_url)
    env = {"IKN_DATABASE_URL": database_url, "IKN_ATTENDANCE_RETENTION_DAYS": "30"}
    app = make_app(api_settings(env))
    app[CLOCK] = lambda: NOW  # Monday 7 December 2026
    async with TestClient(TestServer(app)) as client:
        october = await client.get("/api/v1/attendance/me?month=2026-10", headers=_auth("ani"))
        assert october.status == 200
        assert (await october.json())["people"][0]["days"] == []
        november = await client.get("/api/v1/attendance/me?month=2026-11", headers=_auth("ani"))
        days = [d["day"] for d in (await november.json())["people"][0]["days"]]
        assert (days[0], days[-1]) == ("2026-11-07", "2026-11-30")
        old = await client.get("/api/v1/attendance/day?day=2026-10-15", headers=_auth("ani"))
        assert old.status == 400
        body = await old.json()
        assert body["invalid_params"][0]["name"] == "day"
        assert "IKN_ATTENDANCE_RETENTION_DAYS" in body["invalid_params"][0]["reason"]
        kept = await client.get("/api/v1/attendance/day?day=2026-11-09", headers=_auth("ani"))
        assert kept.status == 200
