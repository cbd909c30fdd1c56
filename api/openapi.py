"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of every route (public).

The document is written by hand in ``api/openapi.yaml``, read once a process (the first
app built) and served as JSON; ``tests/test_openapi.py`` keeps it true to ``app.router``.
One answer is added here rather than by hand: every write may be 429 ``rate-limited``
(api.rate_limit).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web

from api.auth import public
from api.rate_limit import WRITES

DOCUMENT_PATH = Path(__file__).with_name("openapi.yaml")
DOCUMENT = web.AppKey("openapi_document", bytes)

RATE_LIMITED = {"$ref": "#/components/responses/TooManyRequests"}
routes = web.RouteTableDef()
# libyaml's safe loader where PyYAML was built with it (its wheels are): ten times faster
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_document(path: Path = DOCUMENT_PATH) -> dict[str, Any]:
    """The OpenAPI document as a mapping."""
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not an OpenAPI document")
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method.upper() in WRITES:
                operation["responses"].setdefault("429", RATE_LIMITED)
    return document


@functools.cache
def _served() -> bytes:
    """The document as served, read once a process: each app made (a test's API) parsed
    its 87 KB of YAML anew, 0.3 s of CPU here."""
    return orjson.dumps(load_document())


def setup(app: web.Application) -> None:
    app[DOCUMENT] = _served()
    app.add_routes(routes)


@routes.get("/api/v1/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")
