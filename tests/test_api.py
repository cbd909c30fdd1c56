"""The HTTP API on a real PostgreSQL: authorisation for every route, problem+json errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from api.app import make_app
from ikn_store.tokens import create_token
from tests.conftest import TEMPLATE, _fresh_database
from tests.helpers import api_settings, seed

PROBLEM = "application/problem+json"


@pytest.fixture
async def app(database_url: str) -> web.Application:
    return await _app(database_url)


async def _app(database_url: str) -> web.Application:
    await seed(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC)
        await conn.execute(
            """INSERT INTO desk_state (desk_id, device_id, occupied, since, reported_at, updated_at)
               VALUES ('d1', 'desk-d1', true, $1, $2, now())""",
            now - timedelta(hours=1),
            now - timedelta(seconds=30),
        )
    finally:
        await conn.close()
    return make_app(api_settings({"IKN_DATABASE_URL": database_url}))


@pytest.fixture
async def client(app: web.Application) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(app)) as c:
        yield c


async def _token(database_url: str, role: str, name: str | None = None) -> dict[str, str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {"Authorization": f"Bearer {await create_token(conn, name or role, role)}"}
    finally:
        await conn.close()


# The ~260 authorisation tests below share one database and API (a fresh one each cost
# more than the test): their requests change nothing (refused, a read, or a bare request
# answered 400 or 404), and each makes its own token.
@pytest.fixture(scope="module")
def routes_database_url(pg_server: str) -> Iterator[str]:
    yield from _fresh_database(pg_server, TEMPLATE)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def routes_client(
    routes_database_url: str,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(await _app(routes_database_url))) as c:
        yield c


EVERYONE = {"employee", "delegate", "supervisor", "facility_manager", "admin"}

# Every route and who may call it: the test below fails when a route is added
# without being listed here (and so without an authorisation test).
ACCESS = {
    ("GET", "/healthz"): "public",
    ("GET", "/api/v1/occupancy/live"): {"facility_manager", "admin"},
    ("POST", "/api/v1/bookings"): EVERYONE,
    ("GET", "/api/v1/bookings"): EVERYONE,
    ("DELETE", "/api/v1/bookings/{id}"): EVERYONE,
    ("POST", "/api/v1/bookings/{id}/check-in"): EVERYONE,
    ("POST", "/api/v1/bookings/{id}/check-out"): EVERYONE,
    ("GET", "/api/v1/bookings/no-shows"): {"facility_manager", "admin"},
    ("POST", "/api/v1/bookings/series"): EVERYONE,
    ("DELETE", "/api/v1/bookings/{id}/following"): EVERYONE,
    ("GET", "/api/v1/availability"): EVERYONE,
    ("GET", "/api/v1/bookings.ics"): EVERYONE,
    ("GET", "/api/v1/occupancy/stream"): {"facility_manager", "admin"},
    ("GET", "/api/v1/devices"): {"facility_manager", "admin"},
    ("GET", "/api/v1/devices/alerts"): {"facility_manager", "admin"},
    ("POST", "/api/v1/devices"): {"admin"},
    ("PATCH", "/api/v1/devices/{id}"): {"admin"},
    ("POST", "/api/v1/devices/{id}/commands"): {"facility_manager", "admin"},
    ("GET", "/api/v1/devices/{id}/commands"): {"facility_manager", "admin"},
    ("GET", "/api/v1/dead-letters"): {"facility_manager", "admin"},
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/api/v1/docs"): "public",
    ("GET", "/api/v1/docs/assets/{name}"): "public",
    ("GET", "/api/v1/analytics/utilisation"): {"facility_manager", "admin"},
    ("GET", "/api/v1/analytics/funnel"): {"facility_manager", "admin"},
    ("GET", "/api/v1/analytics/environment"): {"facility_manager", "admin"},
    ("GET", "/api/v1/analytics/no-shows"): {"facility_manager", "admin"},
    ("POST", "/api/v1/attendance/check-in"): EVERYONE,
    ("POST", "/api/v1/attendance/check-out"): EVERYONE,
    ("GET", "/api/v1/attendance/me"): EVERYONE,
    ("GET", "/api/v1/attendance/units/{agency}/{unit}"): {"supervisor", "admin"},
    ("GET", "/api/v1/attendance/units/{agency}/{unit}/tpp"): {"supervisor", "admin"},
    ("GET", "/api/v1/attendance/units/{agency}/{unit}/disruptions"): {"supervisor", "admin"},
    ("POST", "/api/v1/attendance/units/{agency}/{unit}/disruptions/{id}/excuse"): {"supervisor"},
    ("GET", "/api/v1/attendance/disruptions"): {"admin"},
    ("POST", "/api/v1/attendance/disruptions"): {"admin"},
    ("GET", "/api/v1/attendance/absences"): EVERYONE,
    ("POST", "/api/v1/attendance/requests"): EVERYONE,
    ("GET", "/api/v1/attendance/requests"): EVERYONE,
    ("POST", "/api/v1/attendance/requests/{id}/approve"): {"supervisor"},
    ("POST", "/api/v1/attendance/requests/{id}/reject"): {"supervisor"},
    ("GET", "/api/v1/attendance/day"): EVERYONE,
    ("GET", "/api/v1/me/data"): EVERYONE,
    ("GET", "/api/v1/me/access-log"): EVERYONE,
    ("GET", "/api/v1/sites/{id}/booking-rules"): {"facility_manager", "admin"},
    ("PUT", "/api/v1/sites/{id}/booking-rules"): {"admin"},
    ("GET", "/api/v1/buildings/{id}/booking-rules"): {"facility_manager", "admin"},
    ("PUT", "/api/v1/buildings/{id}/booking-rules"): {"admin"},
    ("GET", "/api/v1/zones/{id}/booking-rules"): {"facility_manager", "admin"},
    ("PUT", "/api/v1/zones/{id}/booking-rules"): {"admin"},
    ("GET", "/api/v1/zones/{id}/access"): {"facility_manager", "admin"},
    ("PUT", "/api/v1/zones/{id}/access"): {"admin"},
}
# What an admitted role gets from the bare request made below, when not 200: the
# route wants a body, parameters or a real id (per-role tests: tests/test_booking_api.py).
ADMITTED_STATUS = {
    ("POST", "/api/v1/bookings"): 400,
    ("DELETE", "/api/v1/bookings/{id}"): 400,
    ("POST", "/api/v1/bookings/{id}/check-in"): 400,
    ("POST", "/api/v1/bookings/{id}/check-out"): 400,
    ("POST", "/api/v1/bookings/series"): 400,
    ("DELETE", "/api/v1/bookings/{id}/following"): 400,
    ("GET", "/api/v1/availability"): 400,
    ("POST", "/api/v1/devices"): 400,
    ("PATCH", "/api/v1/devices/{id}"): 400,
    ("POST", "/api/v1/devices/{id}/commands"): 400,  # a body saying which command
    ("GET", "/api/v1/devices/{id}/commands"): 404,  # no such device
    ("GET", "/api/v1/analytics/utilisation"): 400,  # from and to are required
    ("GET", "/api/v1/analytics/funnel"): 400,
    ("GET", "/api/v1/analytics/environment"): 400,
    ("GET", "/api/v1/analytics/no-shows"): 400,
    # attendance: a body, ?month= or ?year=, or a request id (tests/test_attendance_e2e.py)
    ("POST", "/api/v1/attendance/check-in"): 400,
    ("POST", "/api/v1/attendance/check-out"): 400,
    ("GET", "/api/v1/attendance/me"): 400,
    ("GET", "/api/v1/attendance/units/{agency}/{unit}"): 400,
    ("GET", "/api/v1/attendance/units/{agency}/{unit}/tpp"): 400,
    ("GET", "/api/v1/attendance/units/{agency}/{unit}/disruptions"): 400,  # ?month=
    ("POST", "/api/v1/attendance/units/{agency}/{unit}/disruptions/{id}/excuse"): 400,  # id
    ("GET", "/api/v1/attendance/disruptions"): 400,  # ?month=
    ("POST", "/api/v1/attendance/disruptions"): 400,  # a body
    ("GET", "/api/v1/attendance/absences"): 400,
    ("POST", "/api/v1/attendance/requests"): 400,
    ("POST", "/api/v1/attendance/requests/{id}/approve"): 400,
    ("POST", "/api/v1/attendance/requests/{id}/reject"): 400,
    ("GET", "/api/v1/attendance/day"): 400,
    ("GET", "/api/v1/me/data"): 403,  # these tokens are of no person
    ("GET", "/api/v1/me/access-log"): 403,
    # zones: no such zone (404 unknown-place, ADMITTED_KIND), a body (tests/test_zone_admin.py)
    ("GET", "/api/v1/sites/{id}/booking-rules"): 404,
    ("PUT", "/api/v1/sites/{id}/booking-rules"): 400,
    ("GET", "/api/v1/buildings/{id}/booking-rules"): 404,
    ("PUT", "/api/v1/buildings/{id}/booking-rules"): 400,
    ("GET", "/api/v1/zones/{id}/booking-rules"): 404,
    ("PUT", "/api/v1/zones/{id}/booking-rules"): 400,
    ("GET", "/api/v1/zones/{id}/access"): 404,
    ("PUT", "/api/v1/zones/{id}/access"): 400,
}
# The problem type an admitted role gets when not 200, when not invalid-parameter.
ADMITTED_KIND = {
    ("GET", "/api/v1/devices/{id}/commands"): "unknown-device",
    ("GET", "/api/v1/sites/{id}/booking-rules"): "unknown-place",
    ("GET", "/api/v1/buildings/{id}/booking-rules"): "unknown-place",
    ("GET", "/api/v1/zones/{id}/booking-rules"): "unknown-place",
    ("GET", "/api/v1/zones/{id}/access"): "unknown-place",
    ("GET", "/api/v1/me/data"): "not-a-person",
    ("GET", "/api/v1/me/access-log"): "not-a-person",
}
ROLES = ("employee", "delegate", "supervisor", "facility_manager", "admin")


def _concrete(path: str) -> str:
    """A path that matches a route with placeholders (aiohttp matches no literal braces)."""
    return path.replace("{id}", "not-an-id").replace("{agency}", "a").replace("{unit}", "u")


def test_every_route_has_an_access_rule(app: web.Application) -> None:
    routes = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    assert routes == set(ACCESS)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("route", [k for k, v in ACCESS.items() if v != "public"])
async def test_protected_routes_refuse_anonymous_and_unknown_tokens(
    routes_client: TestClient[web.Request, web.Application], route: tuple[str, str]
) -> None:
    client = routes_client
    method, path = route[0], _concrete(route[1])
    for headers in (
        {},
        {"Authorization": "Bearer ikn_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ):
        response = await client.request(method, path, headers=headers)
        assert response.status == 401
        assert response.content_type == PROBLEM
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await response.json())["type"].endswith("/unauthenticated")


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", [k for k, v in ACCESS.items() if v != "public"])
async def test_protected_routes_admit_exactly_their_roles(
    routes_client: TestClient[web.Request, web.Application],
    routes_database_url: str,
    route: tuple[str, str],
    role: str,
) -> None:
    client = routes_client
    method, path = route[0], _concrete(route[1])
    token = await _token(routes_database_url, role, f"{role}-{uuid.uuid4().hex[:8]}")
    response = await client.request(method, path, headers=token)
    allowed = ACCESS[route]
    if role in allowed:
        assert response.status == ADMITTED_STATUS.get(route, 200)
        if response.status != 200:
            kind = ADMITTED_KIND.get(route, "invalid-parameter")
            assert (await response.json())["type"].endswith("/" + kind)
    else:
        assert response.status == 403
        assert (await response.json())["type"].endswith("/forbidden")


async def test_health_is_public(client: TestClient[web.Request, web.Application]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_live_occupancy_of_a_floor(
    client: TestClient[web.Request, web.Application], database_url: str
) -> None:
    headers = await _token(database_url, "facility_manager")
    response = await client.get("/api/v1/occupancy/live?floor=b1-f1", headers=headers)
    assert response.status == 200
    body = await response.json()
    assert body["floor"] == "b1-f1"
    assert body["summary"] == {"occupied": 1, "free": 0, "unknown": 1}
    d1, d2 = body["desks"]
    assert (d1["desk"], d1["state"], d1["sensor"], d1["equipment"]) == (
        "d1",
        "occupied",
        "desk-d1",
        ["monitor"],
    )
    assert d1["since"].endswith("+08:00")  # in the building's zone, Asia/Makassar
    assert 29 <= d1["age_s"] < 120
    assert (d2["desk"], d2["state"]) == ("d2", "unknown")
    assert "since" not in d2


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("floor=b1%20f1", 400, "floor"),
        ("zone=" + "z" * 65, 400, "zone"),
        ("flor=b1-f1", 400, "flor"),
        ("floor=no-such-floor", 404, "floor"),
        ("building=b2", 404, "building"),
    ],
)
async def test_bad_parameters_get_a_problem_naming_the_field(
    client: TestClient[web.Request, web.Application],
    database_url: str,
    query: str,
    status: int,
    field: str,
) -> None:
    headers = await _token(database_url, "admin")
    response = await client.get(f"/api/v1/occupancy/live?{query}", headers=headers)
    assert response.status == status
    assert response.content_type == PROBLEM
    body = await response.json()
    assert body["status"] == status
    assert body["invalid_params"][0]["name"] == field


async def test_unknown_route_is_a_problem(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status == 404
    assert response.content_type == PROBLEM
