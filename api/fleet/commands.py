"""Device commands: ``POST /api/v1/devices/{id}/commands`` sends ``config``,
``identify`` or ``reboot`` to the device's ``down`` topic; ``GET`` lists them with
their status (pending / succeeded / failed / expired).

The API's own MQTT connection (``IKN_MQTT_URL``, the ``svc.api`` account) lives in a
cleanup context: the project's MQTT adapter (``ikn_core.mqtt``) on the event loop,
each publish waited for (PUBACK) with a timeout. Without ``IKN_MQTT_URL`` the POST route
answers 503. A command is stored before it is published; one the broker did not
take is marked failed and the route answers 503.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import MISSING
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from api.auth import PRINCIPAL, requires
from api.problems import Problem, invalid_parameter, json_object_body
from api.state import POOL
from ikn_core.contract import (
    ConfigCommand,
    DownCommand,
    IdentifyCommand,
    RebootCommand,
)
from ikn_core.contract.identifiers import ID
from ikn_core.domain import Role
from ikn_core.errors import ContractError
from ikn_core.fleet import CommandError, CommandNotPublished
from ikn_core.mqtt import MqttConnection, Session
from ikn_core.settings import MqttSettings
from ikn_service.fleet import issue
from ikn_store.fleet.commands import (
    CommandView,
    device_known,
    list_commands,
)

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0
KEEPALIVE_S = 30
SENDABLE: dict[str, type[DownCommand]] = {
    c.cmd: c for c in (ConfigCommand, IdentifyCommand, RebootCommand)
}

routes = web.RouteTableDef()


class CommandPublisher:
    """The API's MQTT connection: publishes QoS 1 and waits for the PUBACK."""

    def __init__(self, settings: MqttSettings) -> None:
        session = Session(f"ikn-api-{uuid.uuid4().hex[:12]}", keepalive_s=KEEPALIVE_S)
        self._connection = MqttConnection(settings, session)

    def start(self) -> None:
        self._connection.start()

    async def stop(self) -> None:
        await self._connection.close()

    async def publish(self, topic: str, payload: bytes) -> bool:
        """Publish with QoS 1; True once the broker acknowledged it within the timeout."""
        return await self._connection.publish_acked(topic, payload, PUBLISH_TIMEOUT_S)


PUBLISHER = web.AppKey[CommandPublisher | None]("command_publisher")
COMMAND_TTL = web.AppKey("command_ttl", timedelta)


def setup(app: web.Application, mqtt_settings: MqttSettings | None, ttl_s: int) -> None:
    """The routes, and the MQTT connection in a cleanup context (when configured)."""
    app[COMMAND_TTL] = timedelta(seconds=ttl_s)

    async def connection(app: web.Application) -> AsyncIterator[None]:
        if mqtt_settings is None:
            app[PUBLISHER] = None
            yield
            return
        publisher = CommandPublisher(mqtt_settings)
        publisher.start()
        app[PUBLISHER] = publisher
        log.info("device commands go to %s", mqtt_settings.url)
        yield
        await publisher.stop()

    app.cleanup_ctx.append(connection)
    app.add_routes(routes)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _command_json(view: CommandView) -> dict[str, Any]:
    params = {k: v for k, v in view.payload.items() if k not in ("v", "id", "ts", "cmd")}
    return {
        "id": view.id,
        "device": view.device_id,
        "cmd": view.cmd,
        "params": params,
        "status": view.status,
        "detail": view.detail,
        "issued_by": view.issued_by,
        "issued_at": view.issued_at.isoformat(),
        "expires_at": view.expires_at.isoformat(),
        "answered_at": view.answered_at.isoformat() if view.answered_at else None,
    }


def _command(body: dict[str, Any], now: datetime) -> DownCommand:
    """The contract command the body asks for, with a new id; 400 naming the field."""
    name = body.get("cmd")
    cls = SENDABLE.get(name) if isinstance(name, str) else None
    if cls is None:
        raise invalid_parameter("cmd", f"must be one of {', '.join(SENDABLE)}")
    params = {k: v for k, v in body.items() if k != "cmd"}
    for name in ("id", "ts", "v"):
        if name in params:
            raise invalid_parameter(name, "is set by the platform")
    try:
        return cls(id=str(uuid.uuid4()), ts=int(now.timestamp() * 1000), **params)
    except TypeError:
        allowed = [f for f in cls.__dataclass_fields__ if f not in ("id", "ts")]
        unknown = sorted(set(params) - set(allowed))
        fields = cls.__dataclass_fields__
        missing = [f for f in allowed if f not in params and fields[f].default is MISSING]
        field = (unknown or missing or ["body"])[0]
        raise invalid_parameter(
            field, f"{cls.cmd} takes {', '.join(allowed) or 'no fields'}"
        ) from None
    except ContractError as exc:
        raise invalid_parameter(exc.path or "body", str(exc)) from None


def _device_id(request: web.Request) -> str:
    device_id = request.match_info["id"]
    if not ID.fullmatch(device_id):
        raise invalid_parameter("id", "must be 1-64 letters, digits, '-' or '_'")
    return device_id


def _unknown(device_id: str) -> Problem:
    return Problem(404, "unknown-device", "No such device", f"no device {device_id}")


@routes.post("/api/v1/devices/{id}/commands")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def send(request: web.Request) -> web.Response:
    """Send ``{"cmd": "identify", "seconds": 10}`` (or config, reboot) to a device."""
    device_id = _device_id(request)
    now = datetime.now(UTC)
    command = _command(await json_object_body(request), now)
    publisher = request.app[PUBLISHER]
    if publisher is None:
        raise Problem(503, "no-broker", "Commands are off", "the API has no IKN_MQTT_URL")
    principal, ttl = request[PRINCIPAL].name, request.app[COMMAND_TTL]
    pool = request.app[POOL]
    try:
        view = await issue(
            pool, publisher, device_id, command, issued_by=principal, now=now, ttl=ttl
        )
    except CommandNotPublished as exc:
        raise Problem(503, "broker-unavailable", "The broker did not take the command") from exc
    except CommandError as exc:
        if exc.kind == "unknown-device":
            raise _unknown(device_id) from exc
        raise Problem(409, exc.kind, "The device takes no commands", str(exc)) from exc
    return _json(_command_json(view), 202)


@routes.get("/api/v1/devices/{id}/commands")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def history(request: web.Request) -> web.Response:
    """The device's last 100 commands, newest first, with their status (an unknown
    device is 404)."""
    device_id = _device_id(request)
    async with request.app[POOL].acquire() as conn:
        if not await device_known(conn, device_id):
            raise _unknown(device_id)
        commands = await list_commands(conn, device_id, datetime.now(UTC))
    return _json({"commands": [_command_json(c) for c in commands]})
