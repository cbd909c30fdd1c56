"""Personal data protection (UU 27/2022) in the API.

- The caller's right of access (Article 7): ``GET /api/v1/me/data`` answers everything
  the platform stores about the person behind the token, as one JSON document
  (``ikn_store.privacy``). Reading it is logged without its content.
- The access log: ``views`` notes that the caller was shown other people's attendance;
  ``GET /api/v1/me/access-log`` answers who viewed the caller's.
- The retention job (``ikn_service.retention``), run every ``IKN_RETENTION_INTERVAL_S``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

from aiohttp import web

from api.attendance.handlers import POLICIES, now, today
from api.auth import PRINCIPAL, requires
from api.booking.http import ALL_ROLES, invalid, problem, require_person, respond
from api.params import digits
from api.state import POOL
from ikn_core.periodic import periodic
from ikn_core.settings import RetentionSettings
from ikn_service import retention
from ikn_service.privacy import View, Viewer, note_views
from ikn_store.access_log import of_subject
from ikn_store.privacy import personal_data

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
RETENTION = web.AppKey("retention", RetentionSettings)  # the periods of the job
SESSION_IDLE = web.AppKey("session_idle", timedelta)  # the pages' idle limit


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


def viewer_of(request: web.Request) -> Viewer:
    principal = request[PRINCIPAL]
    person = principal.person
    name = principal.name if person is None else person.name
    return Viewer(None if person is None else person.id, name, principal.role.value)


async def views(request: web.Request, subjects: Iterable[str], what: str, period: str) -> None:
    """Note in the access log that the caller was shown these people's attendance."""
    async with request.app[POOL].acquire() as conn:
        view = View(viewer_of(request), what, period, "api")
        await note_views(conn, view, subjects, now(request.app))


@routes.get("/api/v1/me/access-log")
@requires(*ALL_ROLES)
async def my_access_log(request: web.Request) -> web.Response:
    """Who viewed my attendance (a unit's month or CSV, the year's absences, a day), the
    newest first; ``?limit=`` 1-1000 (100)."""
    me = require_person(request)
    text = request.query.get("limit", "100")
    if not (digits(text) and 1 <= int(text) <= 1000):
        raise invalid(request, "limit", "a whole number from 1 to 1000")
    async with request.app[POOL].acquire() as conn:
        found = await of_subject(conn, me.id, int(text))
    return respond({"person_id": me.id, "views": [a.as_json() for a in found]})


async def retention_round(app: web.Application) -> dict[str, int] | None:
    """One round of the retention job by the app's clock and today's policy."""
    settings, idle = app[RETENTION], app[SESSION_IDLE]
    policy = app[POLICIES].in_force(today(app))
    async with app[POOL].acquire() as conn:
        return await retention.enforce(conn, settings, policy, idle, now(app))


def setup(app: web.Application, settings: RetentionSettings, session_idle_s: int) -> None:
    """The routes, and the retention job (after the pool's and the policies' setup)."""
    app[RETENTION], app[SESSION_IDLE] = settings, timedelta(seconds=session_idle_s)

    async def retainer(app: web.Application) -> AsyncIterator[None]:
        async with periodic(settings.interval_s, lambda: retention_round(app), what="retention"):
            yield

    app.cleanup_ctx.append(retainer)
    app.add_routes(routes)
