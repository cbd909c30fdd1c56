"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of every route (public).

The document is written by hand in ``api/openapi.yaml``, read once when the app is
built and served as JSON; ``tests/test_openapi.py`` keeps it true to ``app.router``.
One answer is added here rather than by hand: every write may be 429 ``rate-limited``
(api.rate_limit).
"""

from __future__ import annotations

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


def load_document(path: Path = DOCUMENT_PATH) -> dict[str, Any]:
    """The OpenAPI document as a mapping."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not an OpenAPI document")
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method.upper() in WRITES:
                operation["responses"].setdefault("429", RATE_LIMITED)
    return document


def setup(app: web.Application) -> None:
    app[DOCUMENT] = orjson.dumps(load_document())
    app.add_routes(routes)


@routes.get("/api/v1/openapi.json")
@public
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")
