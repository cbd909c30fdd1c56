"""The display tokens in the console (issue 19, ``/console/displays``): facility
managers and administrators list them (name, building, created, last used: never the
token), make one, shown this once (201, ``no-store``), and revoke one. The same
functions as ``ikn display create|list|revoke`` (``ikn_service.displays``,
``ikn_store.displays``); a refused name or building is the form again, naming it.
A revoked token is deleted: it is no longer listed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from ikn_core.access import TokenError
from ikn_service.displays import NAME_MAX, create_display
from ikn_store.displays import list_displays, revoke_display_token
from ikn_store.live_floor import building_floors
from ikn_store.spaces import plan_zones
from web import i18n
from web.pages import manager_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
# Why a display token was not made or revoked: (field, message, status).
REFUSALS = {
    "bad-name": (
        "name",
        i18n.gettext_noop(
            "A display's name has 1 to %(max)s letters, digits or signs, without control "
            "characters."
        ),
        422,
    ),
    "name-taken": (
        "name",
        i18n.gettext_noop("A display of this name exists: choose another name."),
        409,
    ),
    "unknown-building": ("building", i18n.gettext_noop("There is no such building."), 422),
    "unknown-token": ("name", i18n.gettext_noop("There is no display of this name."), 404),
}
FIELDS = {"name": i18n.gettext_noop("Name"), "building": i18n.gettext_noop("Building")}


def _when(moment: datetime | None, zone: ZoneInfo, lang: str) -> str | None:
    if moment is None:
        return None
    day = moment.astimezone(zone).date().isoformat()
    return f"{day} {i18n.clock_time(moment, zone, lang)}"


async def _page(
    request: web.Request,
    sent: Mapping[str, str] | None = None,
    refused: TokenError | None = None,
    revoked: str | None = None,
) -> web.Response:
    lang = i18n.language_of(request)
    async with request.app[PORTS].pool().acquire() as conn:
        places = await plan_zones(conn)
        found = await list_displays(conn)
    buildings = {p.building_id: (p.building_name, ZoneInfo(p.tz)) for p in places}
    rows = []
    for d in found:
        name, zone = buildings.get(d.building_id, (d.building_id, ZoneInfo("UTC")))
        rows.append(
            {
                "name": d.name,
                "building": name,
                "created": _when(d.created_at, zone, lang),
                "used": _when(d.last_used_at, zone, lang),
            }
        )
    field, message, status = REFUSALS[refused.kind] if refused else (None, None, 200)
    return render(
        request,
        "console_displays.html",
        displays=rows,
        buildings=[(b, n) for b, (n, _) in buildings.items()],
        sent=sent or {},
        refused={"field": field, "message": message, "detail": refused.detail} if refused else None,
        field_words=FIELDS,
        name_max=NAME_MAX,
        revoked=revoked,
        status=status,
    )


@routes.get("/console/displays")
@signed_in
async def displays_page(request: web.Request) -> web.StreamResponse:
    """The display tokens, the form that makes one, and a revoke button each."""
    manager_of(request)
    return await _page(request, revoked=request.query.get("revoked"))


@routes.post("/console/displays")
@signed_in
async def create(request: web.Request) -> web.StreamResponse:
    """A new display token, shown this once (201, ``no-store``); or the page again
    naming the field (422, 409)."""
    manager_of(request)
    form = await request.post()
    sent = {k: str(form.get(k, "")).strip() for k in ("name", "building")}
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            token = await create_display(conn, sent["name"], sent["building"])
            building = await building_floors(conn, sent["building"])
    except TokenError as exc:
        return await _page(request, sent, exc)
    response = render(
        request,
        "console_display_created.html",
        name=sent["name"],
        building=building.name if building is not None else sent["building"],
        token=token,
        status=201,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.post("/console/displays/revoke")
@signed_in
async def revoke(request: web.Request) -> web.StreamResponse:
    """Revoke the display token named ``name``: its display is refused from now on."""
    manager_of(request)
    name = str((await request.post()).get("name", ""))
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            await revoke_display_token(conn, name)
    except TokenError as exc:
        return await _page(request, refused=exc)
    raise web.HTTPSeeOther("/console/displays?" + urlencode({"revoked": name}))
