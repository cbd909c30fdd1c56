"""Bearer-token authentication and role checks.

Every route states who may call it with ``@requires(...)`` (or ``@public``);
a route with neither is refused, so a forgotten check fails closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

from api import oidc
from api.coalesce import Coalescer
from api.problems import Handler, Problem
from api.state import POOL
from ikn_core.domain import Role
from ikn_store.people import Person, TokenHolder, token_holders

_ACCESS = "ikn_access"  # attribute on handlers: frozenset of roles, or "public"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    person: Person | None = None  # the person the token is linked to (None: a service)


PRINCIPAL = web.RequestKey("principal", Principal)
TOKENS = web.AppKey("tokens", Coalescer[str, TokenHolder | None])
TOKEN_BATCH = 256


def setup(app: web.Application, lanes: int) -> None:
    """Token lookups of concurrent requests go to the database together (api.coalesce):
    under load one query answers many requests; a quiet API still asks at once."""

    async def tokens(app: web.Application) -> AsyncIterator[None]:
        pool = app[POOL]

        async def look_up(tokens: Sequence[str]) -> list[TokenHolder | None]:
            async with pool.acquire() as conn:
                return await token_holders(conn, tokens)

        app[TOKENS] = Coalescer(look_up, lanes=lanes, max_batch=TOKEN_BATCH)
        yield
        await app[TOKENS].close()

    app.cleanup_ctx.append(tokens)


def requires(*roles: Role) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        setattr(handler, _ACCESS, frozenset(roles))
        return handler

    return mark


def public(handler: Handler) -> Handler:
    setattr(handler, _ACCESS, "public")
    return handler


async def _authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "unauthenticated",
            "A bearer token is required",
            "send Authorization: Bearer <token>",
        )
    oidc_identity = await oidc.authenticate(request, token.strip())  # None: OIDC off, or no JWT
    if oidc_identity is not None:
        person = oidc_identity.person
        return Principal(person.id, oidc_identity.role, person)
    owner = await request.app[TOKENS](token.strip())  # the person too: one query
    if owner is None:
        raise Problem(401, "unauthenticated", "The bearer token is unknown or revoked")
    if owner.expired_at is not None:
        raise Problem(
            401,
            "unauthenticated",
            "The bearer token expired",
            f"it expired at {owner.expired_at.isoformat()}; ask for a new one",
        )
    return Principal(owner.name, Role(owner.role), owner.person)


async def still_allowed(request: web.Request, roles: frozenset[Role]) -> bool:
    """Whether the request's bearer token still authenticates, with one of ``roles``:
    for a long-lived answer (an event stream) whose token may since have been revoked,
    have expired, or lost its role."""
    try:
        principal = await _authenticate(request)
    except Problem:
        return False
    return principal.role in roles


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = getattr(request.match_info, "handler", None)
    access = getattr(route_handler, _ACCESS, None)
    if request.match_info.http_exception is not None:
        return await handler(request)  # 404/405: nothing to protect
    if access == "public":
        return await handler(request)
    if not access:
        raise Problem(403, "forbidden", "This route declares no access rule")
    principal = await _authenticate(request)
    if principal.role not in access:
        raise Problem(
            403,
            "forbidden",
            "Your role may not do this",
            f"needs one of: {', '.join(sorted(access))}",
        )
    request[PRINCIPAL] = principal
    return await handler(request)
