"""Security headers on every answer: JSON, problem documents, the docs page and its
assets, the OpenAPI document, event streams (aiohttp's ``on_response_prepare`` signal,
which every ``StreamResponse`` passes through), and what the server refuses before any
route (api.server).

One Content-Security-Policy for the API: the docs page's Swagger UI loads only its own
scripts and styles from here (no inline script), fetches only this origin, and shows
images of its own or inline ``data:`` icons; a JSON answer needs nothing at all. The
staff pages (web/) get the same but for their forms, which post to the pages, and a
referrer policy that lets a browser name their origin (``PAGE_HEADERS``).
Strict-Transport-Security only over TLS: the request's own scheme, or, behind a reverse
proxy that ``IKN_API_TRUSTED_PROXY`` says is trusted, its ``X-Forwarded-Proto``.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web
from aiohttp.web_request import BaseRequest


def policy(form_action: str, *more: str) -> str:
    """The Content-Security-Policy, with where forms may post (and ``more``)."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "base-uri 'none'",
            f"form-action {form_action}",
            "frame-ancestors 'none'",
            *more,
        )
    )


CSP = policy("'none'")  # the API's answers and its docs page: no forms
# The staff pages (web/): their forms post to themselves, and a browser says so in
# ``Origin`` (which the pages check) only when the referrer policy lets it: under
# ``no-referrer`` a form's POST says ``Origin: null``.
# As an installable app they also load their manifest and their service worker (which
# ``default-src 'none'`` would refuse) from here.
PAGE_POLICY = policy("'self'", "manifest-src 'self'", "worker-src 'self'")
PAGE_HEADERS = {"Content-Security-Policy": PAGE_POLICY, "Referrer-Policy": "same-origin"}
ALWAYS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"  # a year (RFC 6797)


def over_tls(request: BaseRequest, trusted_proxy: bool) -> bool:
    if request.secure:
        return True
    if not trusted_proxy:
        return False
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"  # the proxy nearest us


def add(headers: MutableMapping[str, str], tls: bool) -> None:
    headers.update(ALWAYS)
    if tls:
        headers["Strict-Transport-Security"] = HSTS


def setup(app: web.Application, trusted_proxy: bool) -> None:
    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        add(response.headers, over_tls(request, trusted_proxy))

    app.on_response_prepare.append(on_prepare)
