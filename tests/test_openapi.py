"""The OpenAPI document is true to the app: every route, its roles, valid 3.1, real answers fit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from api.app import make_app
from api.openapi import load_document
from ikn_core.domain import Role
from ikn_store.people import Person, link_token, upsert_people
from ikn_store.tokens import create_token
from tests.helpers import api_settings, seed

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _app(database_url: str = "postgresql://nobody@127.0.0.1:1/none") -> web.Application:
    return make_app(api_settings({"IKN_DATABASE_URL": database_url}))


def _documented(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def _routed(app: web.Application) -> dict[tuple[str, str], object]:
    return {
        (r.method, r.resource.canonical): r.handler
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }


def test_the_document_is_valid_openapi_3_1() -> None:
    document = load_document()
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any error


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    routed, documented = set(_routed(_app())), set(_documented(load_document()))
    assert sorted(routed - documented) == [], "routes missing from api/openapi.yaml"
    assert sorted(documented - routed) == [], "documented routes that do not exist"


def test_documented_roles_and_security_match_each_handler() -> None:
    documented = _documented(load_document())
    for key, handler in _routed(_app()).items():
        access = getattr(handler, "ikn_access", None)
        operation = documented[key]
        if access == "public":
            assert operation["x-ikn-roles"] == "public", key
            assert operation.get("security") == [], key
        else:
            assert set(operation["x-ikn-roles"]) == {str(r) for r in access or ()}, key
            assert "security" not in operation, key  # inherits the bearer requirement
            assert {"401", "403"} & set(operation["responses"]), key


def test_every_operation_has_a_unique_id_and_path_parameters() -> None:
    document = load_document()
    documented = _documented(document)
    ids = [op["operationId"] for op in documented.values()]
    assert len(ids) == len(set(ids))
    params = document["components"]["parameters"]
    for (_, path), operation in documented.items():
        placeholders = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        declared = {
            (params[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p)["name"]
            for p in operation.get("parameters", [])
            if (params[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p)["in"] == "path"
        }
        assert declared == placeholders, path


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    await seed(database_url)
    async with TestClient(TestServer(_app(database_url))) as c:
        yield c


def _schema(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    """The response schema, able to resolve ``#/components/...`` references."""
    response = document["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    (media,) = response["content"].values()
    return {**media["schema"], "components": document["components"]}


async def test_served_document_is_the_file(
    client: TestClient[web.Request, web.Application],
) -> None:
    response = await client.get("/api/v1/openapi.json")  # public: no token
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == load_document()


async def test_real_answers_fit_the_documented_schemas(
    client: TestClient[web.Request, web.Application], database_url: str
) -> None:
    document = load_document()
    conn = await asyncpg.connect(database_url)
    try:
        token = await create_token(conn, "fm", "facility_manager")
    finally:
        await conn.close()
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        ("/api/v1/occupancy/live", "/api/v1/occupancy/live?building=b1", auth, "200"),
        ("/api/v1/occupancy/live", "/api/v1/occupancy/live", {}, "401"),
        ("/api/v1/occupancy/live", "/api/v1/occupancy/live?floor=nope", auth, "404"),
        ("/api/v1/devices", "/api/v1/devices", auth, "200"),
        ("/api/v1/dead-letters", "/api/v1/dead-letters?limit=0", auth, "400"),
        ("/healthz", "/healthz", {}, "200"),
    ]
    for path, url, headers, status in cases:
        response = await client.get(url, headers=headers)
        assert str(response.status) == status, url
        OAS31Validator(_schema(document, path, "get", status)).validate(
            await response.json(content_type=None)
        )


async def test_booking_answers_fit_the_documented_schemas(
    client: TestClient[web.Request, web.Application], database_url: str
) -> None:
    document = load_document()
    conn = await asyncpg.connect(database_url)
    try:
        await upsert_people(conn, [Person("ani", "Ani", "Kemenkeu", "Anggaran", Role.EMPLOYEE)])
        token = await create_token(conn, "ani", "employee")
        await link_token(conn, token, "ani")
    finally:
        await conn.close()
    auth = {"Authorization": f"Bearer {token}"}
    day = (datetime.now(ZoneInfo("Asia/Makassar")) + timedelta(days=1)).date().isoformat()
    window = {"start": f"{day}T09:00:00+08:00", "end": f"{day}T10:00:00+08:00"}
    booked = await client.post("/api/v1/bookings", json={"desk": "d1", **window}, headers=auth)
    assert booked.status == 201
    OAS31Validator(_schema(document, "/api/v1/bookings", "post", "201")).validate(
        await booked.json()
    )
    taken = await client.post("/api/v1/bookings", json={"desk": "d1", **window}, headers=auth)
    assert taken.status == 409
    OAS31Validator(_schema(document, "/api/v1/bookings", "post", "409")).validate(
        await taken.json(content_type=None)
    )
    for path, url in (
        ("/api/v1/bookings", "/api/v1/bookings"),
        (
            "/api/v1/availability",
            f"/api/v1/availability?start={window['start']}&end={window['end']}",
        ),
    ):
        response = await client.get(url.replace("+", "%2B"), headers=auth)
        assert response.status == 200, url
        OAS31Validator(_schema(document, path, "get", "200")).validate(await response.json())
