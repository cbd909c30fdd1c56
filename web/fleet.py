"""The fleet pages of the facility managers' console (facility managers and admins;
anyone else 403): every device with its health and alerts, filtered
(``/console/fleet``), one device with its commands and a form to send identify,
configuration or reboot (``/console/fleet/{device}``, through
``ikn_service.fleet.issue`` as the API's POST), and the dead letters by reason with
each payload as text and as hex (``/console/dead-letters``). The rules are the API's:
``ikn_service.fleet.device_state``, ``ikn_store.fleet.devices.device_alerts``."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_timedelta

from ikn_core.contract import ConfigCommand, DownCommand, IdentifyCommand, RebootCommand
from ikn_core.contract.identifiers import ID
from ikn_core.domain import IKN_TIME_ZONE
from ikn_core.errors import ContractError
from ikn_core.fleet import CommandError, CommandNotPublished
from ikn_service.fleet import device_state, issue
from ikn_store.fleet.commands import CommandView, list_commands
from ikn_store.fleet.dead_letters import StoredDeadLetter, count_by_reason, list_dead_letters
from ikn_store.fleet.devices import DeviceView, TapRules, device_alerts, list_devices
from ikn_store.spaces import find_place
from web import i18n
from web.labels import (
    COMMAND_DONE,
    COMMAND_REFUSALS,
    COMMAND_STATUSES,
    DEVICE_ALERTS,
    DEVICE_STATES,
)
from web.pages import manager_of, person_of, render, signed_in
from web.ports import PORTS

routes = web.RouteTableDef()
FILTERS = ("building", "kind", "state", "alert")
PREVIEW_BYTES = 1024  # of a dead letter's payload shown, as the API's
HEX_ROW = 16  # bytes a line of the hex view
LETTERS_SHOWN = 100
POLL_S = 2  # how often a device's page asks for its commands while one waits


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """A device as the page shows it: its state, alerts and clock drift."""

    view: DeviceView
    state: str
    alerts: list[str]

    @property
    def status(self) -> Mapping[str, Any]:
        return self.view.status or {}


def _filters(request: web.Request) -> dict[str, str]:
    """The filters asked for; one that is not an id, state or alert is a 400."""
    found = {k: v for k, v in request.query.items() if k in FILTERS and v}
    if "state" in found and found["state"] not in DEVICE_STATES:
        raise web.HTTPBadRequest(reason="state: " + ", ".join(DEVICE_STATES))
    if "alert" in found and found["alert"] not in DEVICE_ALERTS:
        raise web.HTTPBadRequest(reason="alert: " + ", ".join(DEVICE_ALERTS))
    for name in ("building", "kind"):
        if name in found and not ID.fullmatch(found[name]):
            raise web.HTTPBadRequest(reason=f"{name}: 1-64 letters, digits, '-' or '_'")
    return found


async def _devices(request: web.Request, device_id: str | None = None) -> list[FleetDevice]:
    ports = request.app[PORTS]
    now = ports.now()
    taps = TapRules.of(ports.policies(), now)
    async with ports.pool().acquire() as conn:
        views = await list_devices(conn, device_id=device_id, taps=taps)
    return [FleetDevice(v, device_state(v), device_alerts(v, now, taps)) for v in views]


def _kept(device: FleetDevice, filters: Mapping[str, str]) -> bool:
    return (
        filters.get("building", device.view.building_id) == device.view.building_id
        and filters.get("kind", device.view.kind) == device.view.kind
        and filters.get("state", device.state) == device.state
        and ("alert" not in filters or filters["alert"] in device.alerts)
    )


async def _zone(request: web.Request) -> ZoneInfo:
    """The person's building's zone, where the pages' times are shown."""
    async with request.app[PORTS].pool().acquire() as conn:
        place = await find_place(conn, "building", person_of(request).home_building_id or "")
    return ZoneInfo(place.tz if place is not None else IKN_TIME_ZONE)


def _age(request: web.Request) -> Any:
    """``age(moment)``: how long before now, in the person's language ("3 menit")."""
    now, lang = request.app[PORTS].now(), i18n.language_of(request)

    def age(moment: datetime | None) -> str:
        if moment is None:
            return ""
        delta = max(now - moment, timedelta(0))  # a device clock ahead: just now
        return format_timedelta(delta, locale=i18n.BABEL_LOCALES[lang], threshold=1.5)

    return age


@routes.get("/console/fleet")
@signed_in
async def fleet(request: web.Request) -> web.StreamResponse:
    """Every device with its state, last contact, battery, firmware, outbox, drops,
    clock drift and alerts; the alerts counted, each a link to its devices."""
    manager_of(request)
    filters = _filters(request)
    devices = await _devices(request)
    alerts: Counter[str] = Counter(a for d in devices for a in d.alerts)
    return render(
        request,
        "fleet.html",
        devices=[d for d in devices if _kept(d, filters)],
        total=len(devices),
        filters=filters,
        buildings=sorted({d.view.building_id for d in devices}),
        kinds=sorted({d.view.kind for d in devices}),
        alert_counts=[(name, alerts[name]) for name in DEVICE_ALERTS if alerts[name]],
        states=DEVICE_STATES,
        alert_words=DEVICE_ALERTS,
        age=_age(request),
        only=lambda **kv: "/console/fleet?" + urlencode(kv),
    )


async def _device_page(
    request: web.Request, refused: str | None = None, status: int = 200, field: str = ""
) -> web.Response:
    device_id = request.match_info["device"]
    found = await _devices(request, device_id) if ID.fullmatch(device_id) else []
    if not found:
        raise web.HTTPNotFound(reason="No such device")
    ports = request.app[PORTS]
    return render(
        request,
        "fleet_device.html",
        d=found[0],
        states=DEVICE_STATES,
        alert_words=DEVICE_ALERTS,
        age=_age(request),
        can_send=ports.commands() is not None,
        refused=refused,
        refused_field=field,
        done=COMMAND_DONE.get(request.query.get("done", "")),
        **await _commands(request, device_id),
        status=status,
    )


async def _commands(request: web.Request, device_id: str) -> dict[str, Any]:
    """What the commands' section (fleet_commands.html) shows: the last 20 commands
    with their result, and whether one still waits (then the section polls)."""
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        commands = await list_commands(conn, device_id, ports.now(), limit=20)
    zone = await _zone(request)
    lang = i18n.language_of(request)
    return {
        "device_id": device_id,
        "commands": commands,
        "waiting": any(c.status == "pending" for c in commands),
        "poll_s": POLL_S,
        "statuses": COMMAND_STATUSES,
        "params": _params,
        "clock": lambda moment: i18n.clock_time(moment, zone, lang),
    }


def _params(view: CommandView) -> str:
    """A command's parameters, as sent (``seconds=10``)."""
    shown = {k: v for k, v in view.payload.items() if k not in ("v", "id", "ts", "cmd")}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


@routes.get("/console/fleet/{device}")
@signed_in
async def device(request: web.Request) -> web.StreamResponse:
    """One device: its health, its last 20 commands and what became of them, and the
    forms that send identify, configuration or reboot."""
    manager_of(request)
    return await _device_page(request)


@routes.get("/console/fleet/{device}/commands")
@signed_in
async def commands_part(request: web.Request) -> web.StreamResponse:
    """The device page's commands section alone (HTML), which the page asks for every
    ``POLL_S`` while a command waits for its device's answer."""
    manager_of(request)
    device_id = request.match_info["device"]
    if not ID.fullmatch(device_id) or not await _devices(request, device_id):
        raise web.HTTPNotFound(reason="No such device")
    return render(request, "fleet_commands.html", **await _commands(request, device_id))


# A command's value that cannot be sent: its field and the message naming it.
BAD_VALUES = {
    "identify": ("seconds", "bad-seconds"),
    "config": ("sample_interval_s", "bad-interval"),
}


def _command(form: Mapping[str, str], now: datetime) -> DownCommand:
    """The command the form asks for (``cmd``: identify with ``seconds``, config with
    ``sample_interval_s``, reboot); ``ContractError`` or ``ValueError`` for a value
    refused (``BAD_VALUES`` names it), 400 for a ``cmd`` no form of ours sends."""
    new: dict[str, Any] = {"id": str(uuid.uuid4()), "ts": int(now.timestamp() * 1000)}
    match form.get("cmd"):
        case "identify":
            return IdentifyCommand(**new, seconds=_whole(form.get("seconds", "")))
        case "config":
            return ConfigCommand(**new, sample_interval_s=_whole(form.get("sample_interval_s", "")))
        case "reboot":
            return RebootCommand(**new)
    raise web.HTTPBadRequest(reason="cmd: identify, config or reboot")  # not a form of ours


def _whole(raw: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ValueError(raw)
    return int(raw)


@routes.post("/console/fleet/{device}/commands")
@signed_in
async def send(request: web.Request) -> web.StreamResponse:
    """Send the form's command; 303 back to the device with ``done=sent``, or the page
    again with why not (422 a value, 404 no device, 409 disabled, 503 no broker)."""
    manager_of(request)
    ports, me = request.app[PORTS], person_of(request)
    device_id = request.match_info["device"]
    form = {k: str(v) for k, v in (await request.post()).items()}
    now = ports.now()
    try:
        command = _command(form, now)
    except (ContractError, ValueError):
        field, key = BAD_VALUES[form["cmd"]]
        return await _device_page(request, COMMAND_REFUSALS[key], 422, field)
    publisher = ports.commands()
    if publisher is None:
        return await _device_page(request, COMMAND_REFUSALS["no-broker"], 503)
    try:
        await issue(
            ports.pool(),
            publisher,
            device_id,
            command,
            issued_by=me.id,
            now=now,
            ttl=ports.command_ttl(),
        )
    except CommandNotPublished:
        return await _device_page(request, COMMAND_REFUSALS["broker-unavailable"], 503)
    except CommandError as exc:
        if exc.kind == "unknown-device":
            raise web.HTTPNotFound(reason="No such device") from exc
        return await _device_page(request, COMMAND_REFUSALS["disabled"], 409)
    raise web.HTTPSeeOther(f"/console/fleet/{device_id}?done=sent")


@dataclass(frozen=True, slots=True)
class ShownLetter:
    """A dead letter with its payload's first ``PREVIEW_BYTES`` as text and as hex."""

    letter: StoredDeadLetter
    text: str
    hex_lines: list[str]


def shown(letter: StoredDeadLetter) -> ShownLetter:
    """The payload as UTF-8 text (an undecodable byte as U+FFFD) and as hex, 16 bytes a
    line with their offset."""
    head = letter.payload[:PREVIEW_BYTES]
    lines = [f"{at:04x}  {head[at : at + HEX_ROW].hex(' ')}" for at in range(0, len(head), HEX_ROW)]
    return ShownLetter(letter, head.decode("utf-8", errors="replace"), lines)


@routes.get("/console/dead-letters")
@signed_in
async def dead_letters(request: web.Request) -> web.StreamResponse:
    """What devices sent that did not fit the contract: counts by reason (each a
    filter), and the newest 100 (of the reason asked for) with their payloads."""
    manager_of(request)
    reason = request.query.get("reason") or None
    if reason is not None and not ID.fullmatch(reason):
        raise web.HTTPBadRequest(reason="reason: 1-64 letters, digits, '-' or '_'")
    ports = request.app[PORTS]
    async with ports.pool().acquire() as conn:
        counts = await count_by_reason(conn)
        letters = await list_dead_letters(
            conn, reason=reason, device=None, before=None, limit=LETTERS_SHOWN
        )
    zone = await _zone(request)
    lang = i18n.language_of(request)
    return render(
        request,
        "dead_letters.html",
        counts=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        reason=reason,
        letters=[shown(x) for x in letters],
        preview=PREVIEW_BYTES,
        clock=lambda moment: i18n.clock_time(moment, zone, lang),
        day=lambda moment: i18n.long_date(moment.astimezone(zone).date(), lang),
    )
