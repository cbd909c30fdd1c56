"""Attendance end to end: badge taps through a real Mosquitto and the real ingest, a
remote check-in by API the next day, daily records and the monthly CSV; a late tap
and an approved correction recompute a day; who may see and approve what."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from api.attendance.handlers import CLOCK
from api.privacy import retention_round
from edge_agent.badge import badge_token
from ikn.benchmarks.attendance import write_replay_policy
from ikn.brokers import BrokerProcess
from ikn_core.contract import BadgeTap, Batch, encode_batch
from ikn_core.domain import Device, DeviceKind, Role
from ikn_core.settings import IngestSettings
from ikn_store.attendance.badges import enrol
from ikn_store.attendance.signals import set_building_site
from ikn_store.people import Person, link_token, upsert_people
from ikn_store.tokens import create_token
from ingest.service import IngestService
from tests.helpers import SMALL_SITE, api_settings, eventually, fetch, publish, seed

WITA = ZoneInfo("Asia/Makassar")
KEY = b"site-key-for-tests-only"
CARD = "0004829001"
SITE = dataclasses.replace(
    SMALL_SITE,
    devices=(*SMALL_SITE.devices, Device("door-b1", DeviceKind.BADGE_READER, "b1", "b1-f1-a")),
)
PEOPLE = [
    Person("ani", "Ani", "kemenpan", "sdm", Role.EMPLOYEE, "b1"),
    Person("budi", "Budi", "kemenpan", "sdm", Role.SUPERVISOR, "b1"),
    Person("dewi", "Dewi", "kemenpan", "sdm", Role.SUPERVISOR, "b1"),
    Person("eko", "Eko", "kemenpan", "keuangan", Role.SUPERVISOR, "b1"),
]
Client = TestClient[web.Request, web.Application]


def wita(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 10, day, hour, minute, tzinfo=WITA)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at.astimezone(UTC)


@dataclasses.dataclass
class World:
    client: Client
    url: str
    port: int
    clock: Clock
    tokens: dict[str, dict[str, str]]


async def _people(url: str) -> dict[str, dict[str, str]]:
    conn = await asyncpg.connect(url)
    try:
        await set_building_site(conn, "b1", -0.9745, 116.7085, "kemenpan")
        await upsert_people(conn, PEOPLE)
        # the platform went live at b1, and has known everyone, since September
        await conn.execute("UPDATE buildings SET live_from = '2026-09-01'")
        await conn.execute("UPDATE people SET known_since = '2026-09-01T00:00+08:00'")
        await enrol(conn, badge_token(KEY, CARD), "ani")
        tokens = {}
        for p in PEOPLE:
            token = await create_token(conn, p.id, str(p.role))
            await link_token(conn, token, p.id)
            tokens[p.id] = {"Authorization": f"Bearer {token}"}
        return tokens
    finally:
        await conn.close()


@pytest.fixture
async def world(
    database_url: str, mosquitto: BrokerProcess, tmp_path: Path
) -> AsyncIterator[World]:
    await seed(database_url, SITE)
    tokens = await _people(database_url)
    ingest = IngestService(
        IngestSettings.from_env(
            {
                "IKN_DATABASE_URL": database_url,
                "IKN_MQTT_URL": mosquitto.url,
                "IKN_INGEST_CLIENT_ID": f"ingest-{uuid.uuid4().hex[:8]}",
                "IKN_INGEST_BATCH_LATENCY_MS": "20",
                # October's taps are refused once older than the retention (90 days
                # by default): kept for as long as this test is run
                "IKN_RETENTION_DAYS": "3650",
            }
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(ingest.run(stop))
    await eventually(lambda: asyncio.sleep(0, ingest), lambda s: s.subscribed or task.done())
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_ATTENDANCE_INTERVAL_S": "0.05",
        # October's taps arrive now, weeks late: counted as if on time in this world
        "IKN_ATTENDANCE_POLICY": str(write_replay_policy(tmp_path / "replay.toml")),
    }
    app = make_app(api_settings(env))
    clock = Clock(wita(2, 7, 20))
    app[CLOCK] = clock.__call__
    try:
        async with TestClient(TestServer(app)) as client:
            yield World(client, database_url, mosquitto.port, clock, tokens)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def tap(world: World, *taps: tuple[datetime, Literal["in", "out"]]) -> None:
    """Taps of Ani's card at the door reader, as its edge agent publishes them
    (the card number turned into the badge token with the site key)."""
    token = badge_token(KEY, CARD)
    readings = tuple(
        BadgeTap(i, int(at.timestamp() * 1000), token, direction)
        for i, (at, direction) in enumerate(taps)
    )
    publish(world.port, "ikn/v1/dev/door-b1/up", encode_batch(Batch(Batch.new_stream(), readings)))


async def day_record(world: World, person: str, day: str) -> dict[str, Any] | None:
    rows = await fetch(
        world.url,
        "SELECT record::text FROM attendance_days WHERE person_id = $1 AND day = $2::text::date",
        person,
        day,
    )
    if not rows:
        return None
    doc: dict[str, Any] = orjson.loads(rows[0][0])
    return doc


async def until(world: World, day: str, accept: Any) -> dict[str, Any]:
    found = await eventually(
        lambda: day_record(world, "ani", day), lambda r: r is not None and accept(r)
    )
    assert found is not None
    return found


async def two_days(world: World) -> None:
    """Badge in 07:40 and out 16:05 on Thursday 1 October; from home on Friday."""
    tap(world, (wita(1, 7, 40), "in"), (wita(1, 16, 5), "out"))
    await until(world, "2026-10-01", lambda r: r["clock_out"] is not None)
    body = {"place_type": "home", "lat": -1.25, "lon": 116.85, "accuracy_m": 20}
    headers = world.tokens["ani"]
    response = await world.client.post("/api/v1/attendance/check-in", json=body, headers=headers)
    assert response.status == 201, await response.text()
    world.clock.at = wita(2, 16, 40)
    response = await world.client.post("/api/v1/attendance/check-out", json=body, headers=headers)
    assert response.status == 201
    await until(world, "2026-10-02", lambda r: r["clock_out"] is not None)


EXPECTED_CSV = """\
person,day,mode,clock_in,clock_out,minutes_worked,late_minutes,early_departure_minutes,\
missing_clock_in,missing_clock_out,excuse
ani,2026-10-01,wfo,2026-10-01T07:40:00+08:00,2026-10-01T16:05:00+08:00,445,10,0,false,false,
ani,2026-10-02,wfa,2026-10-02T07:20:00+08:00,2026-10-02T16:40:00+08:00,470,0,0,false,false,
person,days_present,wfo,wfo_other_agency,wfa,late_minutes,early_departure_minutes,excused,\
unexcused_absences
ani,2,1,0,1,10,0,0,0
"""


async def test_badge_taps_and_a_remote_check_in_make_two_records_and_the_csv(
    world: World,
) -> None:
    await two_days(world)
    thursday = await day_record(world, "ani", "2026-10-01")
    friday = await day_record(world, "ani", "2026-10-02")
    assert thursday is not None and friday is not None
    assert (thursday["mode"], thursday["late_minutes"], thursday["minutes_worked"]) == (
        "wfo",
        10,
        445,
    )
    assert (friday["mode"], friday["late_minutes"], friday["minutes_worked"]) == ("wfa", 0, 470)
    assert len(thursday["signals"]) == 2 and any("badge_in" in r for r in thursday["reasons"])

    headers = {**world.tokens["budi"], "Accept": "text/csv"}
    response = await world.client.get(
        "/api/v1/attendance/units/kemenpan/sdm?month=2026-10", headers=headers
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    text = await response.text()
    ani_rows = [line for line in text.splitlines() if line.startswith(("person,", "ani,"))]
    assert "\n".join(ani_rows) + "\n" == EXPECTED_CSV

    mine = await world.client.get(
        "/api/v1/attendance/me?month=2026-10&format=csv", headers=world.tokens["ani"]
    )
    assert await mine.text() == EXPECTED_CSV.replace("\n", "\r\n")  # RFC 4180 lines
    stored = await fetch(
        world.url, "SELECT lat, lon FROM attendance_signals WHERE kind = 'app_check_in'"
    )
    # the national policy keeps the geofence decision, never the position
    assert [(r["lat"], r["lon"]) for r in stored] == [(None, None)]


async def test_a_late_tap_recomputes_the_day(world: World) -> None:
    await two_days(world)
    tap(world, (wita(1, 7, 25), "in"))  # an outbox drained hours later
    record = await until(world, "2026-10-01", lambda r: r["late_minutes"] == 0)
    assert record["clock_in"] == "2026-10-01T07:25:00+08:00"
    assert record["minutes_worked"] == 460
    assert len(record["signals"]) == 3


async def _request(world: World, who: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await world.client.post(
        "/api/v1/attendance/requests", json=body, headers=world.tokens[who]
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def test_an_approved_correction_recomputes_the_day_and_is_audited(world: World) -> None:
    await two_days(world)
    correction = {
        "kind": "correction",
        "from": "2026-10-01",
        "clock_in": "2026-10-01T07:30:00+08:00",
        "reason": "the reader at the door was out of order",
    }
    created = await _request(world, "ani", correction)
    # What the recompute job audited before: a day whose check-out reached it in a later
    # run than its check-in (0.05 s apart, or more on a loaded machine) is a change.
    [earlier] = await fetch(world.url, "SELECT coalesce(max(id), 0) AS id FROM attendance_audit")
    path = f"/api/v1/attendance/requests/{created['id']}"
    response = await world.client.post(f"{path}/approve", headers=world.tokens["ani"])
    assert response.status == 403  # an employee approves nothing
    response = await world.client.post(f"{path}/approve", headers=world.tokens["eko"])
    assert response.status == 404  # another unit's supervisor does not even see it
    response = await world.client.post(f"{path}/approve", headers=world.tokens["budi"])
    assert response.status == 200
    assert (await response.json())["status"] == "approved"
    record = await day_record(world, "ani", "2026-10-01")
    assert record is not None and record["late_minutes"] == 0  # recomputed at approval
    audit = await fetch(
        world.url,
        "SELECT actor, action, before->>'late_minutes' b, after->>'late_minutes' a "
        "FROM attendance_audit WHERE action = 'recomputed' AND id > $1",
        earlier["id"],
    )
    assert [tuple(r) for r in audit] == [("budi", "recomputed", "10", "0")]
    response = await world.client.post(f"{path}/approve", headers=world.tokens["dewi"])
    assert response.status == 409  # decided already

    # why the day says what it says: the record, the signals behind it, the audit trail
    day = "/api/v1/attendance/day?day=2026-10-01"
    response = await world.client.get(day, headers=world.tokens["ani"])
    body = await response.json()
    kinds = [(x["kind"], x["at"]) for x in body["signals"]]
    assert kinds == [  # in the person's building zone, as bookings are
        ("correction_in", "2026-10-01T07:30:00+08:00"),
        ("badge_in", "2026-10-01T07:40:00+08:00"),
        ("badge_out", "2026-10-01T16:05:00+08:00"),
    ]
    assert {x["id"] for x in body["signals"]} == set(body["record"]["signals"])
    assert body["signals"][0]["source"] == f"request:{created['id']}"
    assert [a["action"] for a in body["audit"]] == ["requested", "approved", "recomputed"]
    response = await world.client.get(f"{day}&person=ani", headers=world.tokens["budi"])
    assert response.status == 200
    response = await world.client.get(f"{day}&person=ani", headers=world.tokens["eko"])
    assert response.status == 403
    response = await world.client.get(
        "/api/v1/attendance/day?day=2026-13-01", headers=world.tokens["ani"]
    )
    assert (await response.json())["invalid_params"][0]["name"] == "day"


async def test_a_request_is_never_approved_by_its_requester(world: World) -> None:
    leave = {"kind": "cuti", "from": "2026-10-05", "to": "2026-10-06", "reason": "annual leave"}
    created = await _request(world, "budi", leave)
    listed = {}
    for who in ("budi", "dewi", "ani", "eko"):
        response = await world.client.get("/api/v1/attendance/requests", headers=world.tokens[who])
        listed[who] = [r["id"] for r in (await response.json())["requests"]]
    # the requester and the unit's supervisors see it; an employee or another unit does not
    assert listed == {"budi": [created["id"]], "dewi": [created["id"]], "ani": [], "eko": []}
    path = f"/api/v1/attendance/requests/{created['id']}/approve"
    response = await world.client.post(path, headers=world.tokens["budi"])
    assert response.status == 403
    assert (await response.json())["type"].endswith("/own-request")
    response = await world.client.post(path, headers=world.tokens["dewi"])
    assert response.status == 200
    for day in ("2026-10-05", "2026-10-06"):
        rows = await fetch(
            world.url,
            "SELECT mode FROM attendance_days WHERE person_id = 'budi' AND day = $1::text::date",
            day,
        )
        assert [r["mode"] for r in rows] == ["excused"]


async def test_people_see_only_their_own_and_supervisors_only_their_unit(world: World) -> None:
    await two_days(world)
    get = world.client.get
    response = await get("/api/v1/attendance/me?month=2026-10", headers=world.tokens["budi"])
    people = (await response.json())["people"]
    assert [p["person"] for p in people] == ["budi"]
    # Thursday; Friday (it is 16:40 on Friday) is not over yet, so not yet absent
    assert people[0]["summary"]["unexcused_absences"] == 1
    assert [d["mode"] for d in people[0]["days"]] == ["absent", "not_yet"]
    response = await get("/api/v1/attendance/me?month=2020-01", headers=world.tokens["budi"])
    assert (await response.json())["people"][0]["days"] == []  # before any policy: no days
    response = await get(
        "/api/v1/attendance/units/kemenpan/sdm?month=2026-10", headers=world.tokens["eko"]
    )
    assert response.status == 403
    response = await get(
        "/api/v1/attendance/units/kemenpan/sdm?month=2026-10", headers=world.tokens["ani"]
    )
    assert response.status == 403
    response = await get(
        "/api/v1/attendance/units/kemenpan/sdm?month=2026-10", headers=world.tokens["budi"]
    )
    body = await response.json()
    assert [p["person"] for p in body["people"]] == ["ani", "budi", "dewi"]
    conn = await asyncpg.connect(world.url)
    try:  # an admin's service token, of no person, sees any unit
        admin = {"Authorization": f"Bearer {await create_token(conn, 'ops', 'admin')}"}
    finally:
        await conn.close()
    response = await get("/api/v1/attendance/units/kemenpan/keuangan?month=2026-10", headers=admin)
    assert [p["person"] for p in (await response.json())["people"]] == ["eko"]
    response = await get("/api/v1/attendance/absences?year=2026", headers=world.tokens["ani"])
    assert [p["person"] for p in (await response.json())["people"]] == ["ani"]
    response = await get(
        "/api/v1/attendance/absences?year=2026&unit=keuangan", headers=world.tokens["ani"]
    )
    assert response.status == 403


async def test_an_office_check_in_needs_the_geofence(world: World) -> None:
    headers = world.tokens["ani"]
    far = {"place_type": "office", "lat": -1.25, "lon": 116.85}
    response = await world.client.post("/api/v1/attendance/check-in", json=far, headers=headers)
    assert response.status == 422
    assert (await response.json())["invalid_params"][0]["name"] == "lat"
    near = {"place_type": "office", "lat": -0.9746, "lon": 116.7086, "accuracy_m": 10}
    response = await world.client.post("/api/v1/attendance/check-in", json=near, headers=headers)
    assert response.status == 201
    assert (await response.json())["building"] == "b1"
    for body, field in (
        ({"place_type": "office"}, "lat"),
        ({"place_type": "moon"}, "place_type"),
        ({"place_type": "home", "lat": 95, "lon": 0}, "lat"),
        ({"place_type": "home", "lat": 1}, "lon"),
        ({"place_type": "home", "when": 1}, "when"),
    ):
        response = await world.client.post(
            "/api/v1/attendance/check-in", json=body, headers=headers
        )
        assert response.status == 400, body
        assert (await response.json())["invalid_params"][0]["name"] == field


async def test_coordinates_are_kept_only_as_long_as_the_policy_says(
    database_url: str, tmp_path: Path
) -> None:
    national = resources.files("ikn_core.attendance").joinpath("policies", "national.toml")
    text = national.read_text(encoding="utf-8")
    kept = text.replace('retention_days = "none"', "retention_days = 30")
    assert kept != text
    (tmp_path / "policy.toml").write_text(kept, encoding="utf-8")
    await seed(database_url, SITE)
    tokens = await _people(database_url)
    env = {
        "IKN_DATABASE_URL": database_url,
        "IKN_ATTENDANCE_INTERVAL_S": "0.05",
        "IKN_ATTENDANCE_POLICY": str(tmp_path / "policy.toml"),
        "IKN_RETENTION_INTERVAL_S": "0.05",
    }
    app = make_app(api_settings(env))
    clock = Clock(wita(2, 7, 20))
    app[CLOCK] = clock.__call__
    query = "SELECT lat, lon, accuracy_m FROM attendance_signals"
    async with TestClient(TestServer(app)) as client:
        body = {"place_type": "field", "lat": -1.25, "lon": 116.85, "accuracy_m": 20}
        response = await client.post(
            "/api/v1/attendance/check-in", json=body, headers=tokens["ani"]
        )
        assert (await response.json())["coordinates_stored"] is True
        rows = await fetch(database_url, query)
        assert [tuple(r) for r in rows] == [(-1.25, 116.85, 20.0)]
        clock.at = wita(31, 8, 0)  # 29 days later: still kept
        assert (await retention_round(app) or {}).get("coordinates", 0) == 0
        assert [tuple(r) for r in await fetch(database_url, query)] == [(-1.25, 116.85, 20.0)]
        clock.at = wita(2, 7, 21) + timedelta(days=30)  # past the 30 days: the job purges
        await eventually(
            lambda: fetch(database_url, query),
            lambda r: [tuple(x) for x in r] == [(None, None, None)],
        )


BAD_REQUESTS = [
    ({"kind": "holiday", "from": "2026-10-01", "reason": "x"}, "kind"),
    ({"kind": "cuti", "from": "2026-10-01"}, "reason"),
    ({"kind": "cuti", "from": "1 Oct", "reason": "x"}, "from"),
    ({"kind": "cuti", "from": "2026-10-05", "to": "2026-10-01", "reason": "x"}, "to"),
    ({"kind": "correction", "from": "2026-10-01", "reason": "x"}, "clock_in"),
    (
        {
            "kind": "correction",
            "from": "2026-10-01",
            "reason": "x",
            "clock_in": "2026-10-02T07:30:00+08:00",
        },
        "clock_in",
    ),
    (
        {
            "kind": "correction",
            "from": "2026-10-01",
            "reason": "x",
            "clock_out": "2026-10-01T17:00:00",
        },
        "clock_out",
    ),
    ({"kind": "cuti", "from": "2026-10-01", "reason": "x", "clock_in": "x"}, "clock_in"),
    ({"kind": "cuti", "from": "2026-10-01", "reason": "x", "extra": 1}, "extra"),
]


async def test_bad_requests_name_the_field(database_url: str) -> None:
    await seed(database_url, SITE)
    tokens = await _people(database_url)
    app = make_app(api_settings({"IKN_DATABASE_URL": database_url}))
    async with TestClient(TestServer(app)) as client:
        for body, field in BAD_REQUESTS:
            response = await client.post(
                "/api/v1/attendance/requests", json=body, headers=tokens["ani"]
            )
            assert response.status == 400, body
            assert (await response.json())["invalid_params"][0]["name"] == field


async def test_wfa_days_beyond_the_weekly_cap_are_flagged(world: World) -> None:
    headers = world.tokens["ani"]
    for day in (5, 6, 7):  # Monday to Wednesday from home; the national cap is 2 a week
        world.clock.at = wita(day, 7, 25)
        body = {"place_type": "home"}
        response = await world.client.post(
            "/api/v1/attendance/check-in", json=body, headers=headers
        )
        assert response.status == 201
        # the answer tells her at once: the third is over the cap
        week = (await response.json())["remote_week"]
        assert week == {"wfa_day": day - 4, "cap": 2, "over_cap": day == 7}
    await until(world, "2026-10-07", lambda r: r["mode"] == "wfa")
    response = await world.client.get("/api/v1/attendance/me?month=2026-10", headers=headers)
    (mine,) = (await response.json())["people"]
    assert mine["wfa_over_weekly_cap"] == ["2026-10-07"]
    assert mine["summary"]["wfa"] == 3
