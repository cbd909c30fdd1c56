"""The API and the staff pages in one aiohttp application: the composition root gives
the pages (web/) what they share with the API, so neither imports the other."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.web_request import BaseRequest

import web as pages
from api import headers
from api.app import make_app
from api.attendance import handlers as attendance
from api.auth import public
from api.booking.batches import BOOKER
from api.booking.http import PLACES
from api.fleet.commands import COMMAND_TTL, PUBLISHER
from api.oidc import OIDC
from api.state import POOL
from api.stream import HUB
from ikn_core.settings import ApiSettings, OidcSettings


def make_site(settings: ApiSettings) -> web.Application:
    app = make_app(settings)
    oidc = settings.oidc if settings.web.oidc_login else None
    proxy = settings.guard.trusted_proxy

    def over_tls(request: BaseRequest) -> bool:
        return headers.over_tls(request, proxy)

    ports = pages.Ports(
        pool=lambda: app[POOL],
        policies=lambda: app[attendance.POLICIES],
        booker=lambda: app[BOOKER],
        places=lambda: app[PLACES],
        now=lambda: attendance.now(app),
        over_tls=over_tls,
        public=public,
        page_headers=page_headers(oidc),
        signing_keys=lambda: app[OIDC].keys,
        desk_feed=lambda: app[HUB],
        commands=lambda: app.get(PUBLISHER),
        command_ttl=lambda: app[COMMAND_TTL],
    )
    pages.setup(app, settings.web, ports, oidc)
    return app


def page_headers(oidc: OidcSettings | None) -> Mapping[str, str]:
    """The pages' headers; signing in with an identity provider, the sign-out form's
    redirect goes on to its end-session endpoint, which ``form-action`` must allow (a
    browser checks it on a form's redirects too)."""
    if oidc is None:
        return headers.PAGE_HEADERS
    issuer = urlsplit(oidc.issuer)
    policy = headers.policy(f"'self' {issuer.scheme}://{issuer.netloc}")
    return {**headers.PAGE_HEADERS, "Content-Security-Policy": policy}
