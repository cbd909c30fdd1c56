"""``ikn bench booking``: a morning rush of bookings over HTTP, against a ceiling.

It starts its own PostgreSQL (embedded, durable) and the API (``ikn api``, its own
process), gives N people a token each, loads the bookings of the last three days
(so indexes and planner statistics are those of a database in service), then:

1. ours: C concurrent clients POST N bookings (one per person) for tomorrow's four
   two-hour slots on a pool of desks; one request in ten targets a slot someone
   else also wants, so the exclusion constraints refuse (409) that many. The
   clients are ``ikn.benchmarks.http_load``'s lean keep-alive connections, so the
   load costs the shared cores little of what the API and PostgreSQL need;
2. the double-booking check: overlapping active bookings of one desk or one person;
3. ceiling: the same N bookings made straight through ``ikn_store.booking.bookings.book``
   (the API's INSERT) by C tasks on an asyncpg pool of the API's size (no HTTP, no
   auth, no rules).

Prints one JSON line: bookings_per_s (201s per second), requests_per_s, p50_ms, p99_ms,
errors_5xx, conflicts_409, double_bookings, ceiling_bookings_per_s, ratio.

Two ways to load the API:

- closed loop (the default): each client sends its next request when the last one
  answered, as fast as the API goes. Throughput is then C / mean latency, so at C=200
  a p99 under 100 ms would need more than 2,000 answers a second;
- open loop (``--rate R``): requests are due at R per second whatever the answers do,
  the C clients sending each when it is due (wrk2's and k6's constant arrival rate).
  Latency counts from when a request was due, so a request that waited for a free
  client counts its wait (no coordinated omission). This is the latency a rush of R
  requests a second meets.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from ikn.benchmarks import http_load
from ikn.brokers import free_port
from ikn_core.booking import BookingError
from ikn_core.domain import IKN_ZONE as WITA
from ikn_core.domain import Building, Desk, Floor, Site, Zone
from ikn_store.booking import bookings as store
from ikn_store.booking.places import desk_place
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate
from ikn_store.spaces import load_site

SLOTS = ((8, 10), (10, 12), (13, 15), (15, 17))
POOL_MAX = 20


@dataclass(frozen=True, slots=True)
class Options:
    clients: int = 200
    bookings: int = 5000
    rate: float | None = None  # requests/s offered (open loop); None: closed loop


@dataclass(frozen=True, slots=True)
class Request:
    person: str
    token: str
    desk: str
    start: datetime
    end: datetime


def _plan(n: int) -> tuple[Site, list[Request]]:
    """N requests, one per person; one in ten wants a (desk, slot) another also wants."""
    rng = random.Random(6)
    distinct = max(1, n - n // 10)
    desks = -(-distinct // len(SLOTS))
    day = datetime.now(WITA).date() + timedelta(days=1)
    targets = [(f"bk{i // len(SLOTS)}", SLOTS[i % len(SLOTS)]) for i in range(distinct)]
    targets += [rng.choice(targets[:distinct]) for _ in range(n - distinct)]
    rng.shuffle(targets)
    requests = []
    for i, (desk, (h0, h1)) in enumerate(targets):
        start = datetime(day.year, day.month, day.day, h0, tzinfo=WITA)
        end = datetime(day.year, day.month, day.day, h1, tzinfo=WITA)
        requests.append(
            Request(f"bp{i}", f"ikn_bench_{i}_{rng.getrandbits(64):x}", desk, start, end)
        )
    site = Site(
        buildings=(Building("bkb", "Bench building"),),
        floors=(Floor("bkf", "bkb", "Floor", 1),),
        zones=(Zone("bkz", "bkf", "Zone"),),
        desks=tuple(Desk(f"bk{d}", "bkz", f"Desk {d}", d % 50, d // 50) for d in range(desks)),
    )
    return site, requests


HISTORY_DAYS = 3


async def _history(conn: asyncpg.Connection, requests: list[Request]) -> None:
    """The bookings of the last few days, as a database in service holds them (so its
    indexes and statistics are a working day's, not an empty table's): the same
    requests, checked in, a day, two days... earlier. Loaded without triggers (nothing
    for analytics or desk displays to catch up on during the rush)."""
    rows = [
        (r.desk, r.person, r.start - timedelta(days=d), r.end - timedelta(days=d))
        for d in range(1, HISTORY_DAYS + 1)
        for r in {(r.desk, r.start): r for r in requests}.values()
    ]
    async with conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            """INSERT INTO bookings (desk_id, person_id, period, created_by, status,
                                     checked_in_at, check_in_signal)
               SELECT d, p, tstzrange(s, e, '[)'), p, 'checked_in', s, 'badge'
               FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])
                    AS h(d, p, s, e)""",
            *(list(c) for c in zip(*rows, strict=True)),
        )


async def _prepare(url: str, site: Site, requests: list[Request]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await load_site(conn, site)
        await conn.executemany(
            "INSERT INTO people (id, name, agency, unit) VALUES ($1, $1, 'bench', 'bench')",
            [(r.person,) for r in requests],
        )
        await conn.executemany(
            """INSERT INTO api_tokens (token_hash, name, role, person_id)
               VALUES ($1, $2, 'employee', $2)""",
            [(hashlib.sha256(r.token.encode()).digest(), r.person) for r in requests],
        )
        await _history(conn, requests)
        await conn.execute("ANALYZE")  # statistics, as a database in service has them
    finally:
        await conn.close()


async def _wait_healthy(base: str, api: subprocess.Popen[bytes], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            if api.poll() is not None:
                raise RuntimeError(f"the API exited with {api.returncode}")
            try:
                async with session.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not answer /healthz in time")
            await asyncio.sleep(0.1)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


async def _rush(
    host: str, port: int, requests: list[Request], clients: int, rate: float | None
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    # Requests are made before the clock starts, as a load tool's are.
    prepared = [
        http_load.prepare(
            "POST",
            f"{host}:{port}",
            "/api/v1/bookings",
            {"Authorization": f"Bearer {r.token}", "Content-Type": "application/json"},
            orjson.dumps({"desk": r.desk, "start": r.start.isoformat(), "end": r.end.isoformat()}),
        )
        for r in requests
    ]
    queue = iter(enumerate(prepared))

    async def client(conn: http_load.Connection) -> None:
        for i, data in queue:
            if rate is None:
                due = time.perf_counter()
            else:  # open loop: request i is due at i/rate, sent then or when we can
                due = t0 + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status, _ = await conn.request(data)
            latencies.append((time.perf_counter() - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    # The C connections are opened before the clock starts, as a load tool would,
    # and what was made so far (the prepared requests) is left out of the cyclic
    # GC's collections, which would otherwise pause the client for tens of ms.
    connections = await asyncio.gather(
        *(http_load.Connection.open(host, port) for _ in range(clients))
    )
    try:
        gc.freeze()
        t0 = time.perf_counter()
        await asyncio.gather(*(client(conn) for conn in connections))
        elapsed = time.perf_counter() - t0
    finally:
        for conn in connections:
            conn.close()
    return {
        "bookings_per_s": round(statuses.get(201, 0) / elapsed, 1),
        "requests_per_s": round(len(requests) / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 0.50), 1),
        "p99_ms": round(_percentile(latencies, 0.99), 1),
        "errors_5xx": sum(n for s, n in statuses.items() if s >= 500),
        "conflicts_409": statuses.get(409, 0),
        "created": statuses.get(201, 0),
        "other_statuses": {str(s): n for s, n in statuses.items() if s not in (201, 409)},
    }


# Active bookings that overlap an earlier one (by start) of the same desk, or of the
# same person: zero exactly when the database holds no double booking. A running
# maximum of the ends, not a self-join, so it takes milliseconds, not seconds.
DOUBLE_BOOKINGS = """
    WITH active AS (
        SELECT desk_id, person_id, period FROM bookings WHERE booking_active(status)
    ), clash AS (
        SELECT lower(period) < max(upper(period)) OVER (
                   PARTITION BY desk_id ORDER BY lower(period)
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS desk,
               lower(period) < max(upper(period)) OVER (
                   PARTITION BY person_id ORDER BY lower(period)
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS person
        FROM active
    )
    SELECT count(*) FROM clash WHERE desk OR person"""


async def _ceiling(url: str, requests: list[Request], clients: int) -> float:
    pool = await asyncpg.create_pool(url, min_size=POOL_MAX, max_size=POOL_MAX)
    assert pool is not None
    created = 0
    queue = iter(requests)
    try:
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE bookings")
            places = {d: await desk_place(conn, d) for d in {r.desk for r in requests}}

        async def client() -> None:
            nonlocal created
            for r in queue:
                async with pool.acquire() as conn:
                    try:
                        await store.book(
                            conn,
                            place=places[r.desk],
                            person_id=r.person,
                            start=r.start,
                            end=r.end,
                            created_by=r.person,
                        )
                        created += 1
                    except BookingError:
                        pass

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return created / (time.perf_counter() - t0)
    finally:
        await pool.close()


async def _measure(
    url: str, port: int, api: subprocess.Popen[bytes], o: Options, requests: list[Request]
) -> dict[str, Any]:
    await _wait_healthy(f"http://127.0.0.1:{port}", api)
    ours = await _rush("127.0.0.1", port, requests, o.clients, o.rate)
    conn = await asyncpg.connect(url)
    try:
        double = int(await conn.fetchval(DOUBLE_BOOKINGS))
    finally:
        await conn.close()
    ceiling = await _ceiling(url, requests, o.clients)
    return {
        "clients": o.clients,
        "rate": o.rate,
        "requests": len(requests),
        **ours,
        "double_bookings": double,
        "ceiling_bookings_per_s": round(ceiling, 1),
        "ratio": round(ours["bookings_per_s"] / ceiling, 3) if ceiling else None,
        "cpus": os.cpu_count(),
    }


def run(o: Options) -> dict[str, Any]:
    site, requests = _plan(o.bookings)
    with tempfile.TemporaryDirectory(prefix="ikn-bench-booking-") as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port())
        pg.start()
        api: subprocess.Popen[bytes] | None = None
        try:
            url = pg.url()
            asyncio.run(_prepare(url, site, requests))
            port = free_port()
            env = {
                **os.environ,
                "IKN_DATABASE_URL": url,
                "IKN_DATABASE_POOL_MAX": str(POOL_MAX),
                "IKN_API_PORT": str(port),
                "IKN_LOG_LEVEL": "WARNING",
            }
            api = subprocess.Popen([sys.executable, "-m", "ikn", "api"], env=env)
            return asyncio.run(_measure(url, port, api, o, requests))
        finally:
            if api is not None:
                api.terminate()
                api.wait(timeout=30)
            pg.stop()
