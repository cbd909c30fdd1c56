"""A building's and a zone's booking rules and who may book there, for admins
(facility managers read):

- ``GET|PUT /api/v1/sites/{id}/booking-rules``: a site's values over the platform
  defaults, for all its buildings (``null``: the default);
- ``GET|PUT /api/v1/buildings/{id}/booking-rules``: the building's own values over its
  site's (``null``: the site's value, or the default), and the rules in force there;
- ``GET|PUT /api/v1/zones/{id}/booking-rules``: the zone's overrides of its building's
  rules (``null``: the building's value; hours and durations as pairs), and the rules
  in force there;
- ``GET|PUT /api/v1/zones/{id}/access``: the agencies (or agency units) that may book
  in the zone; an empty list opens it to everyone.

A PUT replaces the whole setting. Bookings made earlier stay; the API's cached desk
places see the change at once (their fingerprint changes, see
``ikn_store.booking.places``).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Literal

from aiohttp import web

from api.auth import requires
from api.booking.http import body_of, invalid, problem, respond
from api.problems import Problem
from api.state import POOL
from ikn_core.booking import UnknownPlace
from ikn_core.contract.identifiers import ID
from ikn_core.domain import Role
from ikn_core.fields import InvalidField
from ikn_core.zone_rules import check_access, check_entry, check_overrides
from ikn_service import booking as service
from ikn_store.booking.places import (
    LevelRules,
    RuleOverrides,
    ZoneRules,
    building_rules,
    site_rules,
    zone_rules,
)

routes = web.RouteTableDef()

READERS = (Role.FACILITY_MANAGER, Role.ADMIN)
RULE_FIELDS = tuple(f.name for f in fields(RuleOverrides))


def _place_id(request: web.Request) -> str:
    """The zone's or building's id from the path, checked."""
    place_id = request.match_info["id"]
    if not ID.fullmatch(place_id):
        raise invalid(request, "id", "must be 1-64 letters, digits, '-' or '_'")
    return place_id


def _unknown(request: web.Request, place_id: str, kind: str = "zone") -> Problem:
    return problem(
        request,
        "unknown-place",
        f"{kind} {place_id!r}",
        404,
        invalid_params=[{"name": "id", "reason": f"no such {kind}"}],
    )


def _level_json(kind: str, rules: LevelRules) -> dict[str, Any]:
    body: dict[str, Any] = {kind: rules.id}
    if kind == "building":
        body["site"] = rules.site_id
    return {**body, "overrides": asdict(rules.overrides), "in_force": asdict(rules.in_force)}


async def _answer_level(request: web.Request, kind: str, place_id: str) -> web.Response:
    read = building_rules if kind == "building" else site_rules
    async with request.app[POOL].acquire() as conn:
        rules = await read(conn, place_id)
    if rules is None:
        raise _unknown(request, place_id, kind)
    return respond(_level_json(kind, rules))


async def _put_level(request: web.Request, kind: Literal["site", "building"]) -> web.Response:
    body = await body_of(request, RULE_FIELDS)
    place_id = _place_id(request)
    values = _overrides(request, body)
    await _set_rules(request, kind, place_id, values)
    return await _answer_level(request, kind, place_id)


async def _set_rules(
    request: web.Request, level: service.Level, place_id: str, values: RuleOverrides
) -> None:
    try:
        async with request.app[POOL].acquire() as conn:
            await service.set_rules(conn, level, place_id, values)
    except UnknownPlace as exc:
        raise _unknown(request, exc.place_id, exc.level) from exc


@routes.get("/api/v1/sites/{id}/booking-rules")
@requires(*READERS)
async def get_site_rules(request: web.Request) -> web.Response:
    """The site's values for all its buildings, and the rules in force there."""
    return await _answer_level(request, "site", _place_id(request))


@routes.put("/api/v1/sites/{id}/booking-rules")
@requires(Role.ADMIN)
async def put_site_rules(request: web.Request) -> web.Response:
    """Replace the site's values (a field left out or null: the platform default)."""
    return await _put_level(request, "site")


@routes.get("/api/v1/buildings/{id}/booking-rules")
@requires(*READERS)
async def get_building_rules(request: web.Request) -> web.Response:
    """The building's own values and the rules in force there (zones may override)."""
    return await _answer_level(request, "building", _place_id(request))


@routes.put("/api/v1/buildings/{id}/booking-rules")
@requires(Role.ADMIN)
async def put_building_rules(request: web.Request) -> web.Response:
    """Replace the building's values (a field left out or null: its site's value, or
    the platform default)."""
    return await _put_level(request, "building")


def _rules_json(rules: ZoneRules) -> dict[str, Any]:
    return {
        "zone": rules.zone_id,
        "building": rules.building_id,
        "overrides": asdict(rules.overrides),
        "in_force": asdict(rules.in_force),
    }


async def _answer_rules(request: web.Request, zone_id: str) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rules = await zone_rules(conn, zone_id)
    if rules is None:
        raise _unknown(request, zone_id)
    return respond(_rules_json(rules))


@routes.get("/api/v1/zones/{id}/booking-rules")
@requires(*READERS)
async def get_rules(request: web.Request) -> web.Response:
    """The zone's overrides and the rules in force there."""
    return await _answer_rules(request, _place_id(request))


def _overrides(request: web.Request, body: dict[str, Any]) -> RuleOverrides:
    try:
        return RuleOverrides(**check_overrides(body))
    except InvalidField as exc:
        raise invalid(request, exc.name, exc.reason) from exc


@routes.put("/api/v1/zones/{id}/booking-rules")
@requires(Role.ADMIN)
async def put_rules(request: web.Request) -> web.Response:
    """Replace the zone's overrides (a field left out or null: the building's value)."""
    body = await body_of(request, RULE_FIELDS)
    zone_id = _place_id(request)
    overrides = _overrides(request, body)
    await _set_rules(request, "zone", zone_id, overrides)
    return await _answer_rules(request, zone_id)


def _access_json(zone_id: str, allowed: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {
        "zone": zone_id,
        "restricted": bool(allowed),
        "allowed": [{"agency": agency, "unit": unit} for agency, unit in allowed],
    }


@routes.get("/api/v1/zones/{id}/access")
@requires(*READERS)
async def get_access(request: web.Request) -> web.Response:
    """Who may book in the zone (empty: everyone)."""
    zone_id = _place_id(request)
    try:
        async with request.app[POOL].acquire() as conn:
            allowed = await service.zone_access(conn, zone_id)
    except UnknownPlace as exc:
        raise _unknown(request, zone_id) from exc
    return respond(_access_json(zone_id, allowed))


def _entry(request: web.Request, n: int, entry: object) -> tuple[str, str | None]:
    field = f"allowed[{n}]"
    if not isinstance(entry, dict) or set(entry) - {"agency", "unit"}:
        raise invalid(request, field, 'an object {"agency": ..., "unit": ... or null}')
    try:
        return check_entry(field, entry.get("agency"), entry.get("unit"))
    except InvalidField as exc:
        raise invalid(request, exc.name, exc.reason) from exc


def _allowed(request: web.Request, body: dict[str, Any]) -> list[tuple[str, str | None]]:
    entries = body.get("allowed")
    if not isinstance(entries, list):
        raise invalid(request, "allowed", "required: a list (empty: open to everyone)")
    allowed = [_entry(request, n, entry) for n, entry in enumerate(entries)]
    try:
        check_access(allowed)
    except InvalidField as exc:
        raise invalid(request, exc.name, exc.reason) from exc
    return allowed


@routes.put("/api/v1/zones/{id}/access")
@requires(Role.ADMIN)
async def put_access(request: web.Request) -> web.Response:
    """Replace who may book in the zone; ``{"allowed": []}`` opens it to everyone."""
    body = await body_of(request, ("allowed",))
    zone_id = _place_id(request)
    allowed = _allowed(request, body)
    try:
        async with request.app[POOL].acquire() as conn:
            stored = await service.restrict_zone(conn, zone_id, allowed)
    except UnknownPlace as exc:
        raise _unknown(request, zone_id) from exc
    return respond(_access_json(zone_id, stored))
