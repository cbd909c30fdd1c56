"""``/static/<name>``: our stylesheet, scripts and icons and the vendored scripts, and
nothing else under static/ (not the service worker, which ``web.pwa`` serves at
``/sw.js``). Their URLs carry a digest of their content (``asset_url``), so a browser may
keep them a year and still gets a changed file at once. Text files are sent gzipped to
a browser that accepts it (compressed once, kept in memory with the file)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
VENDOR = STATIC / "vendor" / "VENDOR.toml"  # what was vendored, from where, its checksum
TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
TEXT = frozenset({".css", ".js", ".svg"})  # worth compressing (a PNG is compressed)
SERVICE_WORKER = "sw.js"  # at /sw.js (web.pwa): its scope is the whole site
CACHE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"  # asked again each time (the ETag may answer 304)


@dataclass(frozen=True, slots=True)
class Asset:
    """A file as served: its bytes, their gzip (text only), digest and type."""

    body: bytes
    gzipped: bytes | None
    digest: str
    content_type: str

    def answer(self, request: web.Request, cache: str = CACHE) -> web.Response:
        """The file (gzipped when the browser accepts it), ``304`` to a browser that
        holds this version already (``If-None-Match``)."""
        gzipped = self.gzipped is not None and "gzip" in accepted(request)
        tag = f'"{self.digest}{"-gz" if gzipped else ""}"'
        headers = {"Cache-Control": cache, "ETag": tag, "Vary": "Accept-Encoding"}
        if tag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        body = self.gzipped if gzipped and self.gzipped is not None else self.body
        return web.Response(body=body, headers={**headers, "Content-Type": self.content_type})


def accepted(request: web.Request) -> str:
    """The content codings the browser accepts (lower case)."""
    return request.headers.get("Accept-Encoding", "").lower()


def load(path: Path) -> Asset:
    body = path.read_bytes()
    gzipped = gzip.compress(body, 9, mtime=0) if path.suffix in TEXT else None
    digest = hashlib.sha256(body).hexdigest()[:12]
    return Asset(body, gzipped, digest, TYPES[path.suffix])


@functools.cache
def assets() -> dict[str, Asset]:
    """Every file served, by its name under static/ (``vendor/htmx-2.0.11.min.js``)."""
    return {
        path.relative_to(STATIC).as_posix(): load(path)
        for path in sorted(STATIC.rglob("*"))
        if path.suffix in TYPES and path.name != SERVICE_WORKER
    }


@functools.cache
def asset_url(name: str) -> str:
    return f"/static/{name}?v={assets()[name].digest}"


async def asset(request: web.Request) -> web.Response:
    """The file; kept a year when asked for by this version's address (``asset_url``),
    else checked again each time (``no-cache``: a module's relative import, say)."""
    found = assets().get(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return found.answer(request, CACHE if request.query.get("v") == found.digest else NO_CACHE)


@functools.cache
def vendored(package: str) -> str:
    """The asset name of an npm package's file in static/vendor (VENDOR.toml's entry)."""
    entries = tomllib.loads(VENDOR.read_text(encoding="utf-8"))["file"]
    path = Path(next(e["file"] for e in entries if e["package"] == package))
    return path.relative_to("web/static").as_posix()
