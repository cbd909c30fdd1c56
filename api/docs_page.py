"""``GET /api/v1/docs``: the API documentation page, offline (public).

Swagger UI (vendored under ``api/static/swagger-ui``, see its README for the
licence) renders ``/api/v1/openapi.json``; every asset is served from here, so
the page works on a network without internet access.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from api.auth import public
from api.problems import Problem

STATIC = Path(__file__).with_name("static")
# The only files served, by name: nothing else under static/ is reachable.
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (STATIC / "swagger-ui" / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (STATIC / "swagger-ui" / "swagger-ui.css", "text/css"),
    "docs.js": (STATIC / "docs.js", "text/javascript"),
}
CACHE = "public, max-age=3600"

routes = web.RouteTableDef()


@routes.get("/api/v1/docs")
@public
async def docs_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(
        STATIC / "docs.html", headers={"Content-Type": "text/html", "Cache-Control": CACHE}
    )


@routes.get("/api/v1/docs/assets/{name}")
@public
async def docs_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise Problem(404, "not-found", "No such asset", name)
    path, content_type = ASSETS[name]
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": CACHE})
