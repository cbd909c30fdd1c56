"""The staff pages, served by the API's process: Today (``/``), sign-in, and the
navigation's places for the pages to come (docs/web.md).

``setup(app, settings, ports)`` adds them to an application the API built; the
composition root (``ikn/site.py``) gives the ``Ports`` (the pool, the policies, the
clock, the TLS test and the API's public-route marker), since web/ imports no entry
point. Server-rendered HTML (aiohttp-jinja2), htmx for what a page updates in place,
no inline script or style (the pages' Content-Security-Policy, ``Ports.page_headers``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Protocol, cast

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ikn_core.settings import OidcSettings, WebSettings
from web import (
    admin,
    attendance,
    bookings,
    checkin,
    console,
    console_displays,
    desks,
    displays,
    door,
    errors,
    feeds,
    fleet,
    i18n,
    oidc_client,
    pages,
    plan_editor,
    pwa,
    requests,
    sessions,
    signin,
    static,
    unit,
    utilisation,
    zones,
)
from web.ports import PORTS, Ports

__all__ = ["Ports", "setup"]

TEMPLATES = static.STATIC.with_name("templates")
# Each feature's routes (a module with a ``routes`` table): one line each here.
FEATURES = (
    pages,
    signin,
    pwa,
    desks,
    bookings,
    checkin,
    attendance,
    requests,
    unit,
    console,
    fleet,
    utilisation,
    plan_editor,
    zones,
    admin,
    console_displays,
    displays,
    door,
)


def setup(
    app: web.Application, settings: WebSettings, ports: Ports, oidc: OidcSettings | None = None
) -> None:
    """The pages on ``app``; call it after the API's own set-up (its header signal
    first, so that the pages' policy replaces the API's on pages only). ``oidc``: sign
    in with that identity provider (``IKN_WEB_OIDC_LOGIN``)."""
    app[PORTS] = ports
    app[sessions.SETTINGS] = settings
    oidc_client.setup(app, oidc, ports.signing_keys)
    _templates(app)
    added = app.router.add_routes(
        [web.route(r.method, r.path, ports.public(r.handler)) for r in _defs(FEATURES)]
    )
    assets = app.router.add_get("/static/{name:.+}", ports.public(static.asset))
    feed = app.router.add_get(feeds.PATH, ports.public(feeds.feed))  # no session: a secret
    app[sessions.PAGE_ROUTES] = frozenset(added)  # with sessions
    app[sessions.ALL_ROUTES] = frozenset({*added, assets, feed})  # with the pages' headers
    app.middlewares.append(pwa.compression)  # gzip, error pages too
    app.middlewares.append(errors.middleware)  # around the sessions: a refused form too
    app.middlewares.append(sessions.middleware)
    app.on_response_prepare.append(_page_policy)


def _defs(features: Iterable[ModuleType]) -> list[web.RouteDef]:
    tables: list[web.RouteTableDef] = [feature.routes for feature in features]
    return [r for table in tables for r in table if isinstance(r, web.RouteDef)]


class _CompiledTemplates(jinja2.BytecodeCache):
    """Templates compiled once a process, not once an app (each test's site compiled
    every page it showed again: 8 % of the pages' tests' CPU). Jinja keeps the source's
    checksum with the code, so an edited template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def _templates(app: web.Application) -> None:
    catalogues = i18n.load_all()

    @jinja2.pass_context
    def gettext(context: jinja2.runtime.Context, message: str) -> str:
        return catalogues[context["lang"]].gettext(message)

    @jinja2.pass_context
    def ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
        return catalogues[context["lang"]].ngettext(singular, plural, n)

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        bytecode_cache=_COMPILED,
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    # The i18n extension adds this method to the environment at run time.
    cast(_I18n, env).install_gettext_callables(gettext, ngettext, newstyle=True)
    env.globals.update(
        asset=static.asset_url, vendored=static.vendored, theme_colour=pwa.colour("brand")
    )


class _I18n(Protocol):
    def install_gettext_callables(
        self,
        gettext: Callable[..., str],
        ngettext: Callable[..., str],
        newstyle: bool | None = None,
    ) -> None: ...


async def _page_policy(request: web.Request, response: web.StreamResponse) -> None:
    if request.match_info.route in request.app[sessions.ALL_ROUTES]:
        response.headers.update(request.app[PORTS].page_headers)
