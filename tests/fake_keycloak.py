"""A fake Keycloak realm, in process (aiohttp), for the pages' OIDC sign-in tests: no
Keycloak runs here. It keeps to what Keycloak (22+) does at each endpoint of a realm
(https://www.keycloak.org/docs/latest/securing_apps/#_oidc), as far as a relying party
can tell:

``GET /realms/{realm}/.well-known/openid-configuration``
    The discovery document: ``issuer`` (``<base>/realms/{realm}``),
    ``authorization_endpoint`` (``.../protocol/openid-connect/auth``), ``token_endpoint``
    (``.../token``), ``jwks_uri`` (``.../certs``), ``end_session_endpoint``
    (``.../logout``), ``code_challenge_methods_supported``.
``GET .../certs``
    The realm's public keys (JWKS): RSA, ``kid``, ``use: sig``, ``alg: RS256``.
``GET .../auth``
    Checks ``client_id`` (a known client) and ``redirect_uri`` (exactly one of the
    client's Valid Redirect URIs): either wrong, Keycloak shows its own error page (400,
    "Invalid parameter: redirect_uri") and never redirects. ``response_type`` other than
    ``code``, or a missing ``code_challenge`` / ``code_challenge_method`` other than
    ``S256`` when the client requires PKCE S256 ("Proof Key for Code Exchange Code
    Challenge Method"), redirects back with ``error=invalid_request`` and the ``state``.
    Otherwise the login form (username; a password in Keycloak), or at once when an SSO
    session exists; then a 302 to ``redirect_uri?state=...&session_state=...&iss=...&code=...``.
    A user who cancels: ``error=access_denied``.
``POST .../token`` (``grant_type=authorization_code``)
    Client authentication of a confidential client: ``client_secret`` in the form
    (client_secret_post) or HTTP Basic; wrong or missing, 401
    ``{"error": "unauthorized_client"}``. A code unknown, expired (the realm's "Client
    login timeout", 1 min by default) or used already: 400 ``invalid_grant`` ("Code not
    valid"; a second use also revokes what the first gave). ``redirect_uri`` not the
    one the code was issued for: 400 ``invalid_grant`` ("Incorrect redirect_uri").
    ``code_verifier`` missing or not matching ``BASE64URL(SHA256(verifier))``: 400
    ``invalid_grant`` ("PKCE verification failed"). Otherwise 200 with
    ``access_token``, ``id_token``, ``refresh_token``, ``token_type: Bearer``,
    ``expires_in``, ``scope``.
    The ID token: ``iss``, ``aud`` (the client id), ``azp``, ``sub``, ``typ: ID``,
    ``nonce`` (the one the authorization request sent), ``exp``, ``iat``, ``auth_time``,
    ``sid``, ``preferred_username``; client roles (``resource_access.<client>.roles``)
    only when the "client roles" mapper has "Add to ID token" on; and the claims of
    "User Attribute" mappers (``attributes``, such as a realm's ``nip``), in both tokens.
``GET .../logout`` (RP-initiated logout)
    ``post_logout_redirect_uri`` needs ``id_token_hint`` or ``client_id`` (else 400,
    "Missing parameters: id_token_hint") and must be one of the client's Valid Post
    Logout Redirect URIs; with a valid ``id_token_hint`` the SSO session ends and the
    browser is sent (302) to ``post_logout_redirect_uri`` without a confirmation page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

REALM = "ikn"
KID = "fake-rsa-1"


_RSA_TURN = itertools.count()


def rsa_key() -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key: one of four this process makes on first need and hands out in
    turn, so that the next few calls give different keys (a realm's, a forger's, a
    rotated one). Each made anew cost 20-130 ms of CPU (median 53 of ten)."""
    return _made(next(_RSA_TURN) % 4)


@functools.cache
def _made(turn: int) -> rsa.RSAPrivateKey:
    """The process's key number ``turn``, made once."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    user: str
    issued_at: float
    used: bool = False


@dataclass
class FakeKeycloak:
    client_id: str = "ikn-web"
    client_secret: str = "s3cret-of-the-web-client"
    base: str = ""  # http://127.0.0.1:<port>, once serving
    redirect_uris: set[str] = field(default_factory=set)
    post_logout_uris: set[str] = field(default_factory=set)
    sso_user: str | None = None  # an SSO session: /auth answers at once, as this user
    roles: dict[str, list[str]] = field(default_factory=dict)  # client roles by user
    # claims a "User Attribute" mapper adds (to the ID and access tokens), by user:
    # BKN's realm maps the NIP so, e.g. {"nip": "198703152010012001"}
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)  # claims put over the ID token's
    token_down: bool = False  # the token endpoint answers 503
    key: rsa.RSAPrivateKey = field(default_factory=rsa_key)
    forger: rsa.RSAPrivateKey | None = None  # set: ID tokens signed by it, not the realm's key
    codes: dict[str, Code] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    logouts: list[dict[str, str]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return f"{self.base}/realms/{REALM}"

    @property
    def endpoints(self) -> str:
        return self.issuer + "/protocol/openid-connect"

    def app(self) -> web.Application:
        app = web.Application()
        root = f"/realms/{REALM}"
        oidc = root + "/protocol/openid-connect"
        app.router.add_get(root + "/.well-known/openid-configuration", self.discovery)
        app.router.add_get(oidc + "/certs", self.certs)
        app.router.add_get(oidc + "/auth", self.auth)
        app.router.add_post(oidc + "/auth/login", self.login)
        app.router.add_post(oidc + "/token", self.token)
        app.router.add_get(oidc + "/logout", self.logout)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.endpoints + "/auth",
                "token_endpoint": self.endpoints + "/token",
                "jwks_uri": self.endpoints + "/certs",
                "end_session_endpoint": self.endpoints + "/logout",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def certs(self, request: web.Request) -> web.Response:
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]})

    async def auth(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("redirect_uri") not in self.redirect_uris:
            raise web.HTTPBadRequest(text="We are sorry... Invalid parameter: redirect_uri")
        redirect, state = q["redirect_uri"], q.get("state", "")
        if q.get("response_type") != "code":
            return _back(redirect, error="unsupported_response_type", state=state)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _back(redirect, error="invalid_request", state=state)
        if self.sso_user is not None:
            return self._issue(q, self.sso_user)
        hidden = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in q.items()
        )
        page = (
            '<!doctype html><html lang="en"><head><title>Sign in to ikn</title>'
            '<link rel="icon" href="data:,"></head>'
            '<body><main><h1>Sign in to ikn</h1><form method="post" action="auth/login">'
            f'{hidden}<label for="username">Username</label>'
            '<input id="username" name="username" autocomplete="username">'
            '<button type="submit">Sign In</button></form></main></body></html>'
        )
        return web.Response(text=page, content_type="text/html")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        query = {k: str(v) for k, v in form.items() if k != "username"}
        return self._issue(query, str(form["username"]))

    def _issue(self, q: Any, user: str) -> web.StreamResponse:
        code = secrets.token_urlsafe(24)
        self.codes[code] = Code(
            q["client_id"],
            q["redirect_uri"],
            q["code_challenge"],
            q.get("nonce", ""),
            user,
            time.time(),
        )
        return _back(
            q["redirect_uri"],
            state=q.get("state", ""),
            session_state=secrets.token_hex(8),
            iss=self.issuer,
            code=code,
        )

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_requests.append(form)
        if self.token_down:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), self.client_secret
        ):
            return _oauth_error(401, "unauthorized_client", "Invalid client credentials")
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or time.time() - code.issued_at > 60:
            return _oauth_error(400, "invalid_grant", "Code not valid")
        code.used = True
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "invalid_grant", "Incorrect redirect_uri")
        if s256(form.get("code_verifier", "")) != code.challenge:
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
        return web.json_response(
            {
                "access_token": self.sign(
                    {"typ": "Bearer", "sub": code.user, **self.attributes.get(code.user, {})}
                ),
                "id_token": self.id_token(code),
                "refresh_token": secrets.token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": 300,
                "scope": "openid profile",
            }
        )

    def id_token(self, code: Code) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": code.user,
            "typ": "ID",
            "nonce": code.nonce,
            "iat": now,
            "auth_time": now,
            "exp": now + 300,
            "sid": secrets.token_hex(8),
            "preferred_username": code.user,
        }
        if code.user in self.roles:
            claims["resource_access"] = {self.client_id: {"roles": self.roles[code.user]}}
        token = {**claims, **self.attributes.get(code.user, {}), **self.tamper}
        if self.forger is not None:
            return jwt.encode(token, self.forger, algorithm="RS256", headers={"kid": KID})
        return self.sign(token)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KID})

    async def logout(self, request: web.Request) -> web.StreamResponse:
        q = dict(request.query)
        self.logouts.append(q)
        back = q.get("post_logout_redirect_uri")
        if back is not None and "id_token_hint" not in q and "client_id" not in q:
            raise web.HTTPBadRequest(text="We are sorry... Missing parameters: id_token_hint")
        if back is not None and back not in self.post_logout_uris:
            raise web.HTTPBadRequest(text="We are sorry... Invalid redirect uri")
        if "id_token_hint" in q:
            jwt.decode(
                q["id_token_hint"],
                self.key.public_key(),
                algorithms=["RS256"],
                audience=self.client_id,
                options={"verify_exp": False},
            )  # an invalid hint: an error (500 here; Keycloak shows an error page)
        self.sso_user = None
        if back is None:
            return web.Response(text="You are logged out", content_type="text/html")
        raise web.HTTPFound(back)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _back(redirect_uri: str, **query: str) -> web.StreamResponse:
    raise web.HTTPFound(redirect_uri + "?" + urlencode(query))


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
