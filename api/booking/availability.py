"""``GET /api/v1/availability``: which desks are free for a time window.

Filters: ``building``, ``floor``, ``zone`` (all that are given apply) and
``equipment`` (comma-separated; a desk must have all). Each desk comes with its
floor-plan coordinates and a state: ``booked`` (an active booking overlaps the
window), ``occupied`` (the window includes now and the sensor sees someone: a
walk-up), ``disabled`` (an admin took it out of use), ``assigned`` (assigned
permanently to one person: only they, their delegate or a facility manager may book
it), ``offline`` (its sensor is offline; still bookable) or ``free``. ``free`` says
whether the caller may book it for themself (the assignee sees their desk as free).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.booking.http import ALL_ROLES, invalid, parse_time, problem, respond
from api.state import POOL
from ikn_core.contract.identifiers import ID
from ikn_service.booking import DESK_STATES, desk_state, free_for
from ikn_store.booking.availability import DeskAvailability, availability
from ikn_store.spaces import find_place

_PLACES = ("building", "floor", "zone")
_PARAMS = (*_PLACES, "start", "end", "equipment")
_TAG = re.compile(r"[a-z0-9_-]{1,32}")
MAX_WINDOW = timedelta(days=31)
STATES = DESK_STATES

routes = web.RouteTableDef()


def _desk_json(desk: DeskAvailability, covers_now: bool, me: str | None) -> dict[str, Any]:
    state = desk_state(desk, covers_now)
    return {
        "desk": desk.desk_id,
        "name": desk.name,
        "building": desk.building_id,
        "floor": desk.floor_id,
        "zone": desk.zone_id,
        "x": desk.x,
        "y": desk.y,
        "equipment": list(desk.equipment),
        "state": state,
        "free": free_for(desk, state, me),
    }


def _equipment(request: web.Request) -> tuple[str, ...]:
    raw = request.query.get("equipment", "")
    tags = tuple(t.strip() for t in raw.split(",") if t.strip())
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise invalid(request, "equipment", f"{tag!r}: tags are lower-case letters, digits")
    return tags


@routes.get("/api/v1/availability")
@requires(*ALL_ROLES)
async def search(request: web.Request) -> web.Response:
    """Desks under the given places, each with its state for [start, end)."""
    unknown = sorted(set(request.query) - set(_PARAMS))
    if unknown:
        raise invalid(request, unknown[0], f"unknown parameter; use {', '.join(_PARAMS)}")
    places = {}
    for name in _PLACES:
        value = request.query.get(name)
        if value is not None:
            if not ID.fullmatch(value):
                raise invalid(request, name, "must be 1-64 letters, digits, '-' or '_'")
            places[name] = value
    start = parse_time(request, "start", request.query.get("start"))
    end = parse_time(request, "end", request.query.get("end"))
    if end <= start:
        raise invalid(request, "end", "must be after start")
    if end - start > MAX_WINDOW:
        raise invalid(request, "end", "a window spans at most 31 days")
    equipment = _equipment(request)
    async with request.app[POOL].acquire() as conn:
        for level, place_id in places.items():
            if await find_place(conn, level, place_id) is None:
                raise problem(
                    request,
                    "unknown-place",
                    f"{level} {place_id!r}",
                    404,
                    invalid_params=[{"name": level, "reason": "does not exist"}],
                )
        desks = await availability(conn, start, end, equipment=equipment, **places)
    now = datetime.now(UTC)
    covers_now = start <= now < end
    person = request[PRINCIPAL].person
    me = person.id if person is not None else None
    rendered = [_desk_json(d, covers_now, me) for d in desks]
    counts = Counter(d["state"] for d in rendered)
    tz = ZoneInfo(desks[0].tz) if desks else UTC
    body = {
        **places,
        "start": start.astimezone(tz).isoformat(),
        "end": end.astimezone(tz).isoformat(),
        "equipment": list(equipment),
        "summary": {s: counts[s] for s in STATES},
        "desks": rendered,
    }
    return respond(body)
