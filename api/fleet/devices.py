"""The device fleet: ``GET /api/v1/devices`` (health), ``GET /api/v1/devices/alerts``,
``POST /api/v1/devices`` (register; the MQTT password is in the answer, once) and
``PATCH /api/v1/devices/{id}`` (enable or disable; applied at ``ikn broker-config``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from api.attendance.handlers import POLICIES
from api.auth import requires
from api.problems import Problem, invalid_parameter, json_object_body
from api.state import POOL
from ikn_core.contract.identifiers import ID
from ikn_core.domain import Device, Role
from ikn_core.fields import InvalidField
from ikn_core.fleet import DeviceError, new_device
from ikn_service.fleet import ChangeDevice, change_device, device_state
from ikn_store.fleet.devices import (
    DeviceView,
    TapRules,
    device_alerts,
    list_devices,
    register_device,
)

_OPTIONAL = ("zone", "desk")

routes = web.RouteTableDef()


def alerts(device: DeviceView, now: datetime, taps: TapRules) -> list[str]:
    """What needs a facility manager's attention about an enabled device
    (``ikn_store.fleet.devices.device_alerts``: offline, clock, flooding, credentials,
    implausible taps)."""
    return device_alerts(device, now, taps)


def _taps(request: web.Request, now: datetime) -> TapRules:
    """When taps look implausible: under the attendance policy the API runs with."""
    return TapRules.of(request.app[POLICIES], now)


async def _views(
    request: web.Request, building: str | None = None, device_id: str | None = None
) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    taps = _taps(request, now)
    async with request.app[POOL].acquire() as conn:
        devices = await list_devices(conn, building, device_id, taps=taps)
    return [_device_json(d, now, taps) for d in devices]


def _device_json(device: DeviceView, now: datetime, taps: TapRules) -> dict[str, Any]:
    status = device.status or {}
    return {
        "id": device.id,
        "kind": device.kind,
        "building": device.building_id,
        "zone": device.zone_id,
        "desk": device.desk_id,
        "enabled": device.enabled,
        "state": device_state(device),
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
        "silent_s": round((now - device.last_seen).total_seconds(), 1)
        if device.last_seen
        else None,
        "expected_interval_s": device.expected_interval_s,
        "firmware": status.get("fw"),
        "uptime_s": status.get("uptime_s"),
        "outbox": status.get("outbox"),
        "dropped": status.get("dropped"),
        "clock_synced": status.get("clock_synced"),
        "battery_pct": status.get("battery_pct"),
        "alerts": alerts(device, now, taps),
    }


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _building(request: web.Request) -> str | None:
    unknown = sorted(set(request.query) - {"building"})
    if unknown:
        raise invalid_parameter(unknown[0], "unknown parameter; use building")
    building = request.query.get("building")
    if building is not None and not ID.fullmatch(building):
        raise invalid_parameter("building", "must be 1-64 letters, digits, '-' or '_'")
    return building


async def _fleet(request: web.Request) -> list[dict[str, Any]]:
    building = _building(request)
    return await _views(request, building=building)


@routes.get("/api/v1/devices")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def fleet(request: web.Request) -> web.Response:
    """Every device with its health: state, last seen, firmware, outbox, alerts."""
    return _json({"devices": await _fleet(request)})


@routes.get("/api/v1/devices/alerts")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def fleet_alerts(request: web.Request) -> web.Response:
    """Only the devices that need attention (offline past their interval, ...)."""
    return _json({"devices": [d for d in await _fleet(request) if d["alerts"]]})


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise invalid_parameter(name, "must be 1-64 letters, digits, '-' or '_'")
    return value


def _new_device(body: dict[str, Any]) -> tuple[Device, int]:
    try:
        return new_device(body)
    except InvalidField as exc:
        raise invalid_parameter(exc.name, exc.reason) from exc


def _refused(exc: DeviceError) -> Problem:
    status = {"exists": 409, "desk-taken": 409, "unknown-device": 404}.get(exc.kind, 422)
    return Problem(
        status,
        exc.kind,
        "The device registry refused this",
        str(exc),
        invalid_params=[{"name": exc.field, "reason": str(exc)}],
    )


@routes.post("/api/v1/devices")
@requires(Role.ADMIN)
async def register(request: web.Request) -> web.Response:
    """Register a device; the answer holds its MQTT password, which is never shown again."""
    device, interval = _new_device(await json_object_body(request))
    async with request.app[POOL].acquire() as conn:
        try:
            password = await register_device(conn, device, interval)
        except DeviceError as exc:
            raise _refused(exc) from exc
    (body,) = await _views(request, device_id=device.id)
    body["mqtt"] = {"username": device.id, "password": password}
    return _json(body, 201)


@routes.patch("/api/v1/devices/{id}")
@requires(Role.ADMIN)
async def change(request: web.Request) -> web.Response:
    """``{"enabled": false}`` disables a device (`ikn broker-config` then shuts it out);
    ``{"building": ..., "zone": ..., "desk": ...}`` moves it (zone and desk may be null)."""
    body = await json_object_body(request)
    allowed = {"enabled", "building", "zone", "desk"}
    unknown = sorted(set(body) - allowed)
    if unknown or not body:
        name = unknown[0] if unknown else "body"
        raise invalid_parameter(name, f"send any of {', '.join(sorted(allowed))}")
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise invalid_parameter("enabled", "must be true or false")
    moving = bool({"building", "zone", "desk"} & set(body))
    building = _text(body, "building", required=moving)
    zone, desk = (_text(body, name, required=False) for name in _OPTIONAL)
    device_id = request.match_info["id"]
    enabled: bool | None = body.get("enabled")
    async with request.app[POOL].acquire() as conn:
        try:
            await change_device(conn, ChangeDevice(device_id, building, zone, desk, enabled))
        except DeviceError as exc:
            raise _refused(exc) from exc
    (body,) = await _views(request, device_id=device_id)
    return _json(body)
