"""A zone's booking rules and access list in the console (``/console/zones?zone=``):
facility managers and administrators read them, administrators change them, as the
API's ``/api/v1/zones/{id}/booking-rules`` and ``/access`` (the same checks,
``ikn_core.zone_rules``, and the same use cases, ``ikn_service.booking.set_rules`` and
``restrict_zone``). Hours are ``HH:MM`` in the building's zone on the page."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from urllib.parse import urlencode

from aiohttp import web

from ikn_core.booking import UnknownPlace
from ikn_core.contract.identifiers import ID
from ikn_core.fields import InvalidField
from ikn_core.zone_rules import RULE_FIELDS, check_access, check_entry, check_overrides
from ikn_service import booking as service
from ikn_store.booking.places import RuleOverrides, zone_rules
from ikn_store.spaces import plan_zones
from web.labels import ZONE_DONE, ZONE_FIELDS, ZONE_REFUSALS
from web.pages import ADMINS, MANAGERS, person_of, render, require_role, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
HOURS = ("opens_minute", "closes_minute")  # shown and typed as HH:MM
MAX_ENTRIES = 100  # lines of an access list


def hhmm(minute: int | None) -> str:
    return "" if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"


def _shown(name: str, value: int | None) -> str:
    if value is None:
        return ""
    return hhmm(value) if name in HOURS else str(value)


def _minute(name: str, raw: str) -> int:
    hours, _, minutes = raw.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and len(hours) <= 2):
        raise InvalidField(name, "a time HH:MM", "time")
    minute = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or minute > 24 * 60:
        raise InvalidField(name, "a time HH:MM", "time")
    return minute


def read_rules(form: Mapping[str, str]) -> RuleOverrides:
    """The form's overrides (empty: the building's value), checked as the API checks
    them (``InvalidField``)."""
    body: dict[str, object] = {}
    for name in RULE_FIELDS:
        raw = form.get(name, "").strip()
        if not raw:
            continue
        if name in HOURS:
            body[name] = _minute(name, raw)
        elif raw.isascii() and raw.isdigit() and len(raw) <= 6:
            body[name] = int(raw)
        else:
            raise InvalidField(name, "a whole number", "number")
    return RuleOverrides(**check_overrides(body))


def read_access(text: str) -> list[tuple[str, str | None]]:
    """One entry a line, ``agency`` or ``agency / unit``; no line: open to everyone."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_ENTRIES:
        raise InvalidField("allowed", f"at most {MAX_ENTRIES} lines", "too-many")
    allowed = []
    for n, line in enumerate(lines):
        agency, slash, unit = line.partition("/")
        entry = (agency.strip(), unit.strip() if slash else None)
        allowed.append(check_entry(f"allowed[{n}]", *entry))
    check_access(allowed)
    return allowed


async def _page(
    request: web.Request,
    zone_id: str | None,
    refused: InvalidField | None = None,
    sent: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        zones = [
            (p.zone_id, f"{p.building_name} · {p.floor_name} · {p.zone_name}")
            for p in await plan_zones(conn)
            if p.zone_id is not None
        ]
        chosen: str = zone_id or (zones[0][0] if zones else "")
        rules = await zone_rules(conn, chosen) if chosen else None
        if rules is None:
            raise web.HTTPNotFound(reason="zone: no such zone")
        allowed = await service.zone_access(conn, chosen)
    overrides, in_force = asdict(rules.overrides), asdict(rules.in_force)
    shown = {name: _shown(name, overrides[name]) for name in RULE_FIELDS}
    return render(
        request,
        "zones.html",
        zones=zones,
        chosen=chosen,
        rules=rules,
        fields=RULE_FIELDS,
        labels=ZONE_FIELDS,
        shown={**shown, **(sent or {})},
        in_force={name: _shown(name, value) for name, value in in_force.items()},
        hours=HOURS,
        access="\n".join(f"{a} / {u}" if u else a for a, u in allowed),
        access_sent=(sent or {}).get("allowed"),
        restricted=bool(allowed),
        can_change=person_of(request).role in ADMINS,
        refused=refused,
        refused_field=ZONE_FIELDS.get(refused.name.split("[")[0], refused.name) if refused else "",
        refusal=ZONE_REFUSALS.get(refused.code, "") if refused else "",
        done=ZONE_DONE.get(request.query.get("done", "")),
        here=f"/console/zones?{urlencode({'zone': chosen})}",
        status=status,
    )


def _zone_id(raw: str) -> str:
    if not ID.fullmatch(raw):
        raise web.HTTPBadRequest(reason="zone: 1-64 letters, digits, '-' or '_'")
    return raw


@routes.get("/console/zones")
@signed_in
async def zones_page(request: web.Request) -> web.StreamResponse:
    """A zone's overrides, the rules in force there, and who may book in it."""
    require_role(request, MANAGERS)
    raw = request.query.get("zone")
    return await _page(request, _zone_id(raw) if raw else None)


async def _form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.post()).items() if isinstance(v, str)}


@routes.post("/console/zones/{zone}/rules")
@signed_in
async def save_rules(request: web.Request) -> web.StreamResponse:
    """Replace the zone's overrides; 303 back, or the page with the field (422)."""
    require_role(request, ADMINS)
    zone_id = _zone_id(request.match_info["zone"])
    form = await _form(request)
    try:
        overrides = read_rules(form)
    except InvalidField as exc:
        sent = {n: form.get(n, "") for n in RULE_FIELDS}
        return await _page(request, zone_id, exc, sent, status=422)
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            await service.set_rules(conn, "zone", zone_id, overrides)
    except UnknownPlace as exc:
        raise web.HTTPNotFound(reason="zone: no such zone") from exc
    raise web.HTTPSeeOther(f"/console/zones?{urlencode({'zone': zone_id, 'done': 'rules'})}")


@routes.post("/console/zones/{zone}/access")
@signed_in
async def save_access(request: web.Request) -> web.StreamResponse:
    """Replace who may book in the zone; 303 back, or the page with the line (422)."""
    require_role(request, ADMINS)
    zone_id = _zone_id(request.match_info["zone"])
    text = (await _form(request)).get("allowed", "")
    try:
        allowed = read_access(text)
    except InvalidField as exc:
        return await _page(request, zone_id, exc, {"allowed": text}, status=422)
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            await service.restrict_zone(conn, zone_id, allowed)
    except UnknownPlace as exc:
        raise web.HTTPNotFound(reason="zone: no such zone") from exc
    raise web.HTTPSeeOther(f"/console/zones?{urlencode({'zone': zone_id, 'done': 'access'})}")
