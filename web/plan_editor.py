"""The console's floor-plan editor (facility managers and administrators; anyone else
403): ``/console/plan?floor=`` shows the floor's plan drawing and its desks, each
draggable (``static/plan_editor.js``: pointer events, or the arrow keys and Enter) and
with a form of its own (x, y, equipment, out of use, assigned to), which is what is
saved: ``POST /console/plan/{floor}/desks/{desk}`` through
``ikn_service.spaces.change_desk``. ``POST /console/plan/{floor}/image`` uploads the
floor's drawing (an SVG that can only draw, or a PNG: ``ikn_core.floor_plans``), which
``/floors/{floor}/plan`` serves to the editor and to Find a desk. The editor shows no
booking, occupancy or presence: only where desks are and what they are."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from ikn_core.contract.identifiers import ID
from ikn_core.floor_plans import MAX_BYTES, PlanRefused, check_desk
from ikn_service.spaces import change_desk, upload_plan
from ikn_store.floor_plans import floor_desks, plan_image, plan_of
from ikn_store.spaces import plan_zones
from web.admin import uploaded
from web.desks import BOX_H, BOX_W, CELL, PAD, backdrop_of, floor_choices, layout, plan_width
from web.labels import PLAN_DONE, PLAN_REFUSALS
from web.pages import MANAGERS, render, require_role, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
DESK_FIELDS = ("x", "y", "equipment", "disabled", "assigned_to")


def _floor_id(raw: str) -> str:
    if not ID.fullmatch(raw):
        raise web.HTTPBadRequest(reason="floor: 1-64 letters, digits, '-' or '_'")
    return raw


async def _editor(
    request: web.Request,
    floor_id: str | None,
    refused: PlanRefused | None = None,
    sent: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    """The editor of ``floor_id`` (None: the first floor); ``refused``: why the last
    form was not saved (its field marked, ``sent``: the values to show again)."""
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        places = await plan_zones(conn)
        floors = floor_choices(places)
        chosen = floor_id or (floors[0][0] if floors else "")
        if chosen not in dict(floors):
            raise web.HTTPNotFound(reason="floor: no such floor")
        desks = await floor_desks(conn, chosen)
        plan = await plan_of(conn, chosen)
    backdrop = backdrop_of(plan)
    boxes, box = layout(desks, backdrop)
    origin = (0.0, 0.0)
    if desks and backdrop is None:  # the grid starts at the least coordinates (layout)
        origin = (min(d.x for d in desks), min(d.y for d in desks))
    zone_names = {p.zone_id: p.zone_name or p.zone_id for p in places if p.zone_id}
    return render(
        request,
        "plan_editor.html",
        floors=floors,
        chosen=chosen,
        desks=list(zip(desks, boxes, strict=True)),
        box=box,
        width=plan_width(box),
        sizes=(BOX_W, BOX_H, PAD),
        grid={"cell": CELL, "pad": PAD, "x0": origin[0], "y0": origin[1]},
        backdrop=backdrop,
        plan=plan,
        zone_names=zone_names,
        max_kib=MAX_BYTES // 1024,
        refused=refused,
        refusal=PLAN_REFUSALS.get(refused.code, "") if refused else "",
        sent=sent or {},
        done=PLAN_DONE.get(request.query.get("done", "")),
        done_desk=request.query.get("desk", ""),
        here=f"/console/plan?{urlencode({'floor': chosen})}",
        status=status,
    )


@routes.get("/console/plan")
@signed_in
async def editor(request: web.Request) -> web.StreamResponse:
    require_role(request, MANAGERS)
    raw = request.query.get("floor")
    return await _editor(request, _floor_id(raw) if raw else None)


@routes.post("/console/plan/{floor}/image")
@signed_in
async def upload(request: web.Request) -> web.StreamResponse:
    """Store the file as the floor's plan; 303 back, or the editor with why not (422)."""
    require_role(request, MANAGERS)
    floor_id = _floor_id(request.match_info["floor"])
    _, data = uploaded(await request.post())
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            await upload_plan(conn, floor_id, data)
    except PlanRefused as exc:
        if exc.field == "floor":
            raise web.HTTPNotFound(reason="floor: no such floor") from exc
        return await _editor(request, floor_id, exc, status=422)
    raise web.HTTPSeeOther(f"/console/plan?{urlencode({'floor': floor_id, 'done': 'plan'})}")


@routes.post("/console/plan/{floor}/desks/{desk}")
@signed_in
async def save_desk(request: web.Request) -> web.StreamResponse:
    """Save a desk's form; 303 back to the editor, or the editor with the field that
    cannot be used (422; 404 for a desk not on the floor)."""
    require_role(request, MANAGERS)
    floor_id = _floor_id(request.match_info["floor"])
    desk_id = request.match_info["desk"]
    form = await request.post()
    sent = {name: str(form.get(name, "")) for name in DESK_FIELDS}
    try:
        change = check_desk(
            desk_id,
            sent["x"],
            sent["y"],
            equipment=sent["equipment"],
            disabled=sent["disabled"] == "on",
            assigned_to=sent["assigned_to"],
        )
        async with request.app[PORTS].pool().acquire() as conn:
            await change_desk(conn, floor_id, change)
    except PlanRefused as exc:
        if exc.field == "desk":
            raise web.HTTPNotFound(reason="desk: no such desk on this floor") from exc
        return await _editor(request, floor_id, exc, {"desk": desk_id, **sent}, status=422)
    back = urlencode({"floor": floor_id, "done": "desk", "desk": desk_id})
    raise web.HTTPSeeOther(f"/console/plan?{back}#desk-{desk_id}")


@routes.get("/floors/{floor}/plan")
@signed_in
async def plan_file(request: web.Request) -> web.StreamResponse:
    """The floor's plan drawing, for anyone signed in (Find a desk draws it)."""
    floor_id = _floor_id(request.match_info["floor"])
    async with request.app[PORTS].pool().acquire() as conn:
        found = await plan_image(conn, floor_id)
    if found is None:
        raise web.HTTPNotFound(reason="floor: no plan")
    content_type, data, sha256 = found
    etag = f'"{sha256[:32]}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, content_type=content_type, headers=headers)
