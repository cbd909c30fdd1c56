"""``/static/<name>``: our stylesheet and the vendored scripts, and nothing else under
static/. Their URLs carry a digest of their content (``asset_url``), so a browser may
keep them a year and still gets a changed file at once."""

from __future__ import annotations

import functools
import hashlib
import tomllib
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
VENDOR = STATIC / "vendor" / "VENDOR.toml"  # what was vendored, from where, its checksum
TYPES = {".css": "text/css", ".js": "text/javascript"}
CACHE = "public, max-age=31536000, immutable"


@functools.cache
def assets() -> dict[str, Path]:
    """Every file served, by its name under static/ (``vendor/htmx-2.0.11.min.js``)."""
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in sorted(STATIC.rglob("*"))
        if path.suffix in TYPES
    }


@functools.cache
def asset_url(name: str) -> str:
    digest = hashlib.sha256(assets()[name].read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"


async def asset(request: web.Request) -> web.FileResponse:
    path = assets().get(request.match_info["name"])
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(
        path, headers={"Content-Type": TYPES[path.suffix], "Cache-Control": CACHE}
    )


@functools.cache
def vendored(package: str) -> str:
    """The asset name of an npm package's file in static/vendor (VENDOR.toml's entry)."""
    entries = tomllib.loads(VENDOR.read_text(encoding="utf-8"))["file"]
    path = Path(next(e["file"] for e in entries if e["package"] == package))
    return path.relative_to("web/static").as_posix()
