"""My bookings: upcoming, cancel, check in and out, series, the QR check-in
(issue 18; not built yet: the page says so)."""

from __future__ import annotations

from aiohttp import web

from web.pages import signed_in, soon

routes = web.RouteTableDef()
routes.get("/bookings")(signed_in(soon))
