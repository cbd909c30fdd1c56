"""``ikn bench web``: the staff pages under load and in a browser, against the JSON API.

It starts its own PostgreSQL (embedded) and the whole application (``ikn api``: the API
and the pages), one floor of D desks (200 by default) and U people (50), each signed in
(a web session and an API token of their own), then measures:

1. Find a desk: C keep-alive clients GET the floor's page for tomorrow N times in all;
   server time p50/p99 (the clients are ``ikn.benchmarks.http_load``'s lean ones, on
   the same cores). Ceiling: the same desks and states from ``GET /api/v1/availability``
   (the same read, as JSON, no page around it);
2. booking: the U people book a desk each at once through the page's form (POST, the
   session's CSRF token); p50/p99. Ceiling: the same U bookings, another day, through
   ``POST /api/v1/bookings``;
3. bytes of the Find-a-desk page compressed as a browser asks for it: a first load (the
   page and every stylesheet and script it names) and a repeat load (the page alone:
   the assets' URLs carry digests and are kept a year);
4. time until the floor plan is interactive in headless Chromium (Debian's, never a
   downloaded one): from the navigation's start until the floor-plan module marked the
   plan ready (``data-ready`` on the plan), the median of a few loads.

Prints one JSON line: find_p50_ms, find_p99_ms, api_find_p50_ms, find_ratio (ceiling
p50 / ours), book_p50_ms, book_p99_ms, api_book_p50_ms, book_ratio, first_load_kb,
repeat_load_kb, interactive_ms, with what it ran.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import orjson

from ikn.benchmarks import http_load
from ikn.benchmarks.booking import _percentile, _wait_healthy
from ikn.brokers import free_port
from ikn_core.domain import IKN_ZONE as WITA
from ikn_core.domain import Building, Desk, Floor, Site, Zone
from ikn_store import web_sessions
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.spaces import load_site

BUILDING, FLOOR = "wb", "wbf"
COLUMNS = 20  # desks a row on the plan
CHROMIUM = "/usr/bin/chromium"
BROWSER_LOADS = 5
ASSET = re.compile(r'(?:href|src)="(/static/[^"]+)"')


@dataclass(frozen=True, slots=True)
class Options:
    desks: int = 200
    users: int = 50
    clients: int = 10
    requests: int = 500


@dataclass(frozen=True, slots=True)
class User:
    person: str
    session: str  # the cookie's value
    csrf: str
    token: str  # the same person's API token (the ceiling's requests)


def _site(desks: int) -> Site:
    zones = tuple(Zone(f"wz{z}", FLOOR, f"Zone {z + 1}") for z in range(4))
    return Site(
        buildings=(Building(BUILDING, "Bench building"),),
        floors=(Floor(FLOOR, BUILDING, "Floor 1", 1),),
        zones=zones,
        desks=tuple(
            Desk(
                f"wd{d}", zones[d * len(zones) // desks].id, f"Desk {d}", d % COLUMNS, d // COLUMNS
            )
            for d in range(desks)
        ),
    )


async def _prepare(url: str, o: Options) -> list[User]:
    users = [
        User(
            f"wp{i}",
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            f"ikn_w{i}_{secrets.token_hex(8)}",
        )
        for i in range(o.users)
    ]
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_site(conn, _site(o.desks))
        await conn.executemany(
            """INSERT INTO people (id, name, agency, unit, home_building_id)
               VALUES ($1, $1, 'bench', 'bench', $2)""",
            [(u.person, BUILDING) for u in users],
        )
        await conn.executemany(
            """INSERT INTO api_tokens (token_hash, name, role, person_id)
               VALUES ($1, $2, 'employee', $2)""",
            [(hashlib.sha256(u.token.encode()).digest(), u.person) for u in users],
        )
        now = datetime.now(UTC)
        for u in users:
            await web_sessions.create(
                conn, u.session, u.csrf, u.person, now=now, lasts=timedelta(hours=2)
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return users


def _day(days_ahead: int) -> date:
    return datetime.now(WITA).date() + timedelta(days=days_ahead)


def _window(day: date) -> tuple[datetime, datetime]:
    return datetime(day.year, day.month, day.day, 9, tzinfo=WITA), datetime(
        day.year, day.month, day.day, 11, tzinfo=WITA
    )


def find_path(day: date) -> str:
    """The Find-a-desk page of the floor for 09:00-11:00 on ``day``."""
    query = {
        "building": BUILDING,
        "floor": FLOOR,
        "date": day.isoformat(),
        "start": "09:00",
        "end": "11:00",
    }
    return "/desks?" + urlencode(query)


def _cookie(u: User) -> dict[str, str]:
    return {"Cookie": f"ikn_session={u.session}"}


async def _timed(
    host: str, port: int, prepared: list[bytes], clients: int
) -> tuple[list[float], dict[int, int]]:
    """Send ``prepared`` over ``clients`` keep-alive connections; latencies (ms), statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(prepared)

    async def client(conn: http_load.Connection) -> None:
        for data in queue:
            t0 = time.perf_counter()
            status, _ = await conn.request(data)
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    connections = await asyncio.gather(
        *(http_load.Connection.open(host, port) for _ in range(clients))
    )
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for c in connections:
            c.close()
    return latencies, statuses


def _expect(statuses: dict[int, int], status: int, what: str) -> None:
    if set(statuses) != {status}:
        raise RuntimeError(f"{what}: expected only {status}, got {statuses}")


async def _find(host: str, port: int, users: list[User], o: Options) -> dict[str, Any]:
    day = _day(1)
    start, end = _window(day)
    where = f"{host}:{port}"
    pages = [
        http_load.prepare("GET", where, find_path(day), _cookie(users[i % len(users)]), b"")
        for i in range(o.requests)
    ]
    api_path = "/api/v1/availability?" + urlencode(
        {"floor": FLOOR, "start": start.isoformat(), "end": end.isoformat()}
    )
    api = [
        http_load.prepare(
            "GET", where, api_path, {"Authorization": f"Bearer {users[i % len(users)].token}"}, b""
        )
        for i in range(o.requests)
    ]
    await _timed(host, port, pages[: o.clients * 2], o.clients)  # warm: plans, templates
    ours, statuses = await _timed(host, port, pages, o.clients)
    _expect(statuses, 200, "GET " + find_path(day))
    ceiling, statuses = await _timed(host, port, api, o.clients)
    _expect(statuses, 200, "GET " + api_path)
    p50, api_p50 = _percentile(ours, 0.5), _percentile(ceiling, 0.5)
    return {
        "find_p50_ms": round(p50, 1),
        "find_p99_ms": round(_percentile(ours, 0.99), 1),
        "api_find_p50_ms": round(api_p50, 1),
        "find_ratio": round(api_p50 / p50, 3) if p50 else None,
    }


async def _book(host: str, port: int, users: list[User]) -> dict[str, Any]:
    """Every user books desk wd<i> at once: through the page, then (another day) the API."""
    where, origin = f"{host}:{port}", f"http://{host}:{port}"
    day, api_day = _day(2), _day(3)
    start, end = _window(api_day)
    pages = []
    for i, u in enumerate(users):
        form = urlencode(
            {"csrf_token": u.csrf, "date": day.isoformat(), "start": "09:00", "end": "11:00"}
        ).encode()
        headers = {
            **_cookie(u),
            "Origin": origin,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        pages.append(http_load.prepare("POST", where, f"/desks/wd{i}/book", headers, form))
    api = [
        http_load.prepare(
            "POST",
            where,
            "/api/v1/bookings",
            {"Authorization": f"Bearer {u.token}", "Content-Type": "application/json"},
            orjson.dumps({"desk": f"wd{i}", "start": start.isoformat(), "end": end.isoformat()}),
        )
        for i, u in enumerate(users)
    ]
    ours, statuses = await _timed(host, port, pages, len(users))
    _expect(statuses, 303, "POST /desks/{desk}/book")
    ceiling, statuses = await _timed(host, port, api, len(users))
    _expect(statuses, 201, "POST /api/v1/bookings")
    p50, api_p50 = _percentile(ours, 0.5), _percentile(ceiling, 0.5)
    return {
        "book_p50_ms": round(p50, 1),
        "book_p99_ms": round(_percentile(ours, 0.99), 1),
        "api_book_p50_ms": round(api_p50, 1),
        "book_ratio": round(api_p50 / p50, 3) if p50 else None,
    }


async def _bytes(base: str, user: User) -> dict[str, Any]:
    """Bytes on the wire (compressed as a browser asks) of a first and a repeat load."""
    headers = {**_cookie(user), "Accept-Encoding": "gzip, deflate, br"}
    async with aiohttp.ClientSession(auto_decompress=False) as session:

        async def size(path: str) -> tuple[int, bytes]:
            async with session.get(base + path, headers=headers) as answer:
                body = await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"GET {path}: {answer.status}")
                head = sum(len(k) + len(v) + 4 for k, v in answer.raw_headers)
                return head + len(body), body

        page, body = await size(find_path(_day(1)))
        async with (
            aiohttp.ClientSession() as reader,
            reader.get(base + find_path(_day(1)), headers=_cookie(user)) as plain,
        ):
            assets = sorted(set(ASSET.findall(await plain.text())))
        first = page + sum([(await size(path))[0] for path in assets])
    return {
        "first_load_kb": round(first / 1024, 1),
        "repeat_load_kb": round(page / 1024, 1),
        "assets": len(assets),
        "page_compressed": body[:2] == b"\x1f\x8b",
    }


async def _interactive(base: str, user: User) -> float:
    """Median ms from navigation start until the plan says it is ready (``data-ready``)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM)
        try:
            context = await browser.new_context()
            host = base.split("//", 1)[1].split(":", maxsplit=1)[0]
            await context.add_cookies(
                [{"name": "ikn_session", "value": user.session, "domain": host, "path": "/"}]
            )
            page = await context.new_page()
            times = []
            for _ in range(BROWSER_LOADS):
                await page.goto(base + find_path(_day(1)))
                await page.wait_for_selector("[data-ready]", state="attached")
                times.append(
                    await page.evaluate(
                        "performance.getEntriesByName('floorplan-ready')[0]?.startTime"
                        " ?? performance.now()"
                    )
                )
            return float(statistics.median(times))
        finally:
            await browser.close()


async def _measure(
    port: int, api: subprocess.Popen[bytes], users: list[User], o: Options
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    await _wait_healthy(base, api)
    figures = await _find("127.0.0.1", port, users, o)
    figures |= await _bytes(base, users[0])
    figures["interactive_ms"] = round(await _interactive(base, users[0]), 1)
    figures |= await _book("127.0.0.1", port, users)
    return {
        **figures,
        "desks": o.desks,
        "users": o.users,
        "clients": o.clients,
        "requests": o.requests,
        "cpus": os.cpu_count(),
    }


def run(o: Options) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ikn-bench-web-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        api: subprocess.Popen[bytes] | None = None
        try:
            users = asyncio.run(_prepare(pg.url(), o))
            port = free_port()
            env = {
                **os.environ,
                "IKN_DATABASE_URL": pg.url(),
                "IKN_API_PORT": str(port),
                "IKN_LOG_LEVEL": "WARNING",
            }
            api = subprocess.Popen([sys.executable, "-m", "ikn", "api"], env=env)
            return asyncio.run(_measure(port, api, users, o))
        finally:
            if api is not None:
                api.terminate()
                api.wait(timeout=30)
            pg.stop()
