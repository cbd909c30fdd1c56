"""The pages: Today (``/``), the sign-in page, the language switch, signing out, and the
places in the navigation that later pages fill (each says so for now)."""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ikn_core.domain import Role
from ikn_service.oidc import KeysUnavailableError
from ikn_store import web_sessions
from ikn_store.people import Person, get_person
from web import i18n, oidc_client, sessions
from web.labels import BOOKING_STATUSES, CLOCK_DONE, MODES, PLACES, REMOTE_PLACES, ROLES
from web.ports import PORTS, Handler
from web.today import read_today, window_open

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
PERSON = web.RequestKey("web_person", Person)  # who is signed in (pages behind signed_in)
SUPERVISORS = frozenset({Role.SUPERVISOR})
MANAGERS = frozenset({Role.FACILITY_MANAGER, Role.ADMIN})  # the console's
ADMINS = frozenset({Role.ADMIN})  # the console's administration: import, devices
# The navigation: (path, message, roles that see it; empty: everyone signed in).
NAV: tuple[tuple[str, str, frozenset[Role]], ...] = (
    ("/", i18n.gettext_noop("Today"), frozenset()),
    ("/desks", i18n.gettext_noop("Find a desk"), frozenset()),
    ("/bookings", i18n.gettext_noop("My bookings"), frozenset()),
    ("/attendance", i18n.gettext_noop("My attendance"), frozenset()),
    ("/requests", i18n.gettext_noop("Requests"), frozenset()),
    ("/unit", i18n.gettext_noop("My unit"), SUPERVISORS),
    ("/console/floor", i18n.gettext_noop("Live floor map"), MANAGERS),
    ("/console/fleet", i18n.gettext_noop("Fleet"), MANAGERS),
    ("/console/utilisation", i18n.gettext_noop("Utilisation"), MANAGERS),
    ("/console/plan", i18n.gettext_noop("Floor plans"), MANAGERS),
    ("/console/zones", i18n.gettext_noop("Zones"), MANAGERS),
    ("/console/displays", i18n.gettext_noop("Displays"), MANAGERS),
    ("/console/import", i18n.gettext_noop("Import"), ADMINS),
    ("/console/devices/new", i18n.gettext_noop("Register a device"), ADMINS),
)


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """``template`` with what every page shows: language, CSRF token, person, navigation;
    answered with ``status`` (which the template sees too)."""
    session = request.get(sessions.SESSION)
    person = session.person if session is not None else None
    nav = [
        (path, label)
        for path, label, roles in NAV
        if person is not None and (not roles or person.role in roles)
    ]
    base = {
        "lang": i18n.language_of(request),
        "csrf": sessions.mask(session.csrf_token) if session is not None else "",
        "person": person,
        "role": ROLES[person.role] if person is not None else "",
        "nav": nav,
        "path": request.path,
        # where the language switch comes back to: this page with its query (a page
        # answering a POST names its own, the form's address may not take a GET)
        "here": request.path_qs if request.method == "GET" else request.path,
        "status": status,
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


def signed_in(handler: Handler) -> Handler:
    """The page for a signed-in person; anyone else is sent to the sign-in page (a
    part of a page htmx asks for: 401, and ``HX-Redirect`` takes the whole page there,
    coming back to the page after; never the sign-in page inside a part)."""

    @functools.wraps(handler)
    async def page(request: web.Request) -> web.StreamResponse:
        session = request.get(sessions.SESSION)
        if session is None or session.person is None:
            if request.headers.get("HX-Request") == "true":
                back = page_of_ours(urlsplit(request.headers.get("HX-Current-URL", "")).path)
                to = "/login" if back == "/" else "/login?" + urlencode({"next": back})
                raise web.HTTPUnauthorized(headers={"HX-Redirect": to})
            raise web.HTTPSeeOther(_login_for(request))
        request[PERSON] = session.person
        return await handler(request)

    return page


def require_role(request: web.Request, roles: frozenset[Role]) -> Person:
    """The person signed in, when of one of ``roles``; else the 403 page."""
    person = person_of(request)
    if person.role not in roles:
        raise web.HTTPForbidden(reason="Not a page of your role")
    return person


def _login_for(request: web.Request) -> str:
    """The sign-in page, which comes back here after (a page a GET asked for, not Today)."""
    if request.method != "GET" or request.path == "/":
        return "/login"
    return "/login?" + urlencode({"next": request.path_qs})


def page_of_ours(path: str) -> str:
    """``path`` if it is one of our pages' (a path, not another site's), else Today."""
    return path if path.startswith("/") and not path.startswith(("//", "/\\")) else "/"


def person_of(request: web.Request) -> Person:
    return request[PERSON]


def manager_of(request: web.Request) -> Person:
    """The signed-in facility manager or administrator (the console's); else 403."""
    me = person_of(request)
    if me.role not in MANAGERS:
        raise web.HTTPForbidden(reason="Not a page of your role")
    return me


@routes.get("/")
@signed_in
async def today(request: web.Request) -> web.StreamResponse:
    ports, person = request.app[PORTS], person_of(request)
    async with ports.pool().acquire() as conn:
        found = await read_today(conn, ports.policies(), person.id, ports.now())
    lang = i18n.language_of(request)

    def clock(moment: datetime, zone: str | None = None) -> str:
        """In ``zone`` (a booking's building's), else the person's building's."""
        return i18n.clock_time(moment, ZoneInfo(zone) if zone else found.zone, lang)

    return render(
        request,
        "today.html",
        today=found,
        now=ports.now(),
        can_check_in=lambda booking: window_open(booking, ports.now()),
        date_text=i18n.long_date(found.day, lang),
        clock=clock,
        modes=MODES,
        statuses=BOOKING_STATUSES,
        places=REMOTE_PLACES,  # the remote clock-in's form, as on My attendance
        place_labels=PLACES,
        done=CLOCK_DONE.get(request.query.get("done", "")),
    )


async def soon(request: web.Request) -> web.StreamResponse:
    """A page of the navigation not built yet: it says so (403 outside its roles)."""
    title, roles = next((label, roles) for path, label, roles in NAV if path == request.path)
    if roles and person_of(request).role not in roles:
        raise web.HTTPForbidden(reason="Not a page of your role")
    return render(request, "soon.html", title=title)


@routes.get("/login")
async def login(request: web.Request) -> web.StreamResponse:
    session = request.get(sessions.SESSION)
    back = page_of_ours(request.query.get("next", "/"))
    if session is not None and session.person is not None:
        raise web.HTTPSeeOther(back)
    new_id = None
    if session is None:  # a visitor's session: the CSRF token of the forms here
        new_id, request[sessions.SESSION] = await sessions.start(request, None)
    dev = request.app[sessions.SETTINGS].dev_login
    people = await _people_by_role(request) if dev else []
    client = request.app.get(oidc_client.CLIENT)
    response = render(
        request,
        "login.html",
        dev_login=dev,
        groups=people,
        roles=ROLES,
        back=back,
        provider=client.provider_name if client is not None else "",
    )
    if new_id is not None:
        sessions.set_cookie(request, response, new_id)
    return response


async def _people_by_role(request: web.Request) -> list[tuple[Role, list[Person]]]:
    async with request.app[PORTS].pool().acquire() as conn:
        people = await web_sessions.people_by_role(conn)
    grouped: defaultdict[Role, list[Person]] = defaultdict(list)
    for person in people:
        grouped[person.role].append(person)
    return [(role, grouped[role]) for role in Role if grouped[role]]


@routes.post("/login/dev")
async def dev_login(request: web.Request) -> web.StreamResponse:
    if not request.app[sessions.SETTINGS].dev_login:
        raise web.HTTPNotFound()
    form = await request.post()
    person_id = str(form.get("person", ""))
    async with request.app[PORTS].pool().acquire() as conn:
        person = await get_person(conn, person_id)
    if person is None:
        raise web.HTTPBadRequest(reason="person: no such person")
    new_id, _ = await sessions.start(request, person.id)  # a new id: rotated at sign-in
    response = web.HTTPSeeOther(page_of_ours(str(form.get("next", "/"))))
    sessions.set_cookie(request, response, new_id)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """Signs out here, then (signed in with the identity provider) there too, which
    sends the browser back to the sign-in page."""
    response = web.HTTPSeeOther("/login")
    id_token = await sessions.end(request, response)
    client = request.app.get(oidc_client.CLIENT)
    if client is not None and id_token is not None:
        back = sessions.own_origin(request) + "/login"
        try:
            response.headers["Location"] = await client.end_session_url(id_token, back)
        except KeysUnavailableError as exc:
            log.warning("signed out here only: %s", exc.reason)
    raise response


@routes.post("/language")
async def language(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    chosen = str(form.get("lang", ""))
    if chosen not in i18n.LANGUAGES:
        raise web.HTTPBadRequest(reason="lang must be one of: " + ", ".join(i18n.LANGUAGES))
    response = web.HTTPSeeOther(page_of_ours(str(form.get("next", "/"))))
    response.set_cookie(
        i18n.LANGUAGE_COOKIE,
        chosen,
        max_age=365 * 86_400,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=request.app[PORTS].over_tls(request),
    )
    raise response
