"""The right of access (``GET /api/v1/me/data``, ikn_store/privacy.py) on a real
PostgreSQL through the API: the caller's data from every table that holds some, none
of another person's, no secret; and no table with a person's id left unread."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import asyncpg
import orjson
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_store.privacy import DERIVED, SECTIONS
from tests.helpers import api_settings
from tests.web_site import PEOPLE, seed_people


def keeping_coordinates(tmp_path: Path) -> str:
    """The national policy keeping coordinates 30 days (it keeps none), as a file: else
    the retention job, which runs when the API starts, purges the ones a test stored."""
    national = resources.files("ikn_core.attendance").joinpath("policies", "national.toml")
    text = national.read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    path.write_text(text.replace('retention_days = "none"', "retention_days = 30"), "utf-8")
    return str(path)


async def test_a_person_reads_everything_about_them_and_nothing_else(
    database_url: str, tmp_path: Path
) -> None:
    await seed_people(database_url)  # Ani's booking today; tokens for everyone
    conn = await asyncpg.connect(database_url)
    try:
        ani_token = "ikn_privacy_ani"
        await conn.execute(
            """INSERT INTO api_tokens (token_hash, name, role, person_id)
               VALUES (sha256($1::text::bytea), 'ani-phone', 'employee', 'ani')""",
            ani_token,
        )
        at = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)
        for person, source in (("ani", "api:ani-1"), ("budi", "api:budi-1")):
            await conn.execute(
                """INSERT INTO attendance_signals (person_id, kind, at, place_type, source,
                                                   lat, lon, accuracy_m)
                   VALUES ($1, 'app_check_in', $2, 'home', $3, -1.25, 116.85, 20)""",
                person,
                at,
                source,
            )
        await conn.execute(
            """INSERT INTO web_sessions (id_hash, person_id, csrf_token, expires_at)
               VALUES (sha256('s'::bytea), 'ani', repeat('c', 40), now() + interval '1 hour')"""
        )
    finally:
        await conn.close()
    env = {"IKN_DATABASE_URL": database_url, "IKN_ATTENDANCE_POLICY": keeping_coordinates(tmp_path)}
    app = make_app(api_settings(env))
    async with TestClient(TestServer(app)) as client:
        answer = await client.get(
            "/api/v1/me/data", headers={"Authorization": f"Bearer {ani_token}"}
        )
        assert answer.status == 200
        assert "attachment" in answer.headers["Content-Disposition"]
        data = await answer.json()
    assert data["person_id"] == "ani" and data["person"]["name"] == PEOPLE[0].name
    assert set(data) == {"generated_at", "person_id", *SECTIONS}
    assert [s["source"] for s in data["attendance_signals"]] == ["api:ani-1"]
    assert data["attendance_signals"][0]["lat"] == -1.25  # the coordinates stored are hers
    assert [b["desk_id"] for b in data["bookings"]] == ["d1"]
    assert {t["name"] for t in data["api_tokens"]} >= {"ani-phone"}
    assert len(data["web_sessions"]) == 1
    text = orjson.dumps(data).decode()
    assert "budi" not in text.lower()  # nothing of another person
    assert "csrf" not in text and "token_hash" not in text and "id_hash" not in text
    assert datetime.fromisoformat(data["generated_at"]) > datetime.now(UTC) - timedelta(minutes=1)


async def test_every_table_with_a_person_is_read(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                """SELECT table_name FROM information_schema.columns
                   WHERE table_schema = 'public' AND column_name = 'person_id'"""
            )
        }
    finally:
        await conn.close()
    read = {section for section in SECTIONS} | DERIVED
    assert tables - read == set()
