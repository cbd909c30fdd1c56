"""Checking in at a building's door (issue 19): the kiosk's rotating QR code is the
address ``/door?b=<building>&w=<window>&s=<signature>`` (``ikn_core.door_code``). A
GET says whether the code is good and offers one button; the POST records the
person's presence in the building (``ikn_service.attendance.door_check_in``: a
``door_qr`` signal, an office signal for the day), checks in the person's booking of
the day there as a badge tap at the door does, and answers 303 to ``/door/done?b=``,
which says so. A code older than its window and the next, or not signed by us,
is refused with a page saying to scan again; a second scan of the same code records
nothing more. A visitor signs in first and comes back here (``next``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from ikn_core.domain import IKN_ZONE
from ikn_core.door_code import DoorCodeRefused, check
from ikn_service import attendance as service
from ikn_store.attendance.signals import first_signal
from ikn_store.booking.bookings import checked_in_at
from ikn_store.live_floor import building_floors
from web import i18n, sessions
from web.pages import person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
# Why a code was refused, and the answer's status.
REFUSALS = {
    "door-code-unreadable": (
        i18n.gettext_noop(
            "This address holds no door code. Scan the code on the kiosk at the door."
        ),
        400,
    ),
    "door-code-forged": (
        i18n.gettext_noop(
            "This code was not made by IKN Workspace: nothing was recorded. Scan the code on "
            "the kiosk at the door."
        ),
        403,
    ),
    "door-code-expired": (
        i18n.gettext_noop(
            "This code is too old: the kiosk shows a new one every 30 seconds. Scan the code "
            "on the kiosk again."
        ),
        410,
    ),
}
NOT_SET_UP = i18n.gettext_noop("Door codes are not set up on this platform.")


def _code(query: Mapping[str, object]) -> tuple[str, str, str]:
    return str(query.get("b", "")), str(query.get("w", "")), str(query.get("s", ""))


def _key(request: web.Request) -> bytes:
    key = request.app[sessions.SETTINGS].display_key
    if key is None:
        raise web.HTTPServiceUnavailable(reason=NOT_SET_UP)
    return key


async def _building_name(request: web.Request, building_id: str) -> str:
    async with request.app[PORTS].pool().acquire() as conn:
        found = await building_floors(conn, building_id)
    return found.name if found is not None else building_id


def _refused(request: web.Request, exc: DoorCodeRefused) -> web.Response:
    message, status = REFUSALS[exc.kind]
    return render(request, "door.html", refused=message, code=None, status=status)


@routes.get("/door")
@signed_in
async def door(request: web.Request) -> web.StreamResponse:
    """What the scanned code allows: one button to check in, or why not."""
    b, w, s = _code(request.query)
    try:
        check(_key(request), b, w, s, request.app[PORTS].now())
    except DoorCodeRefused as exc:
        return _refused(request, exc)
    name = await _building_name(request, b)
    return render(request, "door.html", refused=None, code={"b": b, "w": w, "s": s}, name=name)


@routes.post("/door")
@signed_in
async def door_check_in(request: web.Request) -> web.StreamResponse:
    ports = request.app[PORTS]
    b, w, s = _code(await request.post())
    now = ports.now()
    scan = service.DoorScan(person_of(request).id, b, w, s, now)
    try:
        async with ports.pool().acquire() as conn:
            done = await service.door_check_in(
                conn,
                scan,
                _key(request),
                ports.policies().in_force(now.astimezone(IKN_ZONE).date()),
            )
    except DoorCodeRefused as exc:
        return _refused(request, exc)
    raise web.HTTPSeeOther(f"/door/done?b={done.building_id}")


@routes.get("/door/done")
@signed_in
async def done(request: web.Request) -> web.StreamResponse:
    """The person's first door check-in today at the building (``b``), if any, and the
    desks of their bookings there today that are checked in."""
    ports, person = request.app[PORTS], person_of(request)
    building_id = request.query.get("b", "")
    async with ports.pool().acquire() as conn:
        found = await building_floors(conn, building_id)
        if found is None:
            raise web.HTTPNotFound(reason="b: no such building")
        zone = ZoneInfo(found.tz)
        today = ports.now().astimezone(zone).date()
        since = datetime.combine(today, time(), zone)
        at = await first_signal(conn, person.id, "door_qr", building_id, since)
        tomorrow = datetime.combine(today + timedelta(days=1), time(), zone)
        desks = await checked_in_at(conn, person.id, building_id, since, tomorrow)
    lang = i18n.language_of(request)
    return render(
        request,
        "door_done.html",
        name=found.name,
        at=i18n.clock_time(at, zone, lang) if at is not None else None,
        day=today.isoformat(),
        desks=desks,
    )
