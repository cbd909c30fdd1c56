"""My attendance: the month, a day's explanation, remote clock-in
(issue 18; not built yet: the page says so)."""

from __future__ import annotations

from aiohttp import web

from web.pages import signed_in, soon

routes = web.RouteTableDef()
routes.get("/attendance")(signed_in(soon))
