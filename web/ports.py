"""What the pages need from the process that serves them, given by the composition root
(``ikn/site.py``): web/ imports no entry point (tests/test_layers.py), so the API's pool,
policies, clock, request checks and security policy come in here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web
from aiohttp.web_request import BaseRequest

from ikn_core.attendance import Policies
from ikn_service.booking import Booker
from ikn_service.desk_feed import DeskEventHub
from ikn_service.fleet import Publisher
from ikn_service.oidc import JwksCache
from ikn_store.booking.places import PlaceCache

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Ports:
    pool: Callable[[], asyncpg.Pool]  # the process's pool, once it has started
    policies: Callable[[], Policies]  # the attendance policies the API counts days by
    booker: Callable[[], Booker]  # where bookings are made: the API's batches
    places: Callable[[], PlaceCache]  # the desks' places the API keeps in memory
    now: Callable[[], datetime]  # the clock (tests set a fixed one)
    over_tls: Callable[[BaseRequest], bool]  # served over TLS, here or at a trusted proxy
    # Exempts a page from the API's bearer-token check: pages check their own session.
    public: Callable[[Handler], Handler]
    # Headers of every page in place of the API's (Content-Security-Policy, Referrer-Policy).
    page_headers: Mapping[str, str]
    # The identity provider's keys and HTTP session, which the API opened (one cache for
    # both); asked for only when the pages sign in with it.
    signing_keys: Callable[[], JwksCache]
    # The process's one feed of desk changes (the API's SSE stream shares it).
    desk_feed: Callable[[], DeskEventHub]
    # The API's MQTT connection for device commands (None without IKN_MQTT_URL).
    commands: Callable[[], Publisher | None]
    command_ttl: Callable[[], timedelta]  # a command not answered by then expires


PORTS = web.AppKey("web_ports", Ports)
