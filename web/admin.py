"""The administrators' console pages (administrators only; anyone else 403, a visitor
the sign-in page): importing spaces or people from a file (``/console/import``,
through ``ikn_service.spaces.import_file`` as ``ikn import``: the whole file checked,
then written in one transaction or not at all, every problem listed with its line),
and registering a device with its own broker account (``/console/devices/new``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from ikn_core.domain import DeviceKind
from ikn_core.fields import InvalidField
from ikn_core.fleet import DeviceError, new_device
from ikn_core.io import ImportProblem, ImportRejectedError
from ikn_service.spaces import FORMATS, import_file
from ikn_store.fleet.devices import register_device
from ikn_store.io import Written
from ikn_store.spaces import plan_zones
from web.labels import DEVICE_FIELDS, DEVICE_KINDS, DEVICE_REFUSALS
from web.pages import ADMINS, render, require_role, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
WHAT = ("spaces", "people")
PROBLEMS_SHOWN = 200  # a file's first problems listed (all counted): a page, not megabytes


def admin_only(request: web.Request) -> None:
    require_role(request, ADMINS)


def uploaded(form: Any, name: str = "file") -> tuple[str, bytes]:
    """The file the form sent as ``name``: its name and bytes (400 naming the field when
    none was sent)."""
    field = form.get(name)
    if not isinstance(field, web.FileField):
        raise web.HTTPBadRequest(reason=f"{name}: choose a file to send")
    return field.filename or "", field.file.read()


def _import_page(
    request: web.Request,
    *,
    what: str = "spaces",
    written: list[Written] | None = None,
    problems: tuple[ImportProblem, ...] = (),
    refused: str = "",
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "import.html",
        what=what,
        whats=WHAT,
        written=written,
        problems=problems,
        problems_shown=PROBLEMS_SHOWN,
        refused=refused,
        status=status,
    )


@routes.get("/console/import")
@signed_in
async def import_form(request: web.Request) -> web.StreamResponse:
    """The form: what to import (spaces or people) and the file (CSV or JSON)."""
    admin_only(request)
    return _import_page(request)


def _format(chosen: str, filename: str) -> str:
    """As ``ikn import``: the form's choice, else the file's extension, else JSON."""
    if chosen in FORMATS:
        return chosen
    if chosen:
        raise web.HTTPBadRequest(reason="format: csv or json")
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else "json"


@routes.post("/console/import")
@signed_in
async def import_upload(request: web.Request) -> web.StreamResponse:
    """Import the file: the counts written, or every problem and nothing written (422)."""
    admin_only(request)
    form = await request.post()
    what = str(form.get("what", ""))
    if what not in WHAT:
        raise web.HTTPBadRequest(reason="what: spaces or people")
    filename, data = uploaded(form)
    fmt = _format(str(form.get("format", "")), filename)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _import_page(request, what=what, refused="not-text", status=422)
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            written = await import_file(conn, "spaces" if what == "spaces" else "people", text, fmt)
    except ImportRejectedError as exc:
        return _import_page(request, what=what, problems=exc.problems, status=422)
    return _import_page(request, what=what, written=written)


# Registering a device (``/console/devices/new``): the same checks as the API's
# ``POST /api/v1/devices`` (``ikn_core.fleet.new_device``) and the same registry call,
# which makes the device's own broker account; its password is shown this once.
DEVICE_FORM = ("id", "kind", "building", "zone", "desk", "expected_interval_s")
DEVICE_REFUSAL_STATUS = {"exists": 409, "desk-taken": 409}


async def _device_form(
    request: web.Request,
    sent: Mapping[str, str] | None = None,
    refused: tuple[str, str, str] | None = None,  # field, code, reason
    status: int = 200,
) -> web.Response:
    async with request.app[PORTS].pool().acquire() as conn:
        places = await plan_zones(conn)
    buildings = list(dict.fromkeys((p.building_id, p.building_name) for p in places))
    zones = [
        (p.zone_id, f"{p.building_name} · {p.floor_name} · {p.zone_name}")
        for p in places
        if p.zone_id is not None
    ]
    return render(
        request,
        "device_new.html",
        kinds=[k.value for k in DeviceKind],
        kind_words=DEVICE_KINDS,
        buildings=buildings,
        zones=zones,
        sent=sent or {"expected_interval_s": "300"},
        refused=refused,
        refusal=DEVICE_REFUSALS.get(refused[1], "") if refused else "",
        field_words=DEVICE_FIELDS,
        status=status,
    )


@routes.get("/console/devices/new")
@signed_in
async def device_form(request: web.Request) -> web.StreamResponse:
    """The form that registers a device: id, kind, building, zone, desk, interval."""
    admin_only(request)
    return await _device_form(request)


def _device_body(sent: Mapping[str, str]) -> dict[str, object]:
    """The form as ``new_device`` takes it: empty zone or desk absent, the interval a
    number when it is one (else as sent: refused naming it)."""
    body: dict[str, object] = {k: v.strip() for k, v in sent.items() if v.strip()}
    interval = str(body.get("expected_interval_s", ""))
    if interval.isascii() and interval.isdigit() and len(interval) <= 9:
        body["expected_interval_s"] = int(interval)
    return body


@routes.post("/console/devices")
@signed_in
async def register(request: web.Request) -> web.StreamResponse:
    """Register the device; the page with its MQTT username and password, shown this
    once (``no-store``), or the form again naming the field (422, 409)."""
    admin_only(request)
    form = await request.post()
    sent = {name: str(form.get(name, "")) for name in DEVICE_FORM}
    try:
        device, interval = new_device(_device_body(sent))
    except InvalidField as exc:
        return await _device_form(request, sent, (exc.name, exc.code, exc.reason), 422)
    try:
        async with request.app[PORTS].pool().acquire() as conn:
            password = await register_device(conn, device, interval)
    except DeviceError as exc:
        status = DEVICE_REFUSAL_STATUS.get(exc.kind, 422)
        return await _device_form(request, sent, (exc.field, exc.kind, str(exc)), status)
    response = render(
        request, "device_registered.html", device=device, password=password, status=201
    )
    response.headers["Cache-Control"] = "no-store"
    return response
