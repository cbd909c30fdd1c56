"""Requests (issue 18): the person's leave (cuti), official travel (dinas luar) and
correction requests with their state and who decided, and a form for a new one.

The form is checked by the API's own rules (``ikn_service.attendance.new_request``)
and filed by its use case (``file_request``); a field that cannot be used is shown
beside it, in the person's language (``web.labels.REQUEST_FIELD_ERRORS``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from ikn_core.attendance.requests import KINDS, RequestError
from ikn_core.fields import InvalidField
from ikn_service import attendance as service
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance.requests import Request
from ikn_store.people import Person, get_person
from web import i18n
from web.attendance import person_zone
from web.labels import (
    REQUEST_DONE,
    REQUEST_FIELD_ERRORS,
    REQUEST_FIELDS,
    REQUEST_INVALID,
    REQUEST_KINDS,
    REQUEST_STATUSES,
)
from web.pages import person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
FIELDS = tuple(REQUEST_FIELDS)
HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class Mine:
    """My requests, newest first, with the names of those who decided them."""

    requests: list[Request]
    deciders: dict[str, str]  # person id -> name
    zone: ZoneInfo


async def read_mine(conn: asyncpg.Connection, me: Person) -> Mine:
    found = await requests_store.visible_to(conn, me, False)
    deciders: dict[str, str] = {}
    for person_id in {r.decided_by for r in found if r.decided_by}:
        decider = await get_person(conn, person_id)
        deciders[person_id] = decider.name if decider else person_id
    return Mine(found, deciders, await person_zone(conn, me.id))


def _at(day: object, value: str, zone: ZoneInfo) -> str:
    """A form's ``HH:MM`` on its request's day, as the API's ISO 8601 time in ``zone``."""
    if not isinstance(day, str):
        return value  # the day's own error comes first
    try:
        first = date.fromisoformat(day)
    except ValueError:
        return value
    return datetime.combine(first, time(int(value[:2]), int(value[3:])), zone).isoformat()


def body_of(form: Mapping[str, str], zone: ZoneInfo) -> dict[str, Any]:
    """The API's request body from the form: empty fields left out, a correction's
    times (``HH:MM``) on its day in ``zone``; clock times only for a correction."""
    body: dict[str, Any] = {name: form[name] for name in FIELDS if form.get(name, "").strip()}
    for name in ("clock_in", "clock_out"):
        if body.get("kind") != "correction":
            body.pop(name, None)
        elif name in body:
            if not HH_MM.fullmatch(body[name].strip()):
                raise InvalidField(name, "HH:MM", "time-format")
            body[name] = _at(body.get("from"), body[name].strip(), zone)
    return body


@routes.get("/requests")
@signed_in
async def requests_page(request: web.Request) -> web.StreamResponse:
    asked = {name: request.query.get(name, "") for name in ("kind", "from")}
    form = {**asked, "kind": asked["kind"] if asked["kind"] in KINDS else "cuti"}
    done = REQUEST_DONE.get(request.query.get("done", ""))
    return await _page(request, form, done=done)


async def _page(
    request: web.Request,
    form: Mapping[str, str],
    *,
    done: str | None = None,
    error: InvalidField | None = None,
) -> web.Response:
    ports, me = request.app[PORTS], person_of(request)
    async with ports.pool().acquire() as conn:
        mine = await read_mine(conn, me)
    lang = i18n.language_of(request)
    errors = {error.name: REQUEST_FIELD_ERRORS.get(error.code, REQUEST_INVALID)} if error else {}
    response = render(
        request,
        "requests.html",
        mine=mine,
        form=form,
        errors=errors,
        done=done,
        kinds=REQUEST_KINDS,
        labels=REQUEST_FIELDS,
        statuses=REQUEST_STATUSES,
        day_text=lambda day: i18n.long_date(day, lang),
        clock=lambda moment: i18n.clock_time(moment, mine.zone, lang),
        zone_name=ports.now().astimezone(mine.zone).tzname(),
    )
    if error is not None:
        response.set_status(422)
    return response


@routes.post("/requests")
@signed_in
async def file_request(request: web.Request) -> web.StreamResponse:
    """File a new request as the API's ``POST /api/v1/attendance/requests`` does."""
    ports, me = request.app[PORTS], person_of(request)
    posted = await request.post()
    form = {name: str(posted.get(name, "")) for name in FIELDS}
    try:
        async with ports.pool().acquire() as conn:
            zone = await person_zone(conn, me.id)
            new = service.new_request(me.id, body_of(form, zone), ports.now(), zone)
            await service.file_request(conn, new, me.id)
    except InvalidField as exc:
        return await _page(request, form, error=exc)
    except RequestError as exc:
        return await _page(request, form, error=InvalidField("kind", str(exc), exc.kind))
    raise web.HTTPSeeOther("/requests?done=filed")
