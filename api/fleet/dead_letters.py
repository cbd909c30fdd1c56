"""``GET /api/v1/dead-letters``: what devices sent that did not fit the contract, and why."""

from __future__ import annotations

import base64

import orjson
from aiohttp import web

from api.auth import requires
from api.params import digits
from api.problems import invalid_parameter
from api.state import POOL
from ikn_core.contract.identifiers import ID
from ikn_core.domain import Role
from ikn_store.fleet.dead_letters import StoredDeadLetter, count_by_reason, list_dead_letters

routes = web.RouteTableDef()

PREVIEW_BYTES = 1024
_PARAMS = ("reason", "device", "before", "limit")


def _int_param(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not digits(raw) or not low <= int(raw) <= high:
        raise invalid_parameter(name, f"must be an integer from {low} to {high}")
    return int(raw)


def _word_param(request: web.Request, name: str) -> str | None:
    raw = request.query.get(name)
    if raw is not None and not ID.fullmatch(raw):
        raise invalid_parameter(name, "must be 1-64 letters, digits, '-' or '_'")
    return raw


def _letter_json(letter: StoredDeadLetter) -> dict[str, object]:
    return {
        "id": letter.id,
        "received_at": letter.received_at.isoformat(),
        "topic": letter.topic,
        "device": letter.device_id,
        "reason": letter.reason,
        "detail": letter.detail,
        "size": letter.size,
        "sha256": letter.sha256.hex(),
        "payload_base64": base64.b64encode(letter.payload[:PREVIEW_BYTES]).decode(),
        "truncated": letter.size > PREVIEW_BYTES,
    }


@routes.get("/api/v1/dead-letters")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def dead_letters(request: web.Request) -> web.Response:
    """Newest first; ``?reason=&device=&before=<id>&limit=`` (default 100, at most 1000).
    ``counts`` are per reason, of ``device`` alone when it is given, and exact: the
    flood guard keeps only a sample of a flooding device's payloads, never of its counts."""
    unknown = sorted(set(request.query) - set(_PARAMS))
    if unknown:
        raise invalid_parameter(unknown[0], f"unknown parameter; use {', '.join(_PARAMS)}")
    reason, device = _word_param(request, "reason"), _word_param(request, "device")
    before = _int_param(request, "before", 1, 2**63 - 1)
    limit = _int_param(request, "limit", 1, 1000) or 100
    async with request.app[POOL].acquire() as conn:
        letters = await list_dead_letters(
            conn, reason=reason, device=device, before=before, limit=limit
        )
        counts = await count_by_reason(conn, device)
    body = {
        "counts": counts,
        "dead_letters": [_letter_json(d) for d in letters],
        "next_before": letters[-1].id if len(letters) == limit else None,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")
