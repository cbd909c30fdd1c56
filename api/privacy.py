"""The caller's right of access (UU 27/2022, Article 7): ``GET /api/v1/me/data`` answers
everything the platform stores about the person behind the token, as one JSON
document (``ikn_store.privacy``). Reading it is logged without its content."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiohttp import web

from api.auth import requires
from api.booking.http import ALL_ROLES, problem, require_person, respond
from api.state import POOL
from ikn_store.privacy import personal_data

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.get("/api/v1/me/data")
@requires(*ALL_ROLES)
async def my_data(request: web.Request) -> web.Response:
    me = require_person(request)
    async with request.app[POOL].acquire() as conn:
        found = await personal_data(conn, me.id)
    if found is None:  # removed between the token's check and the read
        raise problem(request, "not-a-person", "the token's person no longer exists", 403)
    log.info("personal data read by its person (%d sections)", len(found))
    body = {"generated_at": datetime.now(UTC).isoformat(), "person_id": me.id, **found}
    response = respond(body)
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response
